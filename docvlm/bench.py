"""Benchmark: pages/s and CPU-s/page per stage, with the floors measured in the same run.

Scenarios (each in a fresh subprocess, so its peak RSS is its own):

- ``floor: PyMuPDF words``: ``page.get_text("words")`` alone over the born-digital PDF — what
  reading the text layer costs at the least;
- ``born-digital``: the pipeline over one dense ``--pages``-page PDF, in one process and with
  ``--jobs`` worker processes;
- ``floor: RapidOCR alone``: RapidOCR's own one-call pipeline over the scanned pages;
- ``scanned``: the pipeline over dense A4 pages scanned at 200 dpi (PNG), in one process and
  with ``--jobs`` workers.

Peak RSS is that of the whole process tree (the workers included), sampled every 50 ms.
Numbers are medians over ``--repeat`` runs; this is a measurement script, not a test (shared
machines are noisy: compare ratios to the floors). ``--save FILE`` writes the medians as
JSON; ``--baseline FILE`` prints them next to an earlier ``--save``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STAGES = ("render", "detect", "ocr", "read")
SCAN_DPI = 200


def make_long_pdf(path: Path, pages: int) -> Path:
    """A born-digital invoice-like PDF with ``pages`` dense pages of text and a table."""
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


def make_scans(folder: Path, pages: int) -> list[Path]:
    """``pages`` dense A4 pages as 200-dpi PNG scans (no text layer: every page is OCRed)."""
    import pymupdf

    pdf = make_long_pdf(folder / "scan_source.pdf", pages)
    out = []
    with pymupdf.open(pdf) as doc:
        for n, page in enumerate(doc):
            pix = page.get_pixmap(dpi=SCAN_DPI, colorspace="rgb", alpha=False)
            pix.set_dpi(SCAN_DPI, SCAN_DPI)
            path = folder / f"scan_{n + 1:03d}.png"
            pix.save(path)
            out.append(path)
    pdf.unlink()
    return out


# -- one scenario, in its own process ------------------------------------------------------


class _TreeSampler:
    """Peak RSS of this process and all its descendants, and their CPU seconds."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _tree(self) -> list[Any]:
        import psutil

        try:
            return [self._me, *self._me.children(recursive=True)]
        except psutil.Error:
            return [self._me]

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def sample(self) -> None:
        import psutil

        total = 0
        for proc in self._tree():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak = max(self.peak, total)

    def cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) of each live process of the tree, by pid."""
        import psutil

        out = {}
        for proc in self._tree():
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            out[proc.pid] = t.user + t.system
        return out

    def __enter__(self) -> _TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def _floor_words(inputs: list[str]) -> dict:
    import pymupdf

    pages = 0
    with _TreeSampler() as tree:
        cpu0, wall0 = tree.cpu(), time.perf_counter()
        for path in inputs:
            with pymupdf.open(path) as doc:
                for page in doc:
                    page.get_text("words", sort=False)
                    pages += 1
        wall, cpu = time.perf_counter() - wall0, _cpu_used(cpu0, tree.cpu())
    return {"pages": pages, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": tree.peak / 2**20}


def _floor_rapidocr(inputs: list[str]) -> dict:
    import numpy as np
    from PIL import Image
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "warning"})
    with Image.open(inputs[0]) as img:  # warm-up, as the pipeline gets (see _pipeline)
        engine(np.asarray(img.convert("RGB")))
    with _TreeSampler() as tree:
        cpu0, wall0 = tree.cpu(), time.perf_counter()
        for path in inputs:
            with Image.open(path) as img:
                engine(np.asarray(img.convert("RGB")))
        wall, cpu = time.perf_counter() - wall0, _cpu_used(cpu0, tree.cpu())
    return {"pages": len(inputs), "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": tree.peak / 2**20}


def _pipeline(
    inputs: list[str], schema: str, jobs: int, warmup: str, options: dict | None = None
) -> dict:
    """The pipeline over ``inputs``; engines (and workers) are started outside the timing,
    and each process reads the one-page ``warmup`` document first: ONNX Runtime's first
    run of a model costs seconds (allocation, kernel choice) that a long run pays once."""
    from docvlm.datamodel import PipelineOptions
    from docvlm.pipeline import Pipeline
    from docvlm.schema import load_schema
    from docvlm.sources import discover

    spec = load_schema(schema)
    options = PipelineOptions.model_validate(options or {})
    docs = discover(inputs)
    totals: dict[str, float] = {}
    pages = 0
    with _TreeSampler() as tree:
        if jobs:
            from docvlm.workers import WorkerPool

            pool = WorkerPool(options, spec, jobs)
            pool.start()
            # one warm-up page per worker: each takes one while the others are busy (the
            # same SourceDoc repeated: discover() would fold repeated paths into one)
            for _ in pool.map(discover([warmup]) * jobs):
                pass
            stream = pool.map(docs)
        else:
            pipeline = Pipeline(options, spec)
            pipeline.process(discover([warmup])[0])
            stream = (pipeline.process(d) for d in docs)
        cpu0, wall0 = tree.cpu(), time.perf_counter()
        for res in stream:
            pages += res.pages
            for k, v in res.stats.items():
                totals[k] = totals.get(k, 0.0) + v
        wall, cpu = time.perf_counter() - wall0, _cpu_used(cpu0, tree.cpu())
        if jobs:
            pool.close()
    stages = {k: totals.get(k, 0.0) for s in STAGES for k in (f"{s}_s", f"{s}_cpu_s")}
    return {
        "pages": pages, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": tree.peak / 2**20,
        "ocr_pages": totals.get("ocr_pages", 0.0), **stages,
    }  # fmt: skip


def _scenario(spec: dict) -> dict:
    if spec["kind"] == "words":
        return _floor_words(spec["inputs"])
    if spec["kind"] == "rapidocr":
        return _floor_rapidocr(spec["inputs"])
    return _pipeline(
        spec["inputs"], spec["schema"], spec["jobs"], spec["warmup"], spec.get("options")
    )


# -- the command ---------------------------------------------------------------------------


def _medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    pages = max(out["pages"], 1)
    out["pages_per_s"] = out["pages"] / out["wall_s"] if out["wall_s"] > 0 else float("inf")
    out["cpu_s_per_page"] = out["cpu_s"] / pages
    for s in STAGES:
        if f"{s}_cpu_s" in out:
            out[f"{s}_cpu_s_per_page"] = out[f"{s}_cpu_s"] / pages
    out["runs"] = len(runs)
    return out


def scenarios(
    tmp: Path, pages: int, scan_pages: int, jobs: int, options: dict | None = None
) -> list[tuple[str, dict]]:
    """The scenarios of one benchmark run: (name, spec) pairs, floors first in each group;
    a group of 0 pages is left out. ``options``: the pipeline's options (``--config``)."""
    root = Path(__file__).resolve().parent.parent
    schema = str(root / "schemas" / "invoice.schema.json")
    warm = tmp / "warmup"
    warm.mkdir(exist_ok=True)
    groups = []
    if pages:
        long_pdf = [str(make_long_pdf(tmp / "long.pdf", pages))]
        warm_pdf = str(make_long_pdf(warm / "warmup.pdf", 1))
        groups.append((f"PyMuPDF words ({pages} p)", "words", f"born-digital {pages} p",
                       long_pdf, warm_pdf))  # fmt: skip
    if scan_pages:
        scans = [str(p) for p in make_scans(tmp, scan_pages)]
        warm_scan = str(make_scans(warm, 1)[0])
        groups.append((f"RapidOCR alone ({scan_pages} scans)", "rapidocr",
                       f"scanned A4 {SCAN_DPI} dpi", scans, warm_scan))  # fmt: skip
    out: list[tuple[str, dict]] = []
    for floor, kind, name, inputs, warmup in groups:
        out.append((f"floor: {floor}", {"kind": kind, "inputs": inputs}))
        for n in (0, jobs) if jobs else (0,):
            label = f"{name}, {n} workers" if n else f"{name}, 1 process"
            out.append((label, {"kind": "pipeline", "inputs": inputs, "schema": schema,
                                "jobs": n, "warmup": warmup,
                                "options": options or {}}))  # fmt: skip
    return out


