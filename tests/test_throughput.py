"""Throughput (issue 12): born-digital pages skip rendering and the detector, large PDFs are
split across workers, ``run`` uses local workers, and the benchmark prints its floors."""

from __future__ import annotations

from pathlib import Path

import pytest

from docvlm.datamodel import PipelineOptions, RenderOptions
from docvlm.pipeline import Pipeline
from docvlm.render import get_renderer
from docvlm.render.pdf import PyMuPdfRenderer
from docvlm.schema import load_schema
from docvlm.sources import inspect_file

ROOT = Path(__file__).resolve().parents[1]
INVOICES = ROOT / "sample_docs" / "invoices"
SCHEMA = ROOT / "schemas" / "invoice.schema.json"


class _Counter:
    """Wraps a real bound method and counts its calls."""

    def __init__(self, method):
        self.method = method
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.method(*args, **kwargs)

    def __getattr__(self, name):  # the wrapped object's other attributes
        return getattr(self.method, name)


def _counted(pipeline: Pipeline) -> _Counter:
    counter = _Counter(pipeline.layout.predict)
    pipeline.layout.predict = counter  # the real detector, counted
    return counter


@pytest.fixture(scope="module")
def spec():
    return load_schema(SCHEMA)


def _renders(monkeypatch) -> list[int]:
    """Page numbers PyMuPDF renders from now on (the real renderer, recorded)."""
    seen: list[int] = []
    real = PyMuPdfRenderer._render_image

    def record(self, src, pdf_page, number, dpi):
        seen.append(number)
        return real(self, src, pdf_page, number, dpi)

    monkeypatch.setattr(PyMuPdfRenderer, "_render_image", record)
    return seen


@pytest.mark.parametrize("name", ["inv_de_01.pdf", "inv_en_multi_01.pdf", "inv_fr_01.pdf"])
def test_born_digital_pages_get_regions_without_render_or_detector(
    name: str, spec, monkeypatch
) -> None:
    src = inspect_file(INVOICES / name)
    fast = Pipeline(PipelineOptions(), spec)
    calls = _counted(fast)
    rendered = _renders(monkeypatch)
    res = fast.process(src)
    assert calls.calls == 0 and rendered == []
    assert res.stats["text_layout_pages"] == res.pages and "detect_pages" not in res.stats

    seeing = Pipeline(PipelineOptions(detect={"text_layer_regions": False}), spec)
    seen = _counted(seeing)
    before = seeing.process(src)
    assert seen.calls == before.pages == res.pages
    assert res.record == before.record
    assert [(v.path, v.value, v.page) for v in res.values] == [
        (v.path, v.value, v.page) for v in before.values
    ]
    # the regions were used: values sit in text-layer regions, not 'residual'
    assert {v.region_class for v in res.values} - {"residual"}


def test_ruled_table_and_title_come_from_the_text_layer() -> None:
    src = inspect_file(INVOICES / "inv_de_01.pdf")
    renderer = get_renderer(src, RenderOptions())
    (page,) = list(renderer.iter_pages(src))
    labels = [r.label for r in page.layout.regions]
    assert "table" in labels and "text" in labels
    table = next(r for r in page.layout.regions if r.label == "table")
    # the items table is drawn with rulings from y=317 to y=450 pt (150 dpi: x 150/72)
    assert table.bbox[1] == pytest.approx(317 * 150 / 72, abs=3)
    assert table.bbox[3] == pytest.approx(450 * 150 / 72, abs=3)
    assert not page.rendered and page.layout.image_share == 0.0


def _pdf_with_photo(path: Path, share: float) -> Path:
    """A page with plenty of text and an image covering ``share`` of it."""
    import numpy as np
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for i in range(8):
        page.insert_text((50, 40 + 14 * i), f"Invoice No: INV-{i:04d} Total: {i}9.50 EUR")
    rng = np.random.default_rng(0)
    pix = pymupdf.Pixmap(
        pymupdf.csRGB, 64, 64, rng.integers(0, 255, 64 * 64 * 3, np.uint8).tobytes(), False
    )
    side = (595 * 842 * share) ** 0.5  # a square image (its aspect ratio is kept)
    page.insert_image(pymupdf.Rect(40, 180, 40 + side, 180 + side), pixmap=pix)
    doc.save(path)
    doc.close()
    return path


