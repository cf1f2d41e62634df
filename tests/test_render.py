import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES, make_text_pdf

from docvlm.datamodel import RenderOptions
from docvlm.errors import InputError
from docvlm.lines import build_lines
from docvlm.render import get_renderer
from docvlm.sources import inspect_file


def test_pymupdf_keeps_text_layer_with_pixel_boxes() -> None:
    src = inspect_file(SAMPLES / "invoices" / "inv_de_01.pdf")
    pages = list(get_renderer(src, RenderOptions(dpi=100)).iter_pages(src))
    assert len(pages) == 1
    page, image = pages[0].page, pages[0].image
    assert (image.width, image.height) == (page.width, page.height)
    assert abs(page.width - 595 * 100 / 72) < 2
    texts = [w.text for w in page.words]
    assert "RE-2023-0117" in texts
    for w in page.words:
        x0, y0, x1, y1 = w.bbox
        assert 0 <= x0 < x1 <= page.width + 1 and 0 <= y0 < y1 <= page.height + 1


def test_pages_are_streamed(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path / "three.pdf", ["page {page}"], pages=3)
    src = inspect_file(pdf)
    it = get_renderer(src, RenderOptions()).iter_pages(src)
    first = next(it)  # a generator: page 1 is ready before page 2 is rendered
    assert first.page.number == 1
    assert [p.page.number for p in it] == [2, 3]


def test_multi_frame_tiff_gives_pages() -> None:
    src = inspect_file(SAMPLES / "invoices" / "inv_en_multi_01_scan_tiff.tiff")
    pages = list(get_renderer(src).iter_pages(src))
    assert [p.page.number for p in pages] == [1, 2]
    assert all(p.image.mode == "RGB" and not p.page.words for p in pages)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pdf2image_backend_renders_same_size() -> None:
    src = inspect_file(SAMPLES / "invoices" / "inv_fr_01.pdf")
    a = next(get_renderer(src, RenderOptions(backend="pymupdf", dpi=72)).iter_pages(src))
    b = next(get_renderer(src, RenderOptions(backend="pdf2image", dpi=72)).iter_pages(src))
    assert abs(a.image.width - b.image.width) <= 2 and abs(a.image.height - b.image.height) <= 2
    assert [w.text for w in a.page.words] == [w.text for w in b.page.words]


def test_encrypted_pdf_is_a_clear_input_error(tmp_path: Path) -> None:
    import pymupdf

    path = tmp_path / "locked.pdf"
    doc = pymupdf.open()
    doc.new_page().insert_text((50, 50), "secret")
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    src = inspect_file(path)
    with pytest.raises(InputError, match="encrypted"):
        list(get_renderer(src).iter_pages(src))


def test_render_page_again_for_readers() -> None:
    src = inspect_file(SAMPLES / "invoices" / "inv_en_multi_01.pdf")
    image = get_renderer(src, RenderOptions(dpi=72)).render_page(src, 2)
    assert image.width > 500 and image.mode == "RGB"


def test_two_text_blocks_on_a_row_are_two_lines(tmp_path: Path) -> None:
    # a label written after other text lands in a block of its own, a few points right of
    # the left column's text: on the page it reads as one row, but it is the next column
    import pymupdf

    doc = pymupdf.open()
    pg = doc.new_page(width=595, height=842)
    pg.insert_text((40, 100), "Remit To Sinclair Broadcast", fontsize=10)
    pg.insert_text((40, 400), "Terms: cash in advance", fontsize=10)
    x = 40 + pymupdf.get_text_length("Remit To Sinclair Broadcast", fontsize=10) + 6
    pg.insert_text((x, 100), "Advertiser", fontsize=10)
    pg.insert_text((40, 200), "Acme Corp", fontsize=10)  # one block: one line
    doc.save(tmp_path / "rows.pdf")
    src = inspect_file(tmp_path / "rows.pdf")
    page = next(iter(get_renderer(src, RenderOptions(dpi=100)).iter_pages(src))).page
    texts = [ln.text for ln in build_lines(page.words, 1)]
    assert "Remit To Sinclair Broadcast" in texts and "Advertiser" in texts
    assert "Acme Corp" in texts
    assert len({w.block for w in page.words}) == 4 and min(w.block for w in page.words) >= 0
