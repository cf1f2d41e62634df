"""Command line: ``docvlm extract``, ``docvlm eval``, ``docvlm bench`` (+ run/serve/watch)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from docvlm.errors import DocvlmError

logger = logging.getLogger(__name__)


def _options_from_args(args: argparse.Namespace):
    from docvlm.datamodel import PipelineOptions

    data: dict = {"render": {}, "detect": {}, "ocr": {}, "reader": {}, "output": {}}
    if getattr(args, "config", None):
        import yaml

        loaded = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
        for key, value in loaded.items():
            data[key] = value
    if args.dpi:
        data["render"]["dpi"] = args.dpi
    if args.render_backend:
        data["render"]["backend"] = args.render_backend
    if args.max_pages:
        data["render"]["max_pages"] = args.max_pages
    if args.no_detect:
        data["detect"]["enabled"] = False
    if args.detector_model:
        data["detect"]["model_path"] = args.detector_model
    if args.device:
        data["detect"]["device"] = args.device
        data["reader"]["device"] = args.device
    if args.reader:
        data["reader"]["kind"] = args.reader
    for key in ("model", "base_url", "api_key"):
        if getattr(args, key):
            data["reader"][key] = getattr(args, key)
    if args.formats:
        data["output"]["formats"] = args.formats.split(",")
    if getattr(args, "einvoice", None):
        data.setdefault("einvoice", {})["mode"] = args.einvoice
    configured_vlm = data["reader"].get("model") or data["reader"].get("base_url")
    if configured_vlm and not args.reader and "kind" not in data["reader"]:
        data["reader"]["kind"] = "cascade"  # a configured VLM defaults to the cascade
    return PipelineOptions.model_validate(data)


def _summary(result, console) -> None:
    from rich.table import Table

    from docvlm.datamodel import DocStatus

    counts = {s: sum(1 for r in result.results if r.status == s) for s in DocStatus}
    table = Table(title=f"docvlm extract · schema {result.schema.name}")
    table.add_column("documents")
    table.add_column("success", style="green")
    table.add_column("partial", style="yellow")
    table.add_column("failure", style="red")
    table.add_row(
        str(len(result.results)),
        str(counts[DocStatus.SUCCESS]),
        str(counts[DocStatus.PARTIAL]),
        str(counts[DocStatus.FAILURE]),
    )
    console.print(table)
    records = result.records
    readable = [r for r in result.results if r.status != DocStatus.FAILURE]
    if readable and result.schema.fields:
        fill = Table(title="fields filled")
        fill.add_column("field")
        fill.add_column("filled", justify="right")
        for spec in result.schema.fields:
            n = int(records[spec.path].notna().sum())
            fill.add_row(spec.path, f"{n}/{len(records)}")
        console.print(fill)
    calls = sum(int(r.stats.get("vlm_calls", 0)) for r in result.results)
    filled: dict[str, int] = {}
    for r in result.results:
        for key, n in r.stats.items():
            if key.startswith("filled_by_"):
                filled[key[len("filled_by_"):]] = filled.get(key[len("filled_by_"):], 0) + int(n)
    if calls or len(filled) > 1:
        by_reader = ", ".join(f"{k}={v}" for k, v in sorted(filled.items()))
        console.print(f"VLM calls: {calls}; values filled by reader: {by_reader}")
    for r in result.results:
        if r.status == DocStatus.FAILURE:
            reason = r.errors[0].message if r.errors else "unknown"
            console.print(f"[red]failed[/red] {r.source}: {reason}")


def cmd_extract(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.console import Console

    from docvlm.pipeline import extract

    console = Console(stderr=True)
    options = _options_from_args(args)
    result = extract(args.inputs, args.schema, options, out_dir=args.out, progress=not args.quiet)
    if not args.quiet:
        _summary(result, console)
    if args.show:
        cols = [c for c in result.records.columns if c != "doc_id"]
        view = result.records[cols].copy()
        view["source"] = view["source"].map(lambda s: Path(str(s)).name)
        with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 40):
            print(view.to_string(index=False))
    if args.out:
        console.print(f"tables written to {args.out}")
    return 1 if result.failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    from docvlm.evaluate import evaluate
    from docvlm.extraction.schema import load_schema

    scores = evaluate(args.pred, args.truth, load_schema(args.schema))
    if scores.empty:
        print(f"no ground truth matched in {args.truth}", file=sys.stderr)
        return 1
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from docvlm.bench import run_benchmark

    return run_benchmark(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docvlm", description="Documents to validated tables.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("extract", help="extract a schema's fields from documents into tables")
    ex.add_argument("inputs", nargs="+", help="files, folders or glob patterns")
    ex.add_argument("--schema", required=True, help="JSON Schema file")
    ex.add_argument("--out", help="output folder for Parquet/CSV tables")
    ex.add_argument("--config", help="YAML with render/detect/ocr/reader/output options")
    ex.add_argument("--reader", help="ocr (default), transformers, openai, cascade")
    ex.add_argument("--model", help="VLM checkpoint path / hub id, or served model name")
    ex.add_argument("--base-url", dest="base_url", help="OpenAI-compatible server URL")
    ex.add_argument("--api-key", dest="api_key", help="API key (default: $OPENAI_API_KEY)")
    ex.add_argument("--dpi", type=int)
    ex.add_argument("--render-backend", choices=["pymupdf", "pdf2image"])
    ex.add_argument("--max-pages", type=int)
    ex.add_argument("--no-detect", action="store_true", help="skip layout detection")
    ex.add_argument("--detector-model", help="path to an exported PicoDet ONNX layout model")
    ex.add_argument("--device", choices=["auto", "cpu", "cuda"])
    ex.add_argument("--formats", help="comma list: parquet,csv")
    ex.add_argument("--einvoice", choices=["prefer", "only", "ignore"],
                    help="embedded/standalone e-invoice XML: prefer (default), only, ignore")
    ex.add_argument("--show", action="store_true", help="print the record table")
    ex.add_argument("-q", "--quiet", action="store_true")
    ex.set_defaults(func=cmd_extract)

    ev = sub.add_parser("eval", help="score an output table against ground-truth JSON files")
    ev.add_argument("pred", help="output folder (or record table file)")
    ev.add_argument("--truth", required=True, help="folder of <stem>.json ground truth")
    ev.add_argument("--schema", required=True)
    ev.set_defaults(func=cmd_eval)

    be = sub.add_parser("bench", help="pages/s per stage and peak RSS")
    be.add_argument("--pages", type=int, default=500, help="pages of the long born-digital PDF")
    be.add_argument("--scanned", default="sample_docs/invoices", help="folder with scanned docs")
    be.add_argument("--repeat", type=int, default=3)
    be.set_defaults(func=cmd_bench)

    try:
        from docvlm.cli_ops import register
    except ImportError:
        register = None
    if register is not None:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    # offline by default: no telemetry from Prefect's embedded server
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except DocvlmError as exc:
        print(f"docvlm: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # pydantic ValidationError for bad options, etc.
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            print(f"docvlm: invalid options: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
