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
