"""Worker processes for ``extract``: each holds one Pipeline; a document that kills its
worker (out of memory, a crash in a native decoder) or overruns its time budget becomes a
failure row, the worker is replaced, and the run goes on.

The parent hands one document at a time to each idle worker (so it always knows which
document a dead worker held), and yields results in input order. Workers are started with
the ``spawn`` method: onnxruntime and torch thread pools do not survive ``fork``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem, PipelineOptions, SourceDoc
from docvlm.errors import ConfigError, DocvlmError

logger = logging.getLogger(__name__)

_POLL_S = 0.2


def _limit_memory(max_mb: int | None) -> None:
    if not max_mb:
        return
    import resource

    limit = int(max_mb) * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(
    tasks: Any, results: Any, options_json: str, schema: dict, name: str, path: str | None,
    threads: int, max_mb: int | None,
) -> None:  # fmt: skip
    """A worker: build the Pipeline once, then process documents until told to stop."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("DOCVLM_THREADS", str(threads))
    _limit_memory(max_mb)
    from docvlm.pipeline import Pipeline
    from docvlm.schema import schema_from_dict

    try:
        pipeline = Pipeline(
            PipelineOptions.model_validate_json(options_json),
            schema_from_dict(schema, name, path),
        )
    except ConfigError as exc:
        results.put(("config_error", os.getpid(), str(exc)))
        return
    except BaseException as exc:  # a worker that cannot start says why
        results.put(("config_error", os.getpid(), f"{type(exc).__name__}: {exc}"))
        return
    results.put(("ready", os.getpid(), ""))
    while True:
        item = tasks.get()
        if item is None:
            break
        seq, src_json = item
        src = SourceDoc.model_validate_json(src_json)
        try:
            res = pipeline.process(src)
        except MemoryError as exc:
            res = failure(src, name, "MemoryError", f"{src.path}: out of memory ({exc})")
        except Exception as exc:  # Pipeline.process should not raise; never lose the doc
            res = failure(src, name, type(exc).__name__, f"{src.path}: {exc}")
        results.put(("result", seq, res.model_dump_json()))
    pipeline.close()


def failure(src: SourceDoc, schema_name: str, kind: str, message: str) -> DocumentResult:
    """A FAILURE result for a document that could not be processed at all."""
    return DocumentResult(
        doc_id=src.doc_id,
        source=src.path,
        schema_name=schema_name,
        status=DocStatus.FAILURE,
        errors=[ErrorItem(stage="pipeline", error_type=kind, message=message)],
    )


@dataclass
class _Worker:
    process: Any
    tasks: Any
    job: tuple[int, SourceDoc, float] | None = None  # (seq, src, started)
    ready: bool = False


class WorkerPool:
    """``jobs`` worker processes, each with its own Pipeline (see module docs).

    Args:
        options: The run's options.
        schema: The loaded schema (sent to the workers as its JSON Schema).
        jobs: Worker processes.
        max_seconds: Wall-clock budget of one document (None: none).
        max_memory_mb: Address-space limit of a worker (RLIMIT_AS; None: none).

    Raises:
        ConfigError: a worker could not build its Pipeline (raised by :meth:`start`).
    """

    def __init__(
        self,
        options: PipelineOptions,
        schema: Any,
        jobs: int,
        max_seconds: float | None = None,
        max_memory_mb: int | None = None,
    ) -> None:
        self.options = options
        self.schema = schema
        self.jobs = max(1, int(jobs))
        self.max_seconds = max_seconds
        self.max_memory_mb = max_memory_mb
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs)
        self._ctx = mp.get_context("spawn")
        self._results = self._ctx.Queue()
        self._workers: list[_Worker] = []
        self.replaced = 0

    # -- lifecycle

    def _spawn(self) -> _Worker:
        tasks = self._ctx.Queue()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(
                tasks,
                self._results,
                self.options.model_dump_json(),
                self.schema.schema,
                self.schema.name,
                self.schema.path,
                self.threads,
                self.max_memory_mb,
            ),  # fmt: skip
            daemon=True,
        )
        proc.start()
        return _Worker(proc, tasks)

    def start(self, timeout_s: float = 600.0) -> None:
        """Start the workers and wait until each has built its Pipeline."""
        self._workers = [self._spawn() for _ in range(self.jobs)]
        deadline = time.monotonic() + timeout_s
        while not all(w.ready for w in self._workers):
            try:
                kind, pid, message = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [w for w in self._workers if not w.process.is_alive() and not w.ready]
                if dead:
                    self.close()
                    raise ConfigError(
                        f"a worker process exited while starting (exit code "
                        f"{dead[0].process.exitcode})"
                    ) from None
                if time.monotonic() > deadline:
                    self.close()
                    raise ConfigError("the worker processes did not start in time") from None
                continue
            if kind == "config_error":
                self.close()
                raise ConfigError(message)
            for w in self._workers:
                if w.process.pid == pid:
                    w.ready = True

    def close(self) -> None:
        """Stop every worker (politely, then by force)."""
        for w in self._workers:
            if w.process.is_alive():
                try:
                    w.tasks.put(None)
                except (OSError, ValueError):
                    pass
        for w in self._workers:
            w.process.join(timeout=5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5)
        self._workers = []

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work

    def _replace(self, index: int, reason: str) -> DocumentResult:
        worker = self._workers[index]
        assert worker.job is not None
        seq, src, _ = worker.job
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        logger.warning("%s: %s; starting a new worker", src.path, reason)
        self._workers[index] = self._spawn()  # takes work once it says it is ready
        self.replaced += 1
        kind = "DocumentTimeout" if "seconds" in reason else "WorkerCrashed"
        return failure(src, self.schema.name, kind, f"{src.path}: {reason}")

    def map(self, docs: Iterable[SourceDoc]) -> Iterator[DocumentResult]:
        """Process ``docs``; yields one result per document, in input order."""
        pending = iter(enumerate(docs))
        done: dict[int, DocumentResult] = {}
        next_out = 0
        exhausted = False
        while True:
            for w in self._workers:
                if w.ready and w.job is None and not exhausted:
                    item = next(pending, None)
                    if item is None:
                        exhausted = True
                        break
                    seq, src = item
                    w.job = (seq, src, time.monotonic())
                    w.tasks.put((seq, src.model_dump_json()))
            if exhausted and all(w.job is None for w in self._workers):
                break
            try:
                message = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                message = None
            if message is not None and message[0] == "result":
                _, seq, payload = message
                for w in self._workers:
                    if w.job is not None and w.job[0] == seq:
                        w.job = None
                done[seq] = DocumentResult.model_validate_json(payload)
            elif message is not None and message[0] == "ready":
                for w in self._workers:
                    if w.process.pid == message[1]:
                        w.ready = True
            elif message is not None and message[0] == "config_error":
                raise DocvlmError(f"a replacement worker could not start: {message[2]}")
            now = time.monotonic()
            for i, w in enumerate(self._workers):
                if not w.ready and not w.process.is_alive():
                    raise DocvlmError(
                        f"a replacement worker died while starting (exit code {w.process.exitcode})"
                    )
                if w.job is None:
                    continue
                seq = w.job[0]
                if not w.process.is_alive():
                    code = w.process.exitcode
                    why = f"the worker process died while reading it (exit code {code}"
                    if self.max_memory_mb:
                        why += f"; memory limit {self.max_memory_mb} MB"
                    done[seq] = self._replace(i, why + ")")
                elif self.max_seconds and now - w.job[2] > self.max_seconds:
                    done[seq] = self._replace(
                        i, f"not done within the {self.max_seconds:g} seconds allowed per document"
                    )
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1
