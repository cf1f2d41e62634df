"""Processing one document in a worker: this process's Pipeline, the VLM slot, in-run
retries, and the failure/parked results of documents that could not be read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem, SourceDoc
from docvlm.ops.definition import PipelineConfig

if TYPE_CHECKING:
    from docvlm.pipeline import Pipeline
    from docvlm.schema import SchemaSpec
    from docvlm.workers import WorkerPool


from docvlm.ops.models import Outcome

logger = logging.getLogger(__name__)


_cache_lock = threading.Lock()
_schemas: dict[tuple[str, int], SchemaSpec] = {}
_pipelines: dict[tuple[str, str], Pipeline] = {}
_local_vlm: dict[str, threading.BoundedSemaphore] = {}
_hashes: dict[tuple[str, int], str] = {}


def load_schema_cached(path: str) -> SchemaSpec:
    """The pipeline's schema, loaded once per process (reloaded when the file changes)."""
    from docvlm.schema import load_schema

    key = (path, os.stat(path).st_mtime_ns)
    with _cache_lock:
        if key not in _schemas:
            _schemas[key] = load_schema(path)
        return _schemas[key]


def pipeline_for(config: PipelineConfig) -> Pipeline:
    """This process's :class:`~docvlm.pipeline.Pipeline` for ``config`` (built on first use).

    A worker process (a Dask worker, a Prefect task thread) holds one Pipeline per pipeline
    configuration, so engines load once per process, not once per document.
    """
    from docvlm.pipeline import Pipeline

    spec = load_schema_cached(config.schema_path)
    key = (config.options.model_dump_json(), spec.to_json())
    with _cache_lock:
        if key not in _pipelines:
            _pipelines[key] = Pipeline(config.options, spec)
        return _pipelines[key]


