"""Operations commands: ``docvlm run``, ``docvlm serve``, ``docvlm watch``."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from docvlm.cli.exitcodes import Exit

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``run``, ``serve`` and ``watch`` to an argparse subparsers object."""
    run = subparsers.add_parser(
        "run",
        help="run a pipeline definition once (exactly once per document)",
        description="Run pipelines/NAME.yaml once: new or changed documents are processed, "
        "documents the ledger already holds are skipped, outputs are appended atomically.",
    )
    run.add_argument("pipeline", help="pipeline definition (YAML)")
    run.add_argument(
        "--reprocess",
        action="store_true",
        help="process every document again (its old rows are replaced)",
    )
    run.add_argument(
        "--retry-parked",
        action="store_true",
        help="give documents parked after failures another try",
    )
    _add_scale(run)
    run.add_argument("--json", action="store_true", help="print the run summary as JSON")
    run.set_defaults(func=cmd_run)

    serve = subparsers.add_parser(
        "serve",
        help="serve pipelines as Prefect deployments on their cron schedules",
        description="Register every pipeline definition as a Prefect deployment "
        "(docvlm-pipeline/NAME) with its cron schedule and run them as they come due. Uses "
        "the embedded local Prefect server, or the server at PREFECT_API_URL.",
    )
    serve.add_argument("pipelines", nargs="+", help="pipeline folders or YAML files")
    serve.add_argument("--limit", type=int, default=None, help="most flow runs at once")
    serve.add_argument(
        "--no-watch",
        action="store_true",
        help="do not watch folders of pipelines with watch.enabled",
    )
    serve.set_defaults(func=cmd_serve)

    watch = subparsers.add_parser(
        "watch",
        help="watch a pipeline's source folder and process files as they arrive",
        description="Process files once completely written (size and mtime stable for "
        "watch.settle_s), in batches per burst; exactly once by content.",
    )
    watch.add_argument("pipeline", help="pipeline definition (YAML)")
    _add_scale(watch)
    watch.add_argument(
        "--poll",
        action="store_true",
        help="poll the folder instead of inotify (network file systems)",
    )
    watch.add_argument(
        "--no-catch-up", action="store_true", help="ignore files already in the folder at start"
    )
    watch.set_defaults(func=cmd_watch)


def _add_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="N worker processes: a local Dask cluster (prefect), or plain processes (local)",
    )
    p.add_argument(
        "--dask-address", default=None, help="use an existing Dask scheduler (tcp://host:8786)"
    )
    p.add_argument(
        "--orchestrator",
        "--engine",  # the old name, still accepted
        dest="orchestrator",
        choices=["prefect", "local"],
        default="prefect",
        help="prefect: a Prefect flow, one task per document (default); "
        "local: plain Python, no Prefect",
    )


def _load(args: argparse.Namespace) -> Any:
    from docvlm.ops.definition import load_pipeline

    cfg = load_pipeline(args.pipeline)
    update: dict[str, Any] = {}
    if args.workers is not None:
        if args.workers < 1:
            from docvlm.errors import ConfigError

            raise ConfigError("--workers must be at least 1")
        update["workers"] = args.workers
    if args.dask_address:
        update["dask_address"] = args.dask_address
    if update:
        if args.orchestrator == "local" and "dask_address" in update:
            from docvlm.errors import ConfigError

            raise ConfigError("--dask-address needs the prefect orchestrator")
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update=update)})
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    """``docvlm run PIPELINE.yaml``."""
    from docvlm.flows.pipeline import run_pipeline

    cfg = _load(args)
    summary = run_pipeline(
        cfg, args.orchestrator, reprocess=args.reprocess, retry_parked=args.retry_parked
    )
    if args.json:
        print(summary.model_dump_json(indent=2))
    else:
        print(
            f"{cfg.name}: {summary.processed} processed ({summary.ok} ok, {summary.failed} "
            f"parked), {summary.skipped} already done, {summary.duplicates} duplicates "
            f"in {summary.seconds:.1f}s → {summary.out_dir}"
        )
        for src in summary.parked_sources:
            print(f"  parked: {src}")
    return Exit.DOCUMENTS_FAILED if summary.failed else Exit.OK


def cmd_serve(args: argparse.Namespace) -> int:
    """``docvlm serve pipelines/``."""
    from docvlm.flows.serve import serve_pipelines

    serve_pipelines(args.pipelines, limit=args.limit, watch=not args.no_watch)
    return Exit.OK


def cmd_watch(args: argparse.Namespace) -> int:
    """``docvlm watch PIPELINE.yaml``."""
    from docvlm.ops.watch import FolderWatcher

    cfg = _load(args)
    process = None
    if args.orchestrator == "prefect":
        from docvlm.flows.pipeline import run_pipeline

        def process(paths: list[str] | None) -> Any:
            return run_pipeline(cfg, "prefect", inputs=paths)

    watcher = FolderWatcher(cfg, process=process, catch_up=not args.no_catch_up)
    watcher.run(poll=args.poll)
    print(f"{cfg.name}: {watcher.batches} batches, {watcher.files} files")
    return Exit.OK
