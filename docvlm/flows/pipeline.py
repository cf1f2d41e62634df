"""Prefect flows that run the docvlm pipeline with one task per document.

* :func:`pipeline_flow` — run a pipeline definition (``pipelines/*.yaml``) once; the
  entrypoint of the deployments ``docvlm serve`` creates.
* :func:`extract_flow` — extract a schema from files/folders/globs into an output folder.
* :func:`documents_flow` — the work itself; the two above call it as a subflow with the task
  runner the pipeline asks for (one thread, a local Dask cluster, or a Dask scheduler).

Tasks pass small things (source descriptors, ids, small pydantic models); the per-document
task returns the document's ``DocumentResult`` (record, provenance, errors — no images). All
writes (Parquet parts, ledger) happen in the flow's process, so remote Dask workers need only
read access to the source files.

Without ``PREFECT_API_URL`` the flows run against Prefect's embedded local server (started on
demand; nothing to install or start).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from docvlm.datamodel import DocStatus, DocumentResult, SourceDoc
from docvlm.errors import ConfigError, DocumentFailed
from docvlm.ops import commit, process, runner
from docvlm.ops import plan as planning
from docvlm.ops.definition import PipelineConfig, load_pipeline, pipeline_from_dict
from docvlm.ops.ledger import OutputLock
from docvlm.ops.models import BatchReport, Outcome, RunPlan, RunSummary

logger = logging.getLogger(__name__)

ARTIFACT_PREFIX = "docvlm"

Orchestrator = Literal["prefect", "local"]


@contextlib.contextmanager
def prefect_vlm_slot(config: PipelineConfig) -> Iterator[None]:
    """Hold one slot of the Prefect global concurrency limit ``config.run.vlm_limit_name``
    (shared by every run and worker of the same Prefect server) while a VLM reads."""
    if not config.uses_vlm:
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(config.run.vlm_limit_name, occupy=1):
        yield


def run_pipeline(
    config: PipelineConfig,
    orchestrator: Orchestrator = "prefect",
    inputs: Sequence[str] | None = None,
    reprocess: bool = False,
    retry_parked: bool = False,
) -> RunSummary:
    """Run a pipeline once: as a Prefect flow (one task per document) or in plain Python.

    The pipeline is built first, in this process: a configuration error (unknown kind,
    missing model or server, bad schema) raises ConfigError before the ledger or the
    outputs are touched.
    """
    process.pipeline_for(config)
    if orchestrator == "local":
        return runner.run_local(config, inputs, reprocess, retry_parked)
    if orchestrator != "prefect":
        raise ConfigError(f"unknown orchestrator {orchestrator!r}; known: local, prefect")
    return run_config(config, reprocess=reprocess, retry_parked=retry_parked, inputs=inputs)


# -- tasks -----------------------------------------------------------------------------------


@task(name="reconcile-and-plan", cache_policy=NO_CACHE)
def plan_task(
    config: PipelineConfig,
    run_id: str,
    inputs: list[str] | None,
    reprocess: bool,
    retry_parked: bool,
) -> RunPlan:
    """Repair the outputs after a crash, then list the documents still to do."""
    recovered = planning.reconcile(config)
    plan = planning.plan_run(config, run_id, inputs, reprocess, retry_parked)
    plan.recovered = recovered
    return plan


@task(name="start-batch", cache_policy=NO_CACHE)
def start_batch_task(
    config: PipelineConfig, plan: RunPlan, batch: list[SourceDoc]
) -> tuple[list[tuple[SourceDoc, int]], list[Outcome]]:
    """Count an attempt for each document of the batch in the ledger."""
    return planning.start_batch(config, plan, batch)


@task(
    name="process-document",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    task_run_name="process {src.path}",
)
def process_document_task(src: SourceDoc, config: PipelineConfig) -> DocumentResult:
    """Extract one document; raise DocumentFailed on a retriable failure."""
    result = process.process_one(src, config, slot=prefect_vlm_slot)
    if process.is_retriable(result, src):
        raise DocumentFailed(result.model_dump_json())
    return result


@task(name="commit-batch", cache_policy=NO_CACHE)
def commit_batch_task(
    config: PipelineConfig, plan: RunPlan, seq: int, outcomes: list[Outcome]
) -> BatchReport:
    """Write the batch's Parquet part, then record it in the ledger."""
    return commit.commit_batch(config, plan, seq, outcomes)


