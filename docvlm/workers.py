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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from docvlm.datamodel import (
    DocStatus,
    DocumentResult,
    ErrorItem,
    PageContent,
    PipelineOptions,
    SourceDoc,
)
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
    from docvlm.procs import die_with_parent

    die_with_parent(kernel_signal=False)  # a killed `extract` never leaves workers behind
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
        key, kind, src_json, extra = item
        src = SourceDoc.model_validate_json(src_json)
        try:
            if kind == "pages":  # one page range of a split document, up to the reader
                payload = pipeline.content(src, range(*extra)).model_dump_json()
            elif kind == "read":  # a split document's merged pages, read as one
                content = PageContent.model_validate_json(extra)
                payload = pipeline.finish(src, content).model_dump_json()
            else:
                payload = pipeline.process(src).model_dump_json()
        except MemoryError as exc:
            kind = "failure"
            payload = failure(src, name, "MemoryError", f"{src.path}: out of memory ({exc})")
        except Exception as exc:  # Pipeline.process should not raise; never lose the doc
            kind = "failure"
            payload = failure(src, name, type(exc).__name__, f"{src.path}: {exc}")
        if kind == "failure":
            payload = payload.model_dump_json()
        results.put(("result", key, kind, payload))
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


#: a job's key: (document's sequence number, part): ``WHOLE``, ``READ`` or a range's index
WHOLE, READ = -1, -2


@dataclass
class _Worker:
    process: Any
    tasks: Any
    job: tuple[tuple[int, int], SourceDoc, float] | None = None  # (key, src, started)
    ready: bool = False


@dataclass
class _Split:
    """A document being read in page ranges: the parts that are in so far."""

    src: SourceDoc
    parts: list[PageContent | None]


class WorkerPool:
    """``jobs`` worker processes, each with its own Pipeline (see module docs).

    Args:
        options: The run's options.
        schema: The loaded schema (sent to the workers as its JSON Schema).
        jobs: Worker processes.
        max_seconds: Wall-clock budget of one document, or of one page range of a split
            one (None: none).
        max_memory_mb: Address-space limit of a worker (RLIMIT_AS; None: none).
        split_pages: A PDF of more pages is read in page ranges by several workers and
            merged back (:mod:`docvlm.split`); None: ``DOCVLM_SPLIT_PAGES``; 0: never.

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
        split_pages: int | None = None,
    ) -> None:
        from docvlm.settings import get_settings

        self.options = options
        self.schema = schema
        self.jobs = max(1, int(jobs))
        self.max_seconds = max_seconds
        self.max_memory_mb = max_memory_mb
        self.split_pages = get_settings().split_pages if split_pages is None else split_pages
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
        _, src, _ = worker.job
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        logger.warning("%s: %s; starting a new worker", src.path, reason)
        self._workers[index] = self._spawn()  # takes work once it says it is ready
        self.replaced += 1
        kind = "DocumentTimeout" if "seconds" in reason else "WorkerCrashed"
        return failure(src, self.schema.name, kind, f"{src.path}: {reason}")

    def map(
        self,
        docs: Iterable[SourceDoc],
        on_start: Callable[[SourceDoc], None] | None = None,
    ) -> Iterator[DocumentResult]:
        """Process ``docs``; yields one result per document, in input order.

        A large PDF is read in page ranges by several workers, then merged and read as one
        document (see :mod:`docvlm.split`); a part that fails, crashes or overruns its time
        makes the whole document a failure. ``on_start`` is called with each document as
        its first job is handed to a worker."""
        from docvlm.split import merge, page_ranges

        pending = iter(enumerate(docs))
        queued: deque[tuple[tuple[int, int], str, SourceDoc, Any]] = deque()
        splits: dict[int, _Split] = {}
        started: set[int] = set()
        done: dict[int, DocumentResult] = {}
        next_out = 0
        exhausted = False

        def next_job() -> tuple[tuple[int, int], str, SourceDoc, Any] | None:
            nonlocal exhausted
            while not queued and not exhausted:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                seq, src = item
                ranges = page_ranges(src, self.jobs, self.split_pages, self.options.render)
                if ranges is None:
                    queued.append(((seq, WHOLE), "doc", src, None))
                    continue
                splits[seq] = _Split(src, [None] * len(ranges))
                for i, r in enumerate(ranges):
                    queued.append(((seq, i), "pages", src, (r.start, r.stop)))
            return queued.popleft() if queued else None

        def settle(seq: int, res: DocumentResult) -> None:
            if splits.pop(seq, None) is not None:  # a failed split: drop its other parts
                for job in [j for j in queued if j[0][0] == seq]:
                    queued.remove(job)
            done[seq] = res

        while True:
            for w in self._workers:
                if w.ready and w.job is None:
                    job = next_job()
                    if job is None:
                        break
                    key, kind, src, extra = job
                    w.job = (key, src, time.monotonic())
                    if on_start is not None and key[0] not in started:
                        on_start(src)
                    started.add(key[0])
                    w.tasks.put((key, kind, src.model_dump_json(), extra))
            if exhausted and not queued and all(w.job is None for w in self._workers):
                break
            try:
                message = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                message = None
            if message is not None and message[0] == "result":
                _, key, kind, payload = message
                key = tuple(key)
                for w in self._workers:
                    if w.job is not None and w.job[0] == key:
                        w.job = None
                seq, part = key
                if kind == "pages":
                    split = splits.get(seq)
                    if split is not None:
                        split.parts[part] = PageContent.model_validate_json(payload)
                        if all(p is not None for p in split.parts):
                            merged = merge([p for p in split.parts if p is not None])
                            del splits[seq]
                            # first in line: its worker frees the parts' memory soonest
                            queued.appendleft(((seq, READ), "read", split.src,
                                               merged.model_dump_json()))  # fmt: skip
                elif seq in splits or part in (WHOLE, READ):
                    settle(seq, DocumentResult.model_validate_json(payload))
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
                seq, part = w.job[0]
                if not w.process.is_alive():
                    code = w.process.exitcode
                    why = f"the worker process died while reading it (exit code {code}"
                    if self.max_memory_mb:
                        why += f"; memory limit {self.max_memory_mb} MB"
                    res = self._replace(i, why + ")")
                elif self.max_seconds and now - w.job[2] > self.max_seconds:
                    res = self._replace(
                        i, f"not done within the {self.max_seconds:g} seconds allowed per document"
                    )
                else:
                    continue
                if seq in splits or part in (WHOLE, READ):
                    settle(seq, res)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1
