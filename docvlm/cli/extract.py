"""``docvlm extract``, ``docvlm eval`` and ``docvlm bench``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from docvlm.cli.exitcodes import Exit


def read_config(path: str | None) -> dict:
    """The sections of a ``--config`` YAML file (every section present, maybe empty)."""
    data: dict = {"render": {}, "detect": {}, "ocr": {}, "reader": {}, "output": {}}
    if path:
        import yaml

        from docvlm.errors import ConfigError

        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read options: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: options must be a mapping of sections")
        data.update(loaded)
    return data


def options_from_args(args: argparse.Namespace):
    from docvlm.datamodel import PipelineOptions

    data = read_config(getattr(args, "config", None))
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
    if args.device and data["reader"].get("kind") in ("transformers", "cascade"):
        data["reader"]["device"] = args.device
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
                filled[key[len("filled_by_") :]] = filled.get(key[len("filled_by_") :], 0) + int(n)
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
    options = options_from_args(args)
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    result = extract(
        args.inputs,
        args.schema,
        options,
        out_dir=args.out,
        progress=not args.quiet,
        jobs=jobs,
        keep_results=not args.out,
    )
    if not args.quiet:
        _summary(result, console)
    if args.show:
        cols = [c for c in result.records.columns if c != "doc_id"]
        view = result.records[cols].copy()
        view["source"] = view["source"].map(lambda s: Path(str(s)).name)
        with pd.option_context(
            "display.max_columns", None, "display.width", 250, "display.max_colwidth", 40
        ):
            print(view.to_string(index=False))
    if result.resumed:
        console.print(f"resumed: {result.resumed} documents were already done in {args.out}")
    if args.out:
        console.print(f"tables written to {args.out}")
    if _every_vlm_call_failed(result):
        console.print("[red]every VLM request failed[/red]: check the server or model")
        return Exit.DOCUMENTS_FAILED
    return Exit.DOCUMENTS_FAILED if result.failed else Exit.OK


def _every_vlm_call_failed(result) -> bool:
    """Whether a VLM was asked and not one request got through (a total outage)."""
    asked = [r for r in result.results if r.stats.get("vlm_calls", 0) > 0]
    if not asked:
        return False
    failed = [r for r in asked if any(e.error_type == "VlmRequestError" for e in r.errors)]
    vlm_values = sum(
        n for r in asked for k, n in r.stats.items()
        if k.startswith("filled_by_") and k not in ("filled_by_ocr", "filled_by_einvoice")
    )  # fmt: skip
    return len(failed) == len(asked) and vlm_values == 0


def cmd_eval(args: argparse.Namespace) -> int:
    from docvlm.evaluate import evaluate
    from docvlm.schema import load_schema

    scores = evaluate(args.pred, args.truth, load_schema(args.schema))
    if scores.empty:
        print(f"no ground truth matched in {args.truth}", file=sys.stderr)
        return Exit.DOCUMENTS_FAILED
    print(scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return Exit.OK


def cmd_bench(args: argparse.Namespace) -> int:
    from docvlm.bench import run_benchmark

    return run_benchmark(args)
