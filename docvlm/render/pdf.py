"""PDF rendering with PyMuPDF (default) or pdf2image/poppler; the text layer always via PyMuPDF."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Page, SourceDoc, Word
from docvlm.errors import InputError, RenderError
from docvlm.render.base import RenderedPage, Renderer, decoder_problem, page_indexes
from docvlm.render.textlayout import text_layout

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)


def open_pdf(src: SourceDoc) -> Any:
    """Open a PDF with PyMuPDF, turning its failures into InputError with the reason."""
    import pymupdf

    data = src.content()
    if data is None and not _encodable(src.read_path):
        # MuPDF takes UTF-8 file names only: a name that is not UTF-8 is read as bytes
        try:
            with open(src.read_path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InputError(f"{src.path}: cannot read file: {exc.strerror}") from exc
    try:
        if data is not None:
            doc = pymupdf.open(stream=data, filetype="pdf")
        else:
            doc = pymupdf.open(src.read_path, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises several types for damaged files
        raise InputError(f"{src.path}: corrupt or truncated PDF: {decoder_problem(exc)}") from exc
    try:
        needs_pass, pages = doc.needs_pass, doc.page_count
    except Exception as exc:
        doc.close()
        raise InputError(f"{src.path}: corrupt PDF: {decoder_problem(exc)}") from exc
    if needs_pass:
        doc.close()
        raise InputError(f"{src.path}: encrypted PDF: a password is required to open it")
    if pages == 0:
        doc.close()
        raise InputError(f"{src.path}: PDF has no pages (corrupt or truncated)")
    return doc


def _encodable(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_layer(page: Any, scale: float, raw: list[tuple] | None = None) -> list[Word]:
    """Words of a PDF page (or its ``get_text("words")`` tuples ``raw``) with boxes scaled to
    the rendered image's pixels."""
    words = []
    for x0, y0, x1, y1, text, block, *_ in (
        raw if raw is not None else page.get_text("words", sort=False)
    ):
        text = text.strip()
        if text:
            # PyMuPDF's floats and str: nothing to validate (validation was ~2 µs a word)
            box = (float(x0 * scale), float(y0 * scale), float(x1 * scale), float(y1 * scale))
            words.append(Word.model_construct(text=text, bbox=box, conf=1.0, origin="pdf",
                                              block=int(block)))  # fmt: skip
    return words