def test_page_with_a_large_image_still_runs_the_detector(tmp_path: Path, spec) -> None:
    pipeline = Pipeline(PipelineOptions(), spec)
    calls = _counted(pipeline)
    big = pipeline.process(inspect_file(_pdf_with_photo(tmp_path / "big.pdf", 0.5)))
    assert calls.calls == 1 and big.stats["detect_pages"] == 1
    small = pipeline.process(inspect_file(_pdf_with_photo(tmp_path / "small.pdf", 0.05)))
    assert calls.calls == 1 and small.stats["text_layout_pages"] == 1


@pytest.mark.parametrize("dpi,max_pixels", [(150, 40_000_000), (97, 40_000_000), (300, 2_000_000)])
def test_unrendered_page_size_is_the_rendered_size(dpi: int, max_pixels: int) -> None:
    src = inspect_file(INVOICES / "inv_en_multi_01.pdf")
    renderer = get_renderer(src, RenderOptions(dpi=dpi, max_pixels=max_pixels))
    for rendered in renderer.iter_pages(src):
        size = (rendered.page.width, rendered.page.height)
        assert not rendered.rendered
        assert rendered.image.size == size  # rendered now, on demand


# -- large PDFs split across workers ------------------------------------------------------


def _long_pdf(path: Path, pages: int) -> Path:
    from docvlm.bench import make_long_pdf

    return make_long_pdf(path, pages)


def _view(res):
    return (
        res.doc_id, res.source, res.status, res.pages, res.record,
        [(v.path, v.value, v.raw, v.page, v.bbox, v.region_class, v.reader, v.confidence)
         for v in res.values],
        [(e.stage, e.error_type, e.message) for e in res.errors],
    )  # fmt: skip


def test_page_ranges_cover_every_page_once(tmp_path: Path) -> None:
    from docvlm.split import page_ranges

    src = inspect_file(_long_pdf(tmp_path / "long.pdf", 23))
    ranges = page_ranges(src, jobs=2, split_pages=5)
    assert [p for r in ranges for p in r] == list(range(1, 24)) and len(ranges) >= 5
    assert page_ranges(src, jobs=1, split_pages=5) is None  # one worker: read it whole
    assert page_ranges(src, jobs=2, split_pages=23) is None  # not over the threshold
    capped = page_ranges(src, jobs=2, split_pages=5, render=RenderOptions(max_pages=12))
    assert [p for r in capped for p in r] == list(range(1, 13))


def test_split_pdf_merges_into_the_unsplit_result(tmp_path: Path, spec) -> None:
    from docvlm.workers import WorkerPool

    pdf = _long_pdf(tmp_path / "long.pdf", 12)
    small = _long_pdf(tmp_path / "one.pdf", 1)
    docs = [inspect_file(small), inspect_file(pdf), inspect_file(small)]
    whole = [Pipeline(PipelineOptions(), spec).process(d) for d in docs]
    started: list[str] = []
    with WorkerPool(PipelineOptions(), spec, 2, split_pages=4) as pool:
        split = list(pool.map(docs, on_start=lambda s: started.append(s.path)))
    assert [_view(r) for r in split] == [_view(r) for r in whole]
    assert split[1].pages == 12 and {v.page for v in split[1].values} <= set(range(1, 13))
    assert sorted(started) == sorted(d.path for d in docs)  # once each, not once a part
    # the parts' stage times are summed into the one result
    assert split[1].stats["text_layout_pages"] == 12


def test_split_part_that_overruns_fails_the_whole_document(tmp_path: Path, spec) -> None:
    import pymupdf

    from docvlm.bench import make_scans
    from docvlm.workers import WorkerPool

    # dense scanned pages (no text layer): seconds of OCR each, far over the budget
    doc = pymupdf.open()
    for png in make_scans(tmp_path, 6):
        page = doc.new_page(width=595, height=842)
        page.insert_image(page.rect, filename=str(png))
    doc.save(tmp_path / "scan.pdf")
    small = _long_pdf(tmp_path / "one.pdf", 1)
    docs = [inspect_file(tmp_path / "scan.pdf"), inspect_file(small)]
    with WorkerPool(PipelineOptions(), spec, 2, max_seconds=4, split_pages=2) as pool:
        first, second = list(pool.map(docs))
        replaced = pool.replaced
    assert first.status.value == "failure" and first.errors[0].error_type == "DocumentTimeout"
    assert second.status.value == "success" and second.pages == 1
    assert replaced <= 2  # the parts still queued were dropped, not run into the budget


# -- run: local worker processes ------------------------------------------------------------


