"""Unattended runs: exactly-once processing by content, incremental partitioned outputs.

A run of a :class:`~docvlm.config.PipelineConfig` goes through the same steps whatever
executes it (the Prefect flow in ``flows/pipeline.py`` or the plain loop :func:`run_local`):

1. :func:`reconcile` the output folder with the ledger (crash recovery);
2. :func:`plan_run`: discover the sources and keep the documents the ledger has not settled;
3. per batch: :func:`start_batch` (count an attempt), :func:`process_one` per document
   (retried on failure), :func:`commit_batch` (write the Parquet part, then one ledger
   transaction that names it);
4. :func:`finish_run`: run summary JSON, consolidated CSV, ledger run row.

Outputs: ``OUT/<table>/run_date=YYYY-MM-DD/part-<run_id>-<seq>.parquet`` for every table of
the contract (``<schema>``, ``<schema>__<array>``, ``provenance``, ``errors``);
:func:`read_table` returns one table consolidated over all committed parts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docvlm.config import PipelineConfig
from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem, SourceDoc
from docvlm.errors import DocvlmError
from docvlm.ledger import Ledger, LedgerEntry, OutputLock, PartRecord

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from docvlm.extraction.schema import SchemaSpec
    from docvlm.pipeline import Engines

logger = logging.getLogger(__name__)

Engine = Literal["prefect", "local"]


class DocumentFailed(DocvlmError):
    """A document's attempt failed (raised inside a task so the task's retries apply).

    ``args[0]`` is the failed attempt's DocumentResult as JSON (a plain string pickles across
    Dask workers).
    """

    stage = "pipeline"

    @property
    def result(self) -> DocumentResult:
        return DocumentResult.model_validate_json(self.args[0])


class _Small(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunPlan(_Small):
    """What a run will do: passed between tasks, so only ids and paths."""

    run_id: str
    pipeline: str
    table: str = Field(description="the record table (schema name)")
    config_hash: str
    run_date: str
    started_at: str
    discovered: int = 0
    duplicates: int = Field(default=0, description="same bytes under another name (skipped)")
    skipped: int = Field(default=0, description="already done or parked for this configuration")
    todo: list[SourceDoc] = Field(default_factory=list)
    recovered: dict[str, int] = Field(default_factory=dict)

    def batches(self, size: int) -> list[list[SourceDoc]]:
        """The documents to do, in batches of ``size``."""
        return [self.todo[i : i + size] for i in range(0, len(self.todo), size)]


class Outcome(_Small):
    """A document's final result in this run and how it got there."""

    result: DocumentResult
    attempts: int = 1
    parked: bool = False


class BatchReport(_Small):
    """What one committed batch added."""

    part_id: str
    files: list[str]
    documents: int
    status: dict[str, int] = Field(default_factory=dict)
    parked: list[str] = Field(default_factory=list, description="sources parked in this batch")
    filled: dict[str, int] = Field(default_factory=dict, description="non-empty values per field")
    vlm_calls: int = 0
    seconds: float = 0.0


class RunSummary(_Small):
    """The run summary (written to ``OUT/run_summary.json`` and ``OUT/_runs/<run_id>.json``)."""

    run_id: str
    pipeline: str
    table: str
    config_hash: str
    out_dir: str
    started_at: str
    finished_at: str
    seconds: float
    discovered: int
    duplicates: int
    skipped: int
    processed: int
    ok: int = Field(description="documents written with status success or partial")
    success: int
    partial: int
    failed: int = Field(description="documents parked after every retry failed")
    parked_sources: list[str] = Field(default_factory=list)
    vlm_calls: int
    fill_rate: dict[str, float] = Field(description="share of processed documents per field")
    parts: list[str]
    recovered: dict[str, int]
    totals: dict[str, int] = Field(description="ledger totals for the table after the run")


# -- helpers ---------------------------------------------------------------------------------


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus random hex (``20250301T061500Z-3fa9c1``)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


_cache_lock = threading.Lock()
_schemas: dict[tuple[str, int], SchemaSpec] = {}
_engines: dict[str, Engines] = {}
_local_vlm: dict[str, threading.BoundedSemaphore] = {}


def load_schema_cached(path: str) -> SchemaSpec:
    """The pipeline's schema, loaded once per process (reloaded when the file changes)."""
    from docvlm.extraction.schema import load_schema

    key = (path, os.stat(path).st_mtime_ns)
    with _cache_lock:
        if key not in _schemas:
            _schemas[key] = load_schema(path)
        return _schemas[key]