class PyMuPdfRenderer(Renderer):
    """Renders PDF pages with PyMuPDF."""

    name = "pymupdf"

    def page_count(self, src: SourceDoc) -> int:
        doc = open_pdf(src)
        try:
            return doc.page_count
        finally:
            doc.close()

    def _zoom(self, page: Any, dpi: float) -> float:
        """Pixels per PDF point at ``dpi``, lowered so the page stays within ``max_pixels``
        (posters, broken MediaBoxes: a 200-inch page would be 900 megapixels at 150 dpi)."""
        rect = page.rect
        zoom = dpi / 72
        area = max(float(rect.width), 1.0) * max(float(rect.height), 1.0)
        if area * zoom * zoom > self.options.max_pixels:
            zoom = (self.options.max_pixels / area) ** 0.5
        return zoom

    def _pixmap_image(self, page: Any, dpi: int) -> Image.Image:
        import pymupdf
        from PIL import Image

        zoom = self._zoom(page, dpi)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace="rgb")
        return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)

    #: pages are rendered only when asked for their image (the text layer is read at once)
    lazy = True

    def _rendered(self, src: SourceDoc, pdf_page: Any, number: int, dpi: int) -> Image.Image:
        try:
            return self._render_image(src, pdf_page, number, dpi)
        except RenderError:
            raise
        except Exception as exc:
            raise InputError(
                f"{src.path}: page {number} could not be rendered: {decoder_problem(exc)}"
            ) from exc

    def _page(self, src: SourceDoc, doc: Any, number: int) -> RenderedPage:
        pdf_page = doc.load_page(number - 1)
        import pymupdf

        dpi = self.options.dpi
        image = None
        if self.lazy:
            zoom = self._zoom(pdf_page, dpi)
            size = (pdf_page.rect * pymupdf.Matrix(zoom, zoom)).irect  # the pixmap's size
            width, height = size.width, size.height
        else:
            image = self._rendered(src, pdf_page, number, dpi)
            width, height = image.width, image.height
        scale = width / max(pdf_page.rect.width, 1e-6)
        layout = None
        try:
            raw = pdf_page.get_text("words", sort=False)
            words = text_layer(pdf_page, scale, raw)
        except Exception as exc:  # damaged content streams: render what we can, OCR the rest
            logger.warning("%s: page %d text layer unreadable (%s)", src.path, number, exc)
            words = []
        else:
            if words:
                try:
                    layout = text_layout(pdf_page, raw, scale)
                except Exception as exc:  # the detector can still look at the page
                    logger.warning("%s: page %d layout unreadable (%s)", src.path, number, exc)
        page = Page(number=number, width=width, height=height, dpi=scale * 72, words=words)
        if image is not None:
            return RenderedPage(page=page, image=image, layout=layout)

        def render() -> Image.Image:
            if doc.is_closed:  # asked for after the document's pages were all read
                return self.render_page(src, number, dpi)
            return self._rendered(src, pdf_page, number, dpi)

        return RenderedPage(page=page, render=render, layout=layout)

    def _render_image(self, src: SourceDoc, pdf_page: Any, number: int, dpi: int) -> Image.Image:
        return self._pixmap_image(pdf_page, dpi)

    def iter_pages(self, src: SourceDoc, pages: range | None = None) -> Iterator[RenderedPage]:
        doc = open_pdf(src)
        if getattr(doc, "is_repaired", False):
            self.warnings.append(
                f"{src.path}: damaged or truncated PDF; it was repaired and content may be missing"
            )
        try:
            last = doc.page_count
            if self.options.max_pages:
                last = min(last, self.options.max_pages)
            good = 0
            for index in page_indexes(last, pages):
                try:
                    page = self._page(src, doc, index + 1)
                except InputError as exc:
                    if last == 1:
                        raise
                    self.warnings.append(str(exc))  # keep the document's other pages
                    continue
                except Exception as exc:
                    problem = InputError(
                        f"{src.path}: page {index + 1} is damaged: {decoder_problem(exc)}"
                    )
                    if last == 1:
                        raise problem from exc
                    self.warnings.append(str(problem))
                    continue
                good += 1
                yield page
            if not good and pages is None:
                raise InputError(f"{src.path}: none of its {last} pages could be rendered")
        finally:
            doc.close()

    def render_page(self, src: SourceDoc, number: int, dpi: int | None = None) -> Image.Image:
        doc = open_pdf(src)
        try:
            return self._render_image(
                src, doc.load_page(number - 1), number, dpi or self.options.dpi
            )
        finally:
            doc.close()


class Pdf2ImageRenderer(PyMuPdfRenderer):
    """Renders PDF pages with poppler's pdftoppm through pdf2image, one page per call."""

    name = "pdf2image"
    lazy = False  # poppler's image size is known only once it has rendered

    def _render_image(self, src: SourceDoc, pdf_page: Any, number: int, dpi: int) -> Image.Image:
        from pdf2image import convert_from_bytes, convert_from_path
        from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError

        # the same pixel bound as PyMuPDF's zoom
        dpi = max(1, int(self._zoom(pdf_page, dpi) * 72))
        data = src.content()
        if data is None and not _encodable(src.read_path):
            with open(src.read_path, "rb") as fh:
                data = fh.read()
        try:
            if data is not None:
                images = convert_from_bytes(
                    data, dpi=dpi, first_page=number, last_page=number, fmt="ppm"
                )
            else:
                images = convert_from_path(
                    src.read_path, dpi=dpi, first_page=number, last_page=number, fmt="ppm"
                )
        except (PDFInfoNotInstalledError, FileNotFoundError) as exc:
            raise RenderError(
                "pdf2image backend needs poppler-utils (pdftoppm): apt-get install poppler-utils"
            ) from exc
        except PDFPageCountError as exc:
            raise RenderError(f"{src.path}: poppler could not read page {number} ({exc})") from exc
        if not images:
            raise RenderError(f"{src.path}: poppler rendered no image for page {number}")
        return images[0].convert("RGB")