def measure(
    pages: int, scan_pages: int, jobs: int, repeat: int, options: dict | None = None
) -> dict[str, dict]:
    """Medians of every scenario over ``repeat`` fresh-process runs, by scenario name."""
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in scenarios(Path(tmp), pages, scan_pages, jobs, options):
            runs = []
            for _ in range(repeat):
                out = subprocess.run(
                    [sys.executable, "-m", "docvlm.bench", json.dumps(spec)],
                    capture_output=True, text=True, check=False, env={**os.environ},
                )  # fmt: skip
                if out.returncode != 0:
                    raise RuntimeError(
                        f"{name}: the benchmark process failed:\n{out.stderr[-3000:]}"
                    )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            rows[name] = _medians(runs)
            print(f"  measured {name}: {rows[name]['pages_per_s']:.2f} pages/s", file=sys.stderr)
    return rows


def _floor_for(name: str, rows: dict[str, dict]) -> dict | None:
    prefix = "floor: PyMuPDF" if name.startswith("born-digital") else "floor: RapidOCR"
    return next((r for n, r in rows.items() if n.startswith(prefix)), None)


def format_table(rows: dict[str, dict]) -> str:
    """The medians as a text table; pipeline rows carry their ratio to the floor."""
    head = (f"{'scenario':36} {'pages':>5} {'pages/s':>8} {'CPU-s/p':>8} "
            + " ".join(f"{s + ' CPU':>10}" for s in STAGES)
            + f" {'peak RSS MB':>11} {'vs floor':>9}")  # fmt: skip
    lines = [head]
    for name, r in rows.items():
        stages = " ".join(
            f"{r[f'{s}_cpu_s_per_page']:>10.3f}" if f"{s}_cpu_s_per_page" in r else f"{'-':>10}"
            for s in STAGES
        )
        floor = None if name.startswith("floor") else _floor_for(name, rows)
        ratio = f"{r['pages_per_s'] / floor['pages_per_s']:>8.2f}x" if floor else f"{'':>9}"
        lines.append(
            f"{name:36} {r['pages']:>5.0f} {r['pages_per_s']:>8.2f} {r['cpu_s_per_page']:>8.3f} "
            f"{stages} {r['peak_rss_mb']:>11.0f} {ratio}"
        )
    return "\n".join(lines)