@task(name="finish-run", cache_policy=NO_CACHE)
def finish_task(config: PipelineConfig, plan: RunPlan, reports: list[BatchReport]) -> RunSummary:
    """Write the run summary JSON and the consolidated CSV copies."""
    return commit.finish_run(config, plan, reports)


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_task(summary: RunSummary) -> None:
    """Publish the run summary as a Prefect table artifact."""
    from prefect.artifacts import create_table_artifact

    rows: list[dict[str, Any]] = [
        {"metric": "documents ok", "value": summary.ok},
        {"metric": "documents failed (parked)", "value": summary.failed},
        {"metric": "documents skipped (already done)", "value": summary.skipped},
        {"metric": "duplicates (same bytes)", "value": summary.duplicates},
        {"metric": "VLM calls", "value": summary.vlm_calls},
        {"metric": "seconds", "value": summary.seconds},
    ]
    rows += [{"metric": f"fill rate: {k}", "value": v} for k, v in summary.fill_rate.items()]
    create_table_artifact(
        table=rows,
        key=f"{ARTIFACT_PREFIX}-{summary.pipeline}",
        description=f"docvlm run {summary.run_id} of pipeline {summary.pipeline} "
        f"→ {summary.out_dir}",
    )


@task(name="load-pipeline", cache_policy=NO_CACHE)
def load_pipeline_task(
    pipeline: str, workers: int | None, dask_address: str | None
) -> PipelineConfig:
    """Load and validate a pipeline definition (YAML)."""
    return _override(load_pipeline(pipeline), workers, dask_address)


# -- flows -----------------------------------------------------------------------------------


@flow(name="docvlm-documents", log_prints=False)
def documents_flow(
    config: PipelineConfig,
    run_id: str,
    reprocess: bool = False,
    retry_parked: bool = False,
    inputs: list[str] | None = None,
) -> RunSummary:
    """Process every due document of a pipeline, one task per document, batch by batch."""
    with OutputLock(config.out_dir, config.run.lock_timeout_s):
        plan = plan_task(config, run_id, inputs, reprocess, retry_parked)
        process = process_document_task.with_options(
            retries=config.run.retries, retry_delay_seconds=config.run.retry_delay_s
        )
        reports = []
        for seq, batch in enumerate(plan.batches(config.run.batch_size)):
            todo, poisoned = start_batch_task(config, plan, batch)
            futures = process.map([src for src, _ in todo], config=_unmapped(config))
            outcomes = poisoned + _outcomes(todo, futures, plan.table)
            reports.append(commit_batch_task(config, plan, seq, outcomes))
        summary = finish_task(config, plan, reports)
        publish_task(summary)
    return summary


@flow(name="docvlm-pipeline")
def pipeline_flow(
    pipeline: str,
    reprocess: bool = False,
    retry_parked: bool = False,
    workers: int | None = None,
    dask_address: str | None = None,
    inputs: list[str] | None = None,
) -> dict[str, Any]:
    """Run a pipeline definition (``pipelines/NAME.yaml``) once."""
    config = load_pipeline_task(pipeline, workers, dask_address)
    return run_config(config, reprocess, retry_parked, inputs)


@flow(name="docvlm-extract")
def extract_flow(
    inputs: list[str],
    schema_file: str,
    out_dir: str,
    options: dict[str, Any] | None = None,
    workers: int = 1,
    reprocess: bool = False,
) -> dict[str, Any]:
    """Extract a JSON Schema's fields from files, folders or globs into ``out_dir``, one task per document.

    ``options`` takes the pipeline-definition keys ``render``, ``detect``, ``ocr``, ``reader``,
    ``output`` (without ``dir``) and ``run``.
    """
    options = dict(options or {})
    output = {"dir": out_dir, **options.pop("output", {})}
    config = pipeline_from_dict(
        {
            "name": "extract",
            "source": list(inputs),
            "schema": schema_file,
            "output": output,
            **options,
        },
        base_dir=Path.cwd(),
    )
    return run_config(_override(config, workers, None), reprocess, False, None)


