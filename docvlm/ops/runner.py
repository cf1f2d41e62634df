"""Unattended runs: exactly-once processing by content, incremental partitioned outputs.

A run of a :class:`~docvlm.ops.definition.PipelineConfig` goes through the same steps whatever
orchestrates it (the Prefect flows in :mod:`docvlm.flows.pipeline`, or the plain loop
:func:`run_local`):

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
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from docvlm.ops.commit import commit_batch, finish_run
from docvlm.ops.definition import PipelineConfig
from docvlm.ops.ledger import OutputLock
from docvlm.ops.models import RunSummary
from docvlm.ops.plan import new_run_id, plan_run, reconcile, start_batch
from docvlm.ops.process import (
    load_schema_cached,
    pipeline_for,
    process_in_pool,
    process_with_retries,
)

if TYPE_CHECKING:
    from docvlm.workers import WorkerPool

logger = logging.getLogger(__name__)


def run_local(
    config: PipelineConfig,
    inputs: Sequence[str] | None = None,
    reprocess: bool = False,
    retry_parked: bool = False,
) -> RunSummary:
    """Run the pipeline once without Prefect (same ledger semantics): in this process, or
    with ``run.workers`` > 1 in that many local worker processes (no Dask).

    The Pipeline is built before the output folder is locked or the ledger opened, so a
    configuration error leaves both untouched.
    """
    pipeline_for(config)
    run_id = new_run_id()
    with OutputLock(config.out_dir, config.run.lock_timeout_s), _pool(config) as pool:
        recovered = reconcile(config)
        plan = plan_run(config, run_id, inputs, reprocess, retry_parked)
        plan.recovered = recovered
        reports = []
        for seq, batch in enumerate(plan.batches(config.run.batch_size)):
            todo, outcomes = start_batch(config, plan, batch)
            if pool is not None:
                outcomes += process_in_pool(pool, todo, config)
            else:
                outcomes += [process_with_retries(src, config, n) for src, n in todo]
            reports.append(commit_batch(config, plan, seq, outcomes))
        return finish_run(config, plan, reports)


@contextlib.contextmanager
def _pool(config: PipelineConfig) -> Iterator[WorkerPool | None]:
    """``run.workers`` worker processes (each its own Pipeline) when more than one."""
    if config.run.workers <= 1:
        yield None
        return
    from docvlm.pipeline import _memory_budget
    from docvlm.workers import WorkerPool

    options = config.options
    pool = WorkerPool(
        options,
        load_schema_cached(config.schema_path),
        config.run.workers,
        options.limits.max_seconds_per_doc,
        _memory_budget(options, config.run.workers),
    )
    pool.start()  # raises ConfigError when a worker cannot build its Pipeline
    try:
        yield pool
    finally:
        pool.close()