def test_run_with_two_local_workers_processes_every_document(tmp_path: Path) -> None:
    from docvlm.cli import main
    from docvlm.ops.dataset import read_table

    sys_path = tmp_path
    (sys_path / "pipelines").mkdir()
    (sys_path / "in").mkdir()
    for i in range(5):
        _long_pdf(sys_path / "in" / f"doc{i}.pdf", 1 + i % 2)
    yaml = sys_path / "pipelines" / "two.yaml"
    yaml.write_text(
        f"name: two\nsource: in\nschema: {SCHEMA}\noutput: {{dir: out, formats: [parquet]}}\n"
        "run: {workers: 2, batch_size: 3, retry_delay_s: 0}\n",
        encoding="utf-8",
    )
    assert main(["run", str(yaml), "--orchestrator", "local"]) == 0
    table = read_table(sys_path / "out", "invoice")
    assert sorted(Path(s).name for s in table["source"]) == [f"doc{i}.pdf" for i in range(5)]
    assert not list((sys_path / "out" / "_inflight").glob("*.json"))  # every marker removed
    assert main(["run", str(yaml), "--orchestrator", "local"]) == 0  # nothing left to do
    assert len(read_table(sys_path / "out", "invoice")) == 5


# -- OCR: the rotation classifier only where a page may be upside down --------------------