# -- plumbing (plain functions the flows and the CLI share) ----------------------------------


def run_config(
    config: PipelineConfig,
    reprocess: bool = False,
    retry_parked: bool = False,
    inputs: Sequence[str] | None = None,
) -> Any:
    """Run ``documents_flow`` with the task runner the configuration asks for.

    Called inside a flow it becomes a subflow; called from plain Python (the CLI) it is the
    top-level flow run. Returns the RunSummary (as a dict when called inside a flow, so the
    parent flow's result stays JSON).
    """
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    run_id = planning.new_run_id()
    url = ensure_api_url()
    use = (
        contextlib.nullcontext()
        if PREFECT_API_URL.value() == url
        else temporary_settings(updates={PREFECT_API_URL: url})
    )
    with use:
        ensure_vlm_limit(config)
        sub = documents_flow.with_options(
            task_runner=make_task_runner(config), flow_run_name=f"{config.name}-{run_id}"
        )
        summary = sub(
            config=config,
            run_id=run_id,
            reprocess=reprocess,
            retry_parked=retry_parked,
            inputs=list(inputs) if inputs is not None else None,
        )
    if FlowRunContext.get() is not None:
        return summary.model_dump(mode="json")
    return summary


def make_task_runner(config: PipelineConfig) -> Any:
    """One thread for ``workers: 1``; a local Dask cluster for more; or a Dask scheduler."""
    if config.run.dask_address or config.run.workers > 1:
        from prefect_dask import DaskTaskRunner

        if config.run.dask_address:
            return DaskTaskRunner(address=config.run.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": config.run.workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": "127.0.0.1:0",  # never on every interface
                # workers report task runs to the same Prefect API as the flow
                "env": {"PREFECT_API_URL": ensure_api_url()},
            }
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1)


def ensure_api_url() -> str:
    """The Prefect API in use; without one configured, a server for this process's runs
    (:mod:`docvlm.flows.server`: a child that dies with this process, even on ``kill -9``)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        return str(url)
    from docvlm.flows import server

    return server.start()


def ensure_vlm_limit(config: PipelineConfig) -> None:
    """Create (or update) the global concurrency limit for VLM work on the Prefect server."""
    if not config.uses_vlm:
        return
    from prefect import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            config.run.vlm_limit_name, config.run.vlm_limit
        )


def _override(
    config: PipelineConfig, workers: int | None, dask_address: str | None
) -> PipelineConfig:
    update: dict[str, Any] = {}
    if workers is not None:
        update["workers"] = workers
    if dask_address:
        update["dask_address"] = dask_address
    if not update:
        return config
    return config.model_copy(update={"run": config.run.model_copy(update=update)})


def _unmapped(value: Any) -> Any:
    from prefect import unmapped

    return unmapped(value)


def _outcomes(
    todo: list[tuple[SourceDoc, int]], futures: Sequence[PrefectFuture[Any]], table: str
) -> list[Outcome]:
    """Each document's final result: retries are done, so a failure now means parked."""
    outcomes = []
    log = get_run_logger()
    for (src, attempt), future in zip(todo, futures, strict=True):
        try:
            result: DocumentResult = future.result()
        except DocumentFailed as exc:
            outcomes.append(process.park(exc.result, attempt))
            log.warning("parked %s after failed retries", src.path)
            continue
        except Exception as exc:  # a crashed task (worker lost, bug): park it, keep the run
            log.error("document task crashed for %s: %r", src.path, exc)
            outcomes.append(process.park(process.failure_result(src, table, exc), attempt))
            continue
        if result.status == DocStatus.FAILURE:  # unusable input: no retry could help
            outcomes.append(process.park(result, attempt))
        else:
            outcomes.append(Outcome(result=result, attempts=attempt))
    return outcomes
