"""Planning a run: reconcile the output folder with the ledger after a crash, find the
documents that are due, and count an attempt for each document as it starts.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from docvlm.datamodel import SourceDoc
from docvlm.ops.dataset import atomic_parquet, kv, pa_strings
from docvlm.ops.definition import PipelineConfig
from docvlm.ops.ledger import Ledger, PartRecord
from docvlm.ops.models import Outcome, RunPlan
from docvlm.ops.process import INFLIGHT_DIR, failure_result, load_schema_cached, park

logger = logging.getLogger(__name__)


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus random hex (``20250301T061500Z-3fa9c1``)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


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
    counts = {"tmp": 0, "orphans": 0, "broken_parts": 0, "redo_docs": 0, "compacted": 0,
              "in_flight": 0}  # fmt: skip
    if not out.exists():
        return counts
    with Ledger(config.ledger_path) as ledger:
        counts["in_flight"] = _count_interrupted(out, ledger)
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
        logger.info("event=reconciled out_dir=%s %s", out, kv(counts))
    return counts


def _count_interrupted(out: Path, ledger: Ledger) -> int:
    """One attempt for each document that was in flight when its run died (see
    :func:`docvlm.ops.process.mark_in_flight`); the markers are then removed."""
    markers = sorted((out / INFLIGHT_DIR).glob("*.json"))
    for marker in markers:
        try:
            m = json.loads(marker.read_text(encoding="utf-8"))
            ledger.start(m["table"], m["config_hash"], "interrupted", [(m["doc_id"], m["source"])])
            logger.warning(
                "event=interrupted_attempt doc_id=%s source=%s", m["doc_id"], m["source"]
            )
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("event=bad_inflight_marker file=%s error=%s", marker, exc)
        marker.unlink(missing_ok=True)
    return len(markers)


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
        kept = table.filter(pc.is_in(table["doc_id"], value_set=pa_strings(keep)))
        if kept.num_rows != table.num_rows:
            atomic_parquet(kept, path)
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
    """Split a batch into documents to process (with their attempt number) and poison.

    Attempts are counted per document in flight (:func:`~docvlm.ops.process.mark_in_flight`),
    not per batch: a run killed in the middle of a batch charges only the documents that
    were being processed, never the ones still waiting.

    Returns:
        ``(todo, poisoned)``: documents to process with their attempt number, and documents
        that were in flight ``max_attempts`` times when their run died — parked now instead
        of being tried again.
    """
    with Ledger(config.ledger_path) as ledger:
        interrupted = ledger.attempts(plan.table, plan.config_hash)
    todo: list[tuple[SourceDoc, int]] = []
    poisoned: list[Outcome] = []
    limit = config.run.max_attempts
    for d in docs:
        n = interrupted.get(d.doc_id, 0) + 1
        if n > limit:
            msg = f"started {n - 1} times without finishing (crash or kill each time)"
            logger.warning("event=poison_parked doc_id=%s source=%s", d.doc_id, d.path)
            poisoned.append(park(failure_result(d, plan.table, msg), n - 1, msg + "; parked"))
        else:
            todo.append((d, n))
    return todo, poisoned