def test_ocr_probes_orientation_and_still_reads_an_upside_down_page(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from docvlm.bench import make_scans
    from docvlm.datamodel import OcrOptions
    from docvlm.engines.ocr.rapid import RapidOcrEngine

    (png,) = make_scans(tmp_path, 1)
    upright = np.asarray(Image.open(png).convert("RGB"))[:700]  # header and first rows
    engine = RapidOcrEngine(OcrOptions())
    cls = _Counter(engine._load().text_cls)
    engine._engine.text_cls = cls
    read = {w.text for w in engine.recognize(upright)}
    assert {"ACME", "Components", "INV-00000"} <= read
    assert cls.calls == 1  # the probe only: no line of the page reads as turned
    turned = {w.text for w in engine.recognize(np.ascontiguousarray(upright[::-1, ::-1]))}
    assert cls.calls >= 3  # the probe, then every line (and the re-read weak ones)
    assert {"ACME", "Components", "INV-00000"} <= turned


def test_recognition_without_320px_padding_reads_the_same_lines(tmp_path: Path) -> None:
    """Batches are padded to their widest line, not to RapidOCR's 320 × 48: the same text
    with a fraction of the recogniser's input width."""
    import numpy as np
    from PIL import Image

    from docvlm.bench import make_scans
    from docvlm.datamodel import OcrOptions
    from docvlm.engines.ocr.rapid import RapidOcrEngine

    (png,) = make_scans(tmp_path, 1)
    page = np.asarray(Image.open(png).convert("RGB"))[:900]
    engine = RapidOcrEngine(OcrOptions())
    model = engine._load()
    boxes = engine._detect(model, page)
    crops = [engine._crop(page, b) for b in boxes]
    widths: list[int] = []
    session = model.text_rec.session
    model.text_rec.session = lambda batch: (widths.append(batch.shape[0] * batch.shape[3]),
                                            session(batch))[1]  # fmt: skip
    narrow = [r.text for r in engine._read(model, crops)]
    narrow_width = sum(widths)
    widths.clear()
    engine.min_rec_ratio = 320 / 48  # RapidOCR's own padding
    padded = [r.text for r in engine._read(model, crops)]
    assert len(crops) > 20 and narrow == padded
    assert "Description" in narrow and "ACME Components GmbH" in narrow
    assert narrow_width < 0.7 * sum(widths)


def test_text_detector_input_is_bounded_by_max_det_side(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from docvlm.bench import make_scans
    from docvlm.datamodel import OcrOptions
    from docvlm.engines.ocr.rapid import RapidOcrEngine

    (png,) = make_scans(tmp_path, 1)
    page = np.asarray(Image.open(png).convert("RGB"))  # 1653 × 2339
    seen = {}
    for side in (1600, 2000):
        engine = RapidOcrEngine(OcrOptions(max_det_side=side))
        engine.max_det_band_pixels = 10**9  # one call for the page (bands: test_ocr_runtime)
        model = engine._load()
        shapes: list[tuple] = []
        session = model.text_det.session

        def spy(blob, shapes=shapes, session=session):
            shapes.append(blob.shape)
            return session(blob)

        model.text_det.session = spy
        seen[side] = ({w.text for w in engine.recognize(page)}, max(shapes[0][2:]))
    assert 1568 <= seen[1600][1] <= 1632 and seen[2000][1] > 1900
    assert {"ACME", "Components", "INV-00000", "Total:"} <= seen[1600][0]


def test_row_grouping_and_region_tagging_match_their_plain_definitions() -> None:
    """group_rows (bisect on row tops) and assign_regions (vectorised) give what the plain
    all-pairs loops give, on random boxes with ties."""
    import random

    from docvlm.datamodel import Line, Region
    from docvlm.lines import _v_overlap, assign_regions, group_rows

    def rows_plain(boxes):
        rows: list[list] = []
        for box in sorted(boxes, key=lambda b: (b[0], b[1])):
            best, best_overlap = None, 0.5
            for row in rows:
                last = row[-1]
                if last[2] - 0.6 * (last[3] - last[1]) > box[0]:
                    continue
                overlap = _v_overlap(last, box)
                if overlap > best_overlap:
                    best, best_overlap = row, overlap
            (rows.append([box]) if best is None else best.append(box))
        rows.sort(key=lambda r: ((r[0][1] + r[0][3]) / 2, r[0][0]))
        return rows

    rng = random.Random(7)
    for _ in range(200):
        boxes = []
        for _ in range(rng.randint(1, 60)):
            x, y = rng.choice([rng.uniform(0, 500), rng.randint(0, 10) * 50.0]), rng.randint(
                0, 40) * 10.0 + rng.choice([0.0, 0.0, rng.uniform(-6, 6)])  # fmt: skip
            w, h = rng.uniform(5, 80), rng.choice([10.0, 12.0, rng.uniform(4, 30)])
            boxes.append((x, y, x + w, y + h))
        assert group_rows(boxes, key=lambda b: b) == rows_plain(boxes)
        regions = [Region(label=f"r{i}", bbox=b, score=1.0) for i, b in enumerate(boxes[::3])]
        lines = [Line(text="x", bbox=b, words=[], page=1) for b in boxes]
        assign_regions(lines, regions)
        for ln in lines:
            areas = [max(0.0, min(ln.bbox[2], r.bbox[2]) - max(ln.bbox[0], r.bbox[0]))
                     * max(0.0, min(ln.bbox[3], r.bbox[3]) - max(ln.bbox[1], r.bbox[1]))
                     for r in regions]  # fmt: skip
            full = (ln.bbox[2] - ln.bbox[0]) * (ln.bbox[3] - ln.bbox[1])
            best = max(range(len(areas)), key=lambda i: (areas[i], -i))
            expect = best if areas[best] > 0 and areas[best] / full >= 0.5 else -1
            assert ln.region_index == expect


# -- the benchmark ------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_prints_floors_and_compares_with_a_baseline(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    saved = tmp_path / "before.json"
    args = ["--pages", "3", "--scan-pages", "1", "--jobs", "2", "--repeat", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(
        [sys.executable, "-m", "docvlm", "bench", *args, "--save", str(saved)],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    out = first.stdout
    for row in ("floor: PyMuPDF words (3 p)", "born-digital 3 p, 1 process",
                "born-digital 3 p, 2 workers", "floor: RapidOCR alone (1 scans)",
                "scanned A4 200 dpi, 1 process", "scanned A4 200 dpi, 2 workers"):  # fmt: skip
        assert row in out, out
    report = json.loads(saved.read_text())
    born = report["rows"]["born-digital 3 p, 2 workers"]
    assert born["pages"] == 3 and born["pages_per_s"] > 0 and born["cpu_s_per_page"] > 0
    assert born["peak_rss_mb"] > report["rows"]["floor: PyMuPDF words (3 p)"]["peak_rss_mb"]
    scanned = report["rows"]["scanned A4 200 dpi, 1 process"]
    assert scanned["ocr_pages"] == 1 and scanned["ocr_cpu_s_per_page"] > 0
    assert "x" in out.splitlines()[2]  # a pipeline row carries its ratio to the floor

    from docvlm.bench import format_comparison

    text = format_comparison(report["rows"], report["rows"])
    assert "(1.00x)" in text and "born-digital 3 p, 2 workers" in text


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """kill -9 of the process holding a WorkerPool leaves no worker behind."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "pool.py"
    script.write_text(
        "import time\n"
        "from docvlm.datamodel import PipelineOptions\n"
        "from docvlm.schema import load_schema\n"
        "from docvlm.workers import WorkerPool\n"
        "if __name__ == '__main__':\n"
        f"    pool = WorkerPool(PipelineOptions(), load_schema({str(SCHEMA)!r}), jobs=2)\n"
        "    pool.start()\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"

        def children() -> list[int]:
            found = []
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == proc.pid:
                    found.append(int(stat.parent.name))
            return found

        workers = children()
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 15
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.5)
            alive = [
                p
                for p in workers
                if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1][:3]
            ]
        assert not alive, f"workers {alive} outlived their parent"
    finally:
        proc.kill()
