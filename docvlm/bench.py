"""Benchmark: pages/s per stage and peak RSS, for born-digital and scanned documents.

Each scenario runs in a fresh subprocess so its peak RSS is its own. Numbers are medians over
``--repeat`` runs; this is a measurement script, not a test (shared machines are noisy).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("render_s", "detect_s", "ocr_s", "read_s")


def make_long_pdf(path: Path, pages: int) -> Path:
    """A born-digital invoice-like PDF with ``pages`` pages of text and a table."""
    import pymupdf

    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((50, 60), "ACME Components GmbH", fontsize=16)
        page.insert_text((50, 80), "Industriestraße 1, 70565 Stuttgart", fontsize=9)
        page.insert_text((380, 60), f"Invoice No.: INV-{n:05d}", fontsize=10)
        page.insert_text((380, 75), "Invoice Date: 20.03.2023", fontsize=10)
        page.insert_text((50, 140), "Description", fontsize=10)
        page.insert_text((330, 140), "Qty", fontsize=10)
        page.insert_text((400, 140), "Unit Price", fontsize=10)
        page.insert_text((500, 140), "Amount", fontsize=10)
        for i in range(30):
            y = 160 + i * 18
            page.insert_text((50, y), f"Item {n}-{i} precision part, lot {i * 7}", fontsize=9)
            page.insert_text((335, y), str(i % 5 + 1), fontsize=9)
            page.insert_text((400, y), f"{12.5 + i:.2f}", fontsize=9)
            page.insert_text((500, y), f"{(12.5 + i) * (i % 5 + 1):.2f}", fontsize=9)
        page.insert_text((400, 730), "Total: 1.234,56 EUR", fontsize=10)
    doc.save(path)
    doc.close()
    return path


def _scenario(kind: str, inputs: list[str], schema: str) -> dict:
    """Run the pipeline once over ``inputs``; return stage times and peak RSS."""
    import resource

    from docvlm.datamodel import PipelineOptions
    from docvlm.pipeline import Pipeline
    from docvlm.schema import load_schema
    from docvlm.sources import discover

    spec = load_schema(schema)
    pipeline = Pipeline(PipelineOptions(), spec)  # engines load here, outside the timing
    totals = dict.fromkeys((*STAGES, "ocr_pages"), 0.0)
    pages = 0
    started = time.perf_counter()
    for src in discover(inputs):
        res = pipeline.process(src)
        pages += res.pages
        for k in totals:
            totals[k] += res.stats.get(k, 0.0)
    wall = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "pages": pages, "wall_s": wall, **totals, "peak_rss_mb": rss_mb}


def run_benchmark(args) -> int:
    """``docvlm bench``: prints a table of medians; see the README for recorded numbers."""
    root = Path(__file__).resolve().parent.parent
    schema = str(root / "schemas" / "invoice.schema.json")
    scanned_dir = Path(args.scanned)
    scanned = sorted(str(p) for p in scanned_dir.glob("*_scan*")) if scanned_dir.is_dir() else []
    with tempfile.TemporaryDirectory() as tmp:
        long_pdf = make_long_pdf(Path(tmp) / "long.pdf", args.pages)
        born = sorted(str(p) for p in scanned_dir.glob("*.pdf") if "_scan" not in p.name)
        scenarios = {
            "born-digital (sample invoices)": born,
            f"born-digital ({args.pages}-page PDF)": [str(long_pdf)],
            "scanned (sample invoices)": scanned,
        }
        rows = []
        for name, inputs in scenarios.items():
            if not inputs:
                continue
            runs = []
            for _ in range(args.repeat if "page PDF" not in name else 1):
                out = subprocess.run(
                    [sys.executable, "-m", "docvlm.bench", name, schema, *inputs],
                    capture_output=True, text=True, check=False, env={**os.environ},
                )  # fmt: skip
                if out.returncode != 0:
                    print(out.stderr[-2000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            rows.append((name, runs))
    header = (
        f"{'scenario':36} {'pages':>5} {'e2e p/s':>8} "
        + " ".join(f"{s[:-2] + ' p/s':>11}" for s in STAGES)
        + f" {'peak RSS MB':>12}"
    )
    print(header)
    for name, runs in rows:
        pages = runs[0]["pages"]

        def med(key: str, runs: list[dict] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        per_stage = []
        for s in STAGES:
            t = med(s)
            if s == "ocr_s" and med("ocr_pages") == 0:
                per_stage.append(f"{'-':>11}")  # text layer everywhere: nothing to OCR
            else:
                per_stage.append(f"{(pages / t if t > 0.001 else float('inf')):>11.1f}")
        print(
            f"{name:36} {pages:>5} {pages / med('wall_s'):>8.2f} "
            + " ".join(per_stage)
            + f" {max(r['peak_rss_mb'] for r in runs):>12.0f}"
        )
    print(
        f"(medians of {args.repeat} runs; one run for the long PDF; OCR runs only on pages without text)"
    )
    return 0


if __name__ == "__main__":
    print(json.dumps(_scenario(sys.argv[1], sys.argv[3:], sys.argv[2])))
