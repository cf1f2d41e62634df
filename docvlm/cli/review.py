"""``docvlm review``: the review page of an output folder, served with editing on request."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from docvlm.cli.exitcodes import Exit
from docvlm.errors import ConfigError

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``review`` to an argparse subparsers object."""
    rv = subparsers.add_parser(
        "review",
        help="see and correct what was read: OUT/review/index.html, --serve to edit",
        description="Write OUT_DIR/review/index.html: page images with a box per value, the "
        "field table, a queue of the lowest confidence and errors first. --serve serves it on "
        "127.0.0.1 with editing; corrections go to OUT_DIR/corrections.parquet.",
    )
    rv.add_argument("out_dir", help="an `extract --out` folder or a `run` output folder")
    rv.add_argument("--schema", help="JSON Schema file (needed to edit; default: from the run)")
    rv.add_argument("--pipeline", help="the pipeline YAML of a run dataset (schema, dpi)")
    rv.add_argument("--dpi", type=int, help="render DPI of the run (default: the run's, or 150)")
    rv.add_argument("--render-backend", choices=["pymupdf", "pdf2image"])
    rv.add_argument("--max-pages", type=int, default=30, help="pages shown per document")
    rv.add_argument("--serve", action="store_true", help="serve the page with editing")
    rv.add_argument("--port", type=int, default=8765)
    rv.add_argument("--reviewer", help="name recorded with each correction (default: $USER)")
    rv.add_argument(
        "--export-labels",
        metavar="DIR",
        help="write <source stem>.json labels of the corrected documents to DIR, then exit",
    )
    rv.set_defaults(func=cmd_review)


def _options(args: argparse.Namespace, out: Path, need_schema: bool):
    from docvlm.review.page import ReviewOptions
    from docvlm.schema import load_schema

    summary: dict[str, Any] = {}
    if (out / "run_summary.json").exists():
        try:
            summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = {}
    schema_path, dpi, backend = args.schema, args.dpi, args.render_backend
    if args.pipeline:
        from docvlm.ops.definition import load_pipeline

        cfg = load_pipeline(args.pipeline)
        schema_path = schema_path or cfg.schema_path
        dpi = dpi or cfg.render.dpi
        backend = backend or cfg.render.backend
    schema_path = schema_path or summary.get("schema_path")
    dpi = dpi or summary.get("render_dpi")
    backend = backend or summary.get("render_backend")
    if need_schema and not schema_path:
        raise ConfigError(
            f"{out}: the schema is needed to check corrections: pass --schema FILE "
            "(or --pipeline FILE.yaml)"
        )
    defaults = ReviewOptions()
    return ReviewOptions(
        dpi=int(dpi or defaults.dpi),
        render_backend=backend or defaults.render_backend,
        max_pages=args.max_pages,
        schema=load_schema(schema_path) if schema_path else None,
    )


def cmd_review(args: argparse.Namespace) -> int:
    from docvlm.review import collect, write_page
    from docvlm.review.corrections import CorrectionLog, export_labels

    out = Path(args.out_dir)
    if args.export_labels:
        options = _options(args, out, need_schema=False)
        written = export_labels(
            out, args.export_labels, options.schema.name if options.schema else None
        )
        print(f"{len(written)} label files written to {args.export_labels}", file=sys.stderr)
        return Exit.OK
    options = _options(args, out, need_schema=args.serve)
    data = collect(out, options)
    page = write_page(data, CorrectionLog(out).latest())
    link_review(out, page)
    for warning in data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"review page: {page}", file=sys.stderr)
    if args.serve:
        import getpass

        from docvlm.review.server import serve

        reviewer = args.reviewer or getpass.getuser()
        serve(data, port=args.port, reviewer=reviewer)
    return Exit.OK


def link_review(out: Path, page: Path) -> None:
    """Add the page's path to ``OUT/run_summary.json`` (the key ``review``), when there is one."""
    from docvlm.ops.dataset import atomic_text

    path = out / "run_summary.json"
    if not path.exists():
        return
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("%s: not updated (%s)", path, exc)
        return
    summary["review"] = str(page)
    atomic_text(path, json.dumps(summary, indent=2))