def format_comparison(before: dict[str, dict], after: dict[str, dict]) -> str:
    """pages/s and CPU-s/page of the scenarios both runs measured, before → after."""
    lines = [f"{'scenario':36} {'pages/s before → after':>26} {'CPU-s/page before → after':>28}"]
    for name, a in after.items():
        b = before.get(name)
        if b is None:
            continue
        speed = f"{b['pages_per_s']:.2f} → {a['pages_per_s']:.2f} ({a['pages_per_s'] / b['pages_per_s']:.2f}x)"
        cpu = f"{b['cpu_s_per_page']:.3f} → {a['cpu_s_per_page']:.3f} ({b['cpu_s_per_page'] / max(a['cpu_s_per_page'], 1e-9):.2f}x less)"
        lines.append(f"{name:36} {speed:>26} {cpu:>28}")
    return "\n".join(lines)


def run_benchmark(args: Any) -> int:
    """``docvlm bench``: prints the medians (and a comparison with ``--baseline``)."""
    options = None
    if getattr(args, "config", None):
        from docvlm.cli.extract import read_config
        from docvlm.datamodel import PipelineOptions

        # validated here, so that a bad file fails before minutes of measuring
        options = PipelineOptions.model_validate(read_config(args.config))
        options = options.model_dump(mode="json")
    rows = measure(args.pages, args.scan_pages, args.jobs, args.repeat, options)
    print(format_table(rows))
    print(f"(medians of {args.repeat} runs on {os.cpu_count()} cores; peak RSS: the whole "
          "process tree, the worst run; vs floor: pages/s over the floor's)")  # fmt: skip
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["docvlm", "bench", *sys.argv[2:]]) if sys.argv else "docvlm bench",
        "cores": os.cpu_count(),
        "rows": rows,
    }
    if args.baseline:
        before = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
        print(f"\ncompared with {args.baseline} ({before.get('date', '?')}):")
        print(format_comparison(before["rows"], rows))
    if args.save:
        Path(args.save).write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"saved to {args.save}")
    return 0


if __name__ == "__main__":
    print(json.dumps(_scenario(json.loads(sys.argv[1]))))
