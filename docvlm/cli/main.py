"""The ``docvlm`` command: extract, eval, bench, train, run, serve, watch, review.

Exit codes (:class:`~docvlm.cli.exitcodes.Exit`), the same for every command: 0 all done,
1 some documents failed (or were parked), 2 usage or configuration error (nothing written),
3 internal error.
"""

from __future__ import annotations

import argparse
import logging
import sys

from docvlm.cli.exitcodes import Exit
from docvlm.cli.extract import cmd_bench, cmd_eval, cmd_extract
from docvlm.cli.logs import configure_logging
from docvlm.cli.ops import register
from docvlm.cli.review import register as register_review
from docvlm.cli.train import register as register_train
from docvlm.errors import ConfigError, DocvlmError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docvlm", description="Documents to validated tables.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("extract", help="extract a schema's fields from documents into tables")
    ex.add_argument("inputs", nargs="+", help="files, folders or glob patterns")
    ex.add_argument("--schema", required=True, help="JSON Schema file")
    ex.add_argument("--out", help="output folder for Parquet/CSV tables")
    ex.add_argument("--config", help="YAML with render/detect/ocr/reader/output options")
    ex.add_argument(
        "--reader",
        choices=["ocr", "learned", "transformers", "openai", "cascade"],
        help="learned (default: a trained scorer over typed candidates), ocr (layout rules only), "
        "transformers, openai, cascade",
    )
    ex.add_argument(
        "--model",
        help="VLM checkpoint path / hub id, or served model name; for --reader learned, a "
        "folder written by `docvlm train`",
    )
    ex.add_argument("--base-url", dest="base_url", help="OpenAI-compatible server URL")
    ex.add_argument("--api-key", dest="api_key", help="API key (default: $OPENAI_API_KEY)")
    ex.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes (default: one per core); 0 reads in this process",
    )
    ex.add_argument("--dpi", type=int)
    ex.add_argument("--render-backend", choices=["pymupdf", "pdf2image"])
    ex.add_argument("--max-pages", type=int)
    ex.add_argument("--no-detect", action="store_true", help="skip layout detection")
    ex.add_argument("--detector-model", help="path to an exported PicoDet ONNX layout model")
    ex.add_argument("--device", choices=["auto", "cpu", "cuda"])
    ex.add_argument("--formats", help="comma list: parquet,csv")
    ex.add_argument(
        "--einvoice",
        choices=["prefer", "only", "ignore"],
        help="embedded/standalone e-invoice XML: prefer (default), only, ignore",
    )
    ex.add_argument("--show", action="store_true", help="print the record table")
    ex.add_argument("-q", "--quiet", action="store_true")
    ex.set_defaults(func=cmd_extract)

    ev = sub.add_parser("eval", help="score an output table against ground-truth JSON files")
    ev.add_argument("pred", help="output folder (or record table file)")
    ev.add_argument(
        "--truth",
        required=True,
        help="folder of <stem>.json ground truth, or a corrections.parquet",
    )
    ev.add_argument("--schema", required=True)
    ev.set_defaults(func=cmd_eval)

    be = sub.add_parser("bench", help="pages/s and CPU-s/page per stage, floors, peak RSS")
    be.add_argument("--pages", type=int, default=200, help="pages of the born-digital PDF")
    be.add_argument("--scan-pages", type=int, default=6, help="scanned A4 pages (200 dpi)")
    be.add_argument(
        "--jobs", type=int, default=2, help="workers of the multi-process rows (0: none)"
    )
    be.add_argument("--repeat", type=int, default=3, help="runs per scenario (medians)")
    be.add_argument("--save", default=None, help="write the medians to this JSON file")
    be.add_argument("--baseline", default=None, help="compare with a JSON file from --save")
    be.add_argument("--config", help="YAML with the pipeline's options (as for extract)")
    be.set_defaults(func=cmd_bench)

    register(sub)
    register_review(sub)
    register_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docs)."""
    import os

    # offline by default: no telemetry from Prefect's embedded server
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_default = args.command in ("extract", "eval", "bench")
    configure_logging(args.verbose, logging.WARNING if quiet_default else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"docvlm: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    except DocvlmError as exc:
        print(f"docvlm: error: {exc}", file=sys.stderr)
        return Exit.INTERNAL
    except KeyboardInterrupt:
        print("docvlm: interrupted", file=sys.stderr)
        return Exit.INTERNAL
    except Exception as exc:  # pydantic ValidationError for bad options; else a bug
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(options)'}: {e['msg']}" for e in exc.errors()
            )
            print(f"docvlm: error: invalid options: {problems}", file=sys.stderr)
            return Exit.USAGE
        logger.debug("internal error", exc_info=True)
        print(f"docvlm: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return Exit.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
