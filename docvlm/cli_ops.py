"""Operations commands: ``docvlm run``, ``docvlm serve``, ``docvlm watch``.

``docvlm.cli`` calls :func:`register` to add them to its subparsers; ``python -m
docvlm.cli_ops`` runs them on their own. Exit codes: 0 done, 1 the run finished but some
documents were parked as failed, 2 bad pipeline definition or usage, 3 another error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_PARKED, EXIT_CONFIG, EXIT_ERROR = 0, 1, 2, 3


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; ``key=value`` pairs of the message become fields."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = [p.split("=", 1) for p in msg.split(" ") if "=" in p]
        if fields and msg.startswith("event="):
            out.update({k: v for k, v in fields})
        else:
            out["message"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(verbose: bool = False) -> None:
    """INFO logs to stderr unless the application set up logging already;
    ``DOCVLM_LOG_FORMAT=json`` gives one JSON object per line."""
    root = logging.getLogger()
    docvlm_logger = logging.getLogger("docvlm")
    docvlm_logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if root.handlers:
        return
    handler = logging.StreamHandler()
    if os.environ.get("DOCVLM_LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    docvlm_logger.addHandler(handler)
    docvlm_logger.propagate = False


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
        "--workers", type=int, default=None, help="process with a local Dask cluster of N workers"
    )
    p.add_argument(
        "--dask-address", default=None, help="use an existing Dask scheduler (tcp://host:8786)"
    )
    p.add_argument(
        "--engine",
        choices=["prefect", "local"],
        default="prefect",
        help="prefect: a Prefect flow, one task per document (default); "
        "local: plain Python, no Prefect",
    )


def _load(args: argparse.Namespace) -> Any:
    from docvlm.config import load_pipeline

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
        if args.engine == "local":
            from docvlm.errors import ConfigError

            raise ConfigError("--workers/--dask-address need the prefect engine")
        cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update=update)})
    return cfg


def _guard(fn: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        from docvlm.errors import ConfigError, DocvlmError

        configure_logging(bool(getattr(args, "verbose", 0)))
        try:
            return int(fn(args))
        except ConfigError as exc:
            print(f"docvlm: error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except DocvlmError as exc:
            print(f"docvlm: error: {exc}", file=sys.stderr)
            return EXIT_ERROR

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


@_guard
def cmd_run(args: argparse.Namespace) -> int:
    """``docvlm run PIPELINE.yaml``."""
    from docvlm.runner import run_pipeline

    cfg = _load(args)
    summary = run_pipeline(
        cfg, engine=args.engine, reprocess=args.reprocess, retry_parked=args.retry_parked
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
    return EXIT_PARKED if summary.failed else EXIT_OK


@_guard
def cmd_serve(args: argparse.Namespace) -> int:
    """``docvlm serve pipelines/``."""
    from docvlm.serve import serve_pipelines

    serve_pipelines(args.pipelines, limit=args.limit, watch=not args.no_watch)
    return EXIT_OK


@_guard
def cmd_watch(args: argparse.Namespace) -> int:
    """``docvlm watch PIPELINE.yaml``."""
    from docvlm.watch import FolderWatcher

    cfg = _load(args)
    watcher = FolderWatcher(cfg, engine=args.engine, catch_up=not args.no_catch_up)
    watcher.run(poll=args.poll)
    print(f"{cfg.name}: {watcher.batches} batches, {watcher.files} files")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m docvlm.cli_ops run|serve|watch ...``."""
    parser = argparse.ArgumentParser(prog="docvlm")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