VlmSlot = Callable[[PipelineConfig], contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def local_vlm_slot(config: PipelineConfig) -> Iterator[None]:
    """Hold one of ``config.run.vlm_limit`` per-process slots while a VLM reads a document.

    The orchestrator passes its own slot instead when it has a global limit (the Prefect
    flows use a Prefect global concurrency limit shared by every worker).
    """
    if not config.uses_vlm:
        yield
        return
    with _cache_lock:
        sem = _local_vlm.setdefault(
            config.run.vlm_limit_name, threading.BoundedSemaphore(config.run.vlm_limit)
        )
    with sem:
        yield


def failure_result(src: SourceDoc, table: str, exc: BaseException | str) -> DocumentResult:
    """A FAILURE result for a document whose processing raised (or never finished)."""
    if isinstance(exc, BaseException):
        item = ErrorItem(
            stage=getattr(exc, "stage", "pipeline"),
            error_type=type(exc).__name__,
            message=f"{src.path}: {exc}" if str(exc) else f"{src.path}: {exc!r}",
        )
    else:
        item = ErrorItem(stage="pipeline", error_type="Unfinished", message=f"{src.path}: {exc}")
    return DocumentResult(
        doc_id=src.doc_id, source=src.path, schema_name=table, status=DocStatus.FAILURE,
        errors=[item],
    )  # fmt: skip


def is_retriable(result: DocumentResult, src: SourceDoc) -> bool:
    """A FAILURE is worth retrying unless the input itself is unusable: a discovery error, or
    only ``source``-stage errors (corrupt, encrypted, truncated file) — same bytes, same
    outcome, so those are parked at once."""
    if src.error:
        return False
    if any(e.error_type == "VlmRequestError" for e in result.errors):
        return True  # the VLM server was unreachable: the document itself may be fine
    if result.status != DocStatus.FAILURE:
        return False
    return not result.errors or any(e.stage != "source" for e in result.errors)


def park(result: DocumentResult, attempts: int, why: str = "") -> Outcome:
    """Mark a failed document as parked: its failure row and errors are written, and later
    runs skip it (unless ``--retry-parked`` or ``--reprocess``)."""
    reason = why or f"failed {attempts} attempt(s); parked"
    parked = result.model_copy(deep=True)
    parked.errors.append(ErrorItem(stage="pipeline", error_type="Parked", message=reason))
    return Outcome(result=parked, attempts=attempts, parked=True)


INFLIGHT_DIR = "_inflight"


def mark_in_flight(config: PipelineConfig, src: SourceDoc) -> Path:
    """Record that ``src`` is being processed right now (``OUT/_inflight/<doc_id>.json``).

    The marker is removed when processing returns. One still there when the next run
    reconciles belongs to a document that was in flight when its run died (a crash, an OOM
    kill, ``kill -9``): that, and only that, counts as an attempt towards ``max_attempts``.
    """
    folder = config.out_dir / INFLIGHT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{src.doc_id}.json"
    payload = {"doc_id": src.doc_id, "source": src.path, "table": config_table(config),
               "config_hash": config_hash_cached(config)}  # fmt: skip
    marker.write_text(json.dumps(payload), encoding="utf-8")
    return marker


def config_hash_cached(config: PipelineConfig) -> str:
    """``config.config_hash()``, computed once per process and schema file version."""
    key = (config.model_dump_json(), os.stat(config.schema_path).st_mtime_ns)
    with _cache_lock:
        if key not in _hashes:
            _hashes[key] = config.config_hash()
        return _hashes[key]


def process_one(
    src: SourceDoc, config: PipelineConfig, slot: VlmSlot = local_vlm_slot
) -> DocumentResult:
    """Run this process's Pipeline on one document, holding a VLM ``slot`` while it reads."""
    pipeline = pipeline_for(config)
    started = time.perf_counter()
    marker = mark_in_flight(config, src)
    with slot(config):
        result = pipeline.process(src)
    marker.unlink(missing_ok=True)  # not reached when the document kills the process
    logger.info(
        "event=document_done doc_id=%s source=%s status=%s pages=%d errors=%d seconds=%.2f",
        src.doc_id[:16], src.path, result.status.value, result.pages, len(result.errors),
        time.perf_counter() - started,
    )  # fmt: skip
    return result


def process_with_retries(src: SourceDoc, config: PipelineConfig, attempt: int = 1) -> Outcome:
    """:func:`process_one` with the pipeline's in-run retries (the plain-Python engine)."""
    result: DocumentResult | None = None
    tries = config.run.retries + 1
    for i in range(tries):
        try:
            result = process_one(src, config)
        except Exception as exc:  # the library should not raise; keep the run alive if it does
            logger.exception("event=document_crashed source=%s", src.path)
            result = failure_result(src, config_table(config), exc)
        if not is_retriable(result, src):
            break
        if i + 1 < tries:
            logger.warning("event=document_retry source=%s try=%d", src.path, i + 2)
            time.sleep(config.run.retry_delay_s)
    if result is None:  # pragma: no cover - the loop runs at least once
        raise RuntimeError("no attempt made")
    if result.status == DocStatus.FAILURE:
        return park(result, attempt)
    return Outcome(result=result, attempts=attempt)


def process_in_pool(
    pool: WorkerPool, todo: list[tuple[SourceDoc, int]], config: PipelineConfig
) -> list[Outcome]:
    """:func:`process_with_retries` for a batch, its documents spread over ``pool``'s
    worker processes (``run.workers`` > 1 without Dask). A document is marked in flight
    when a worker takes it; one that crashes or overruns its worker is a failure row,
    retried like any other."""
    results: dict[int, DocumentResult] = {}
    remaining = list(range(len(todo)))
    tries = config.run.retries + 1
    markers: dict[str, Path] = {}

    def start(src: SourceDoc) -> None:
        markers[src.doc_id] = mark_in_flight(config, src)

    for attempt in range(tries):
        began = time.perf_counter()
        retry = []
        docs = [todo[i][0] for i in remaining]
        for i, result in zip(remaining, pool.map(docs, on_start=start), strict=True):
            src = todo[i][0]
            marker = markers.pop(src.doc_id, None)
            if marker is not None:
                marker.unlink(missing_ok=True)
            logger.info(
                "event=document_done doc_id=%s source=%s status=%s pages=%d errors=%d "
                "seconds=%.2f",
                src.doc_id[:16], src.path, result.status.value, result.pages,
                len(result.errors), time.perf_counter() - began,
            )  # fmt: skip
            results[i] = result
            if is_retriable(result, src) and attempt + 1 < tries:
                retry.append(i)
        if not retry:
            break
        logger.warning("event=document_retry documents=%d try=%d", len(retry), attempt + 2)
        time.sleep(config.run.retry_delay_s)
        remaining = retry
    outcomes = []
    for i, (_, attempts) in enumerate(todo):
        result = results[i]
        if result.status == DocStatus.FAILURE:
            outcomes.append(park(result, attempts))
        else:
            outcomes.append(Outcome(result=result, attempts=attempts))
    return outcomes


def config_table(config: PipelineConfig) -> str:
    """The record table's name (the schema name)."""
    return load_schema_cached(config.schema_path).name
