"""Committing a batch (its Parquet part first, then one ledger transaction) and finishing a
run (summary JSON, consolidated CSV, ledger run row).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from docvlm.ops.dataset import atomic_parquet, atomic_text, kv, read_table, table_names, to_arrow
from docvlm.ops.definition import PipelineConfig
from docvlm.ops.ledger import Ledger, LedgerEntry, PartRecord
from docvlm.ops.models import BatchReport, Outcome, RunPlan, RunSummary
from docvlm.ops.plan import compact_part
from docvlm.ops.process import load_schema_cached

logger = logging.getLogger(__name__)


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
        atomic_parquet(to_arrow(df), config.out_dir / rel)
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
        config.name, part_id, len(outcomes), kv(status),
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
        schema_path=str(config.schema_path),
        render_dpi=config.render.dpi,
        render_backend=config.render.backend,
    )
    out = config.out_dir
    if (out / "review" / "index.html").exists():  # written by `docvlm review OUT`
        summary.review = str(out / "review" / "index.html")
    out.mkdir(parents=True, exist_ok=True)
    blob = summary.model_dump_json(indent=2)
    atomic_text(out / "_runs" / f"{plan.run_id}.json", blob)
    atomic_text(out / "run_summary.json", blob)
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