def _engines_for(config: PipelineConfig) -> Engines:
    from docvlm.pipeline import Engines

    options = config.options
    key = options.model_dump_json()
    with _cache_lock:
        if key not in _engines:
            _engines[key] = Engines(options)
        return _engines[key]


@contextlib.contextmanager
def vlm_slot(config: PipelineConfig) -> Iterator[None]:
    """Hold one slot of the global VLM limit while a VLM reader works on a document.

    Inside a Prefect run this is the Prefect global concurrency limit
    ``config.run.vlm_limit_name`` (shared by every run and worker talking to the same Prefect
    server); outside Prefect, a per-process semaphore of ``config.run.vlm_limit``.
    """
    if not config.uses_vlm:
        yield
        return
    if _in_prefect_run():
        from prefect.concurrency.sync import concurrency

        with concurrency(config.run.vlm_limit_name, occupy=1):
            yield
        return
    with _cache_lock:
        sem = _local_vlm.setdefault(
            config.run.vlm_limit_name, threading.BoundedSemaphore(config.run.vlm_limit)
        )
    with sem:
        yield


def _in_prefect_run() -> bool:
    import sys

    if "prefect" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


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


# -- the steps -------------------------------------------------------------------------------


def reconcile(config: PipelineConfig) -> dict[str, int]:
    """Bring the output folder and the ledger back in line (call under the output lock).

    * temporary files of interrupted writes are deleted;
    * part files the ledger does not name (written, then killed before the commit) are
      deleted — their documents are not in the ledger, so this run does them again;
    * parts with a missing file are forgotten, their other files deleted, their documents
      redone;
    * parts still holding rows of documents that were reprocessed into a newer part are
      rewritten without those rows.

    Returns:
        counts: ``tmp``, ``orphans``, ``broken_parts``, ``redo_docs``, ``compacted``.
    """
    out = config.out_dir
    counts = {"tmp": 0, "orphans": 0, "broken_parts": 0, "redo_docs": 0, "compacted": 0}
    if not out.exists():
        return counts
    with Ledger(config.ledger_path) as ledger:
        parts = {p.part_id: p for p in ledger.parts()}
        for tmp in out.glob("*/run_date=*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            counts["tmp"] += 1
        for f in out.glob("*/run_date=*/part-*.parquet"):
            if f.name[len("part-") : -len(".parquet")] not in parts:
                logger.warning("event=orphan_part_deleted file=%s", f)
                f.unlink(missing_ok=True)
                counts["orphans"] += 1
        for part in parts.values():
            if any(not (out / rel).exists() for rel in part.files):
                for rel in part.files:
                    (out / rel).unlink(missing_ok=True)
                n = ledger.drop_part(part.part_id)
                logger.warning("event=broken_part part=%s redo_docs=%d", part.part_id, n)
                counts["broken_parts"] += 1
                counts["redo_docs"] += n
            elif compact_part(config, ledger, part):
                counts["compacted"] += 1
    if any(counts.values()):
        logger.info("event=reconciled out_dir=%s %s", out, _kv(counts))
    return counts


def compact_part(config: PipelineConfig, ledger: Ledger, part: PartRecord) -> bool:
    """Rewrite a part without the rows of documents that now live in a newer part.

    Returns:
        True when the part was rewritten or removed.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    live = ledger.live_docs(part.part_id)
    if len(live) >= part.n_docs:
        return False
    out = config.out_dir
    if not live:
        for rel in part.files:
            (out / rel).unlink(missing_ok=True)
        ledger.drop_part(part.part_id)
        return True
    keep = list(live)
    for rel in part.files:
        path = out / rel
        table = pq.read_table(path)
        kept = table.filter(pc.is_in(table["doc_id"], value_set=_pa_strings(keep)))
        if kept.num_rows != table.num_rows:
            _atomic_parquet(kept, path)
    ledger.update_part(part.part_id, len(live))
    return True


def plan_run(
    config: PipelineConfig,
    run_id: str,
    inputs: Sequence[str] | None = None,
    reprocess: bool = False,
    retry_parked: bool = False,
) -> RunPlan:
    """Discover the sources (or ``inputs``) and keep what the ledger has not settled.

    A document is settled when the ledger holds it for the same configuration hash, as done
    or parked. ``reprocess`` ignores the ledger; ``retry_parked`` gives parked ones another go.
    Identical bytes under several names are one document (the first path is used).
    """
    from docvlm.sources import discover

    spec = load_schema_cached(config.schema_path)
    chash = config.config_hash()
    now = datetime.now(UTC)
    docs = discover(list(inputs) if inputs is not None else config.source)
    unique: dict[str, SourceDoc] = {}
    for d in docs:
        unique.setdefault(d.doc_id, d)
    todo: list[SourceDoc] = []
    skipped = 0
    with Ledger(config.ledger_path) as ledger:
        states = ledger.states(spec.name, unique)
        for d in unique.values():
            st = states.get(d.doc_id)
            settled = (
                st is not None
                and st.config_hash == chash
                and (st.status == "done" or (st.status == "parked" and not retry_parked))
            )
            if settled and not reprocess:
                skipped += 1
            else:
                todo.append(d)
        if reprocess:
            ledger.forget(spec.name, [d.doc_id for d in todo])
        ledger.record_run(run_id, config.name, chash, now.isoformat(timespec="seconds"))
    plan = RunPlan(
        run_id=run_id,
        pipeline=config.name,
        table=spec.name,
        config_hash=chash,
        run_date=now.strftime("%Y-%m-%d"),
        started_at=now.isoformat(timespec="seconds"),
        discovered=len(docs),
        duplicates=len(docs) - len(unique),
        skipped=skipped,
        todo=todo,
    )
    logger.info(
        "event=run_planned pipeline=%s run_id=%s discovered=%d duplicates=%d skipped=%d todo=%d",
        config.name, run_id, plan.discovered, plan.duplicates, skipped, len(todo),
    )  # fmt: skip
    return plan


def start_batch(
    config: PipelineConfig, plan: RunPlan, docs: Sequence[SourceDoc]
) -> tuple[list[tuple[SourceDoc, int]], list[Outcome]]:
    """Count a started attempt per document, before any work is done.

    Returns:
        ``(todo, poisoned)``: documents to process with their attempt number, and documents
        that were started ``max_attempts`` times before without finishing (they crashed or
        were killed each time) — parked now instead of being tried again.
    """
    with Ledger(config.ledger_path) as ledger:
        attempts = ledger.start(
            plan.table, plan.config_hash, plan.run_id, [(d.doc_id, d.path) for d in docs]
        )
    todo: list[tuple[SourceDoc, int]] = []
    poisoned: list[Outcome] = []
    limit = config.run.max_attempts
    for d in docs:
        n = attempts.get(d.doc_id, 1)
        if n > limit:
            msg = f"started {n - 1} times without finishing (crash or kill each time)"
            logger.warning("event=poison_parked doc_id=%s source=%s", d.doc_id, d.path)
            poisoned.append(park(failure_result(d, plan.table, msg), n - 1, msg + "; parked"))
        else:
            todo.append((d, n))
    return todo, poisoned


def process_one(src: SourceDoc, config: PipelineConfig) -> DocumentResult:
    """Run the library pipeline on one document with this process's cached engines."""
    from docvlm.pipeline import process_document

    spec = load_schema_cached(config.schema_path)
    started = time.perf_counter()
    with vlm_slot(config):
        result = process_document(src, spec, config.options, engines=_engines_for(config))
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


def config_table(config: PipelineConfig) -> str:
    """The record table's name (the schema name)."""
    return load_schema_cached(config.schema_path).name


def commit_batch(
    config: PipelineConfig, plan: RunPlan, seq: int, outcomes: Sequence[Outcome]
) -> BatchReport:
    """Write one Parquet part per table for these documents, then record them in the ledger.

    Files first (atomic rename each), ledger second (one transaction naming the part): a
    crash between the two leaves files that the next :func:`reconcile` deletes.
    """
    from docvlm.tables import build_tables

    started = time.perf_counter()
    spec = load_schema_cached(config.schema_path)
    results = [o.result for o in outcomes]
    tables = build_tables(results, spec)
    part_id = f"{plan.run_id}-{seq:04d}"
    files: list[str] = []
    for name, df in tables.items():
        if df.empty and name != spec.name:
            continue
        rel = f"{name}/run_date={plan.run_date}/part-{part_id}.parquet"
        _atomic_parquet(_to_arrow(df), config.out_dir / rel)
        files.append(rel)
    entries = [
        LedgerEntry(
            doc_id=o.result.doc_id,
            status="parked" if o.parked else "done",
            doc_status=o.result.status.value,
            source=o.result.source,
            error="; ".join(e.message for e in o.result.errors)[:2000] if o.parked else None,
            attempts=o.attempts,
        )
        for o in outcomes
    ]
    part = PartRecord(part_id, spec.name, plan.run_id, tuple(files), len(entries))
    with Ledger(config.ledger_path) as ledger:
        superseded = ledger.commit_part(part, plan.config_hash, entries)
        for old in ledger.parts():
            if old.part_id in superseded:
                compact_part(config, ledger, old)
    status: dict[str, int] = {}
    for r in results:
        status[r.status.value] = status.get(r.status.value, 0) + 1
    main = tables[spec.name]
    filled = {c: int(main[c].notna().sum()) for c in spec.columns}
    for arr in spec.arrays:
        child = tables.get(f"{spec.name}__{arr.path}")
        filled[arr.path] = int(child["doc_id"].nunique()) if child is not None else 0
    report = BatchReport(
        part_id=part_id,
        files=files,
        documents=len(outcomes),
        status=status,
        parked=[o.result.source for o in outcomes if o.parked],
        filled=filled,
        vlm_calls=int(sum(r.stats.get("vlm_calls", 0) for r in results)),
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "event=batch_committed pipeline=%s part=%s documents=%d %s",
        config.name, part_id, len(outcomes), _kv(status),
    )  # fmt: skip
    return report


def finish_run(config: PipelineConfig, plan: RunPlan, batches: Sequence[BatchReport]) -> RunSummary:
    """Summarise the run: JSON next to the outputs, consolidated CSV, ledger run row."""
    spec = load_schema_cached(config.schema_path)
    status: dict[str, int] = {}
    filled: dict[str, int] = {}
    for b in batches:
        for k, v in b.status.items():
            status[k] = status.get(k, 0) + v
        for k, v in b.filled.items():
            filled[k] = filled.get(k, 0) + v
    processed = sum(b.documents for b in batches)
    parked = [s for b in batches for s in b.parked]
    fields = [*spec.columns, *(a.path for a in spec.arrays)]
    with Ledger(config.ledger_path) as ledger:
        totals = ledger.counts(spec.name)
    started = datetime.fromisoformat(plan.started_at)
    finished = datetime.now(UTC)
    summary = RunSummary(
        run_id=plan.run_id,
        pipeline=config.name,
        table=spec.name,
        config_hash=plan.config_hash,
        out_dir=str(config.out_dir),
        started_at=plan.started_at,
        finished_at=finished.isoformat(timespec="seconds"),
        seconds=round((finished - started).total_seconds(), 3),
        discovered=plan.discovered,
        duplicates=plan.duplicates,
        skipped=plan.skipped,
        processed=processed,
        ok=status.get("success", 0) + status.get("partial", 0),
        success=status.get("success", 0),
        partial=status.get("partial", 0),
        failed=len(parked),
        parked_sources=parked,
        vlm_calls=sum(b.vlm_calls for b in batches),
        fill_rate={f: round(filled.get(f, 0) / processed, 4) if processed else 0.0 for f in fields},
        parts=[b.part_id for b in batches],
        recovered=plan.recovered,
        totals=totals,
    )
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    blob = summary.model_dump_json(indent=2)
    _atomic_text(out / "_runs" / f"{plan.run_id}.json", blob)
    _atomic_text(out / "run_summary.json", blob)
    if "csv" in config.output.formats and processed:
        export_csv(config)
    with Ledger(config.ledger_path) as ledger:
        ledger.record_run(
            plan.run_id, config.name, plan.config_hash, plan.started_at,
            json.loads(summary.model_dump_json()),
        )  # fmt: skip
    logger.info(
        "event=run_finished pipeline=%s run_id=%s processed=%d ok=%d failed=%d skipped=%d "
        "seconds=%.1f",
        config.name, plan.run_id, processed, summary.ok, summary.failed, plan.skipped,
        summary.seconds,
    )  # fmt: skip
    return summary


def export_csv(config: PipelineConfig) -> list[Path]:
    """Write each consolidated table as ``OUT/<table>.csv`` (atomic; a convenience copy)."""
    from docvlm.tables import write_table

    written = []
    for name in table_names(config.out_dir):
        written.append(
            write_table(read_table(config.out_dir, name), config.out_dir / f"{name}.csv")
        )
    return written


# -- plain-Python engine ---------------------------------------------------------------------


def run_local(
    config: PipelineConfig,
    inputs: Sequence[str] | None = None,
    reprocess: bool = False,
    retry_parked: bool = False,
) -> RunSummary:
    """Run the pipeline once in this process, without Prefect (same ledger semantics)."""
    run_id = new_run_id()
    with OutputLock(config.out_dir, config.run.lock_timeout_s):
        recovered = reconcile(config)
        plan = plan_run(config, run_id, inputs, reprocess, retry_parked)
        plan.recovered = recovered
        reports = []
        for seq, batch in enumerate(plan.batches(config.run.batch_size)):
            todo, outcomes = start_batch(config, plan, batch)
            outcomes += [process_with_retries(src, config, n) for src, n in todo]
            reports.append(commit_batch(config, plan, seq, outcomes))
        return finish_run(config, plan, reports)


def run_pipeline(
    config: PipelineConfig,
    engine: Engine = "prefect",
    inputs: Sequence[str] | None = None,
    reprocess: bool = False,
    retry_parked: bool = False,
) -> RunSummary:
    """Run a pipeline once: as a Prefect flow (one task per document) or in plain Python."""
    if engine == "local":
        return run_local(config, inputs, reprocess, retry_parked)
    if engine != "prefect":
        raise DocvlmError(f"unknown engine {engine!r}; known engines: local, prefect")
    flows = import_flows()
    return flows.run_config(config, reprocess=reprocess, retry_parked=retry_parked, inputs=inputs)


def import_flows() -> Any:
    """Import ``flows.pipeline`` (a package next to ``docvlm`` in a checkout)."""
    import importlib
    import sys

    try:
        return importlib.import_module("flows.pipeline")
    except ModuleNotFoundError as exc:
        if exc.name not in ("flows", "flows.pipeline"):
            raise
        root = str(Path(__file__).resolve().parent.parent)
        if not (Path(root) / "flows" / "pipeline.py").exists():
            raise DocvlmError(
                "the Prefect flows (package 'flows') are not installed; use --engine local"
            ) from exc
        sys.path.insert(0, root)  # Dask workers inherit sys.path, so they find it too
        return importlib.import_module("flows.pipeline")


# -- reading ---------------------------------------------------------------------------------


def table_names(out_dir: str | Path) -> list[str]:
    """Tables that have committed parts in ``out_dir``."""
    out = Path(out_dir)
    ledger_path = out / "_ledger.sqlite"
    if ledger_path.exists():
        with Ledger(ledger_path) as ledger:
            names = {rel.split("/", 1)[0] for p in ledger.parts() for rel in p.files}
        return sorted(names)
    return sorted(p.name for p in out.iterdir() if p.is_dir() and any(p.glob("run_date=*")))


def part_files(out_dir: str | Path, table: str) -> list[Path]:
    """Committed part files of ``table``, oldest first (uncommitted leftovers of a crash are
    not included, so readers never see rows the ledger does not vouch for)."""
    out = Path(out_dir)
    ledger_path = out / "_ledger.sqlite"
    if not ledger_path.exists():
        return sorted((out / table).glob("run_date=*/part-*.parquet"), key=lambda p: p.name)
    with Ledger(ledger_path) as ledger:
        rels = [rel for p in ledger.parts() for rel in p.files if rel.split("/", 1)[0] == table]
    return [out / rel for rel in rels if (out / rel).exists()]


def read_table(out_dir: str | Path, table: str) -> pd.DataFrame:
    """One output table consolidated over every committed run, as a pandas DataFrame.

    Args:
        out_dir: the pipeline's output folder (``output.dir``).
        table: ``invoice``, ``invoice__line_items``, ``provenance`` or ``errors``.

    Returns:
        all rows of all committed parts, plus the ``run_date`` partition column; empty (no
        columns) when nothing was written yet.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = part_files(out_dir, table)
    if not files:
        return pd.DataFrame()
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    pieces = []
    for f in files:
        t = pq.read_table(f)
        for field in schema:
            if field.name not in t.column_names:
                t = t.append_column(field.name, pa.nulls(t.num_rows, field.type))
        t = t.select(schema.names).cast(schema)
        run_date = f.parent.name.split("=", 1)[1]
        pieces.append(t.append_column("run_date", pa.array([run_date] * t.num_rows, pa.string())))
    return pa.concat_tables(pieces).to_pandas().reset_index(drop=True)


# -- file writing ----------------------------------------------------------------------------


def _pa_strings(values: list[str]) -> pa.Array:
    import pyarrow as pa

    return pa.array(values, pa.string())


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """DataFrame → Arrow with stable types across parts (all-null columns get a real type)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_large_string(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        elif pa.types.is_null(field.type):
            target = pa.list_(pa.float64()) if field.name == "bbox" else pa.string()
            table = table.set_column(i, field.name, pa.nulls(table.num_rows, target))
    return table


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _kv(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())
