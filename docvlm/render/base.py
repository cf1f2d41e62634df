"""Page rendering: a document in, a stream of (page info, page image) out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Page, RenderOptions, SourceDoc

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.render.textlayout import TextLayout


class RenderedPage:
    """A page's metadata and text layer, plus its image (dropped once the page is read).

    The image may be rendered lazily: a born-digital page whose regions come from its text
    layer (``layout``) is never rendered unless something asks for :attr:`image`.
    """

    def __init__(
        self,
        page: Page,
        image: Image.Image | None = None,
        render: Callable[[], Image.Image] | None = None,
        layout: TextLayout | None = None,
    ) -> None:
        if image is None and render is None:
            raise ValueError("a RenderedPage needs an image or a way to render it")
        self.page = page
        self._image = image
        self._render = render
        self.layout = layout

    @property
    def rendered(self) -> bool:
        """Whether the image exists already (asking for :attr:`image` renders it)."""
        return self._image is not None

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            assert self._render is not None
            self._image = self._render()
        return self._image


class Renderer(ABC):
    """Streams a document's pages one at a time so memory does not grow with page count."""

    name = "base"

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.options = options or RenderOptions()
        self.warnings: list[str] = []  # problems that did not stop rendering (repaired files)

    @abstractmethod
    def page_count(self, src: SourceDoc) -> int:
        """Number of pages; raises InputError for unreadable documents."""

    @abstractmethod
    def iter_pages(self, src: SourceDoc, pages: range | None = None) -> Iterator[RenderedPage]:
        """Yield pages in order (only those of ``pages``, 1-based, when given: one part of a
        document split across workers); raises InputError/RenderError with the reason."""

    @abstractmethod
    def render_page(self, src: SourceDoc, number: int, dpi: int | None = None) -> Image.Image:
        """Render one page (1-based) again, e.g. for a VLM that needs pixels."""


def page_indexes(count: int, pages: range | None) -> range:
    """0-based indexes of the pages to yield: all ``count``, or those of ``pages`` (1-based)."""
    if pages is None:
        return range(count)
    return range(max(pages.start, 1) - 1, min(pages.stop - 1, count))


def open_source(src: SourceDoc) -> Any:
    """What a decoder should open: the bytes discovery hashed when it kept them (so the
    pages read are the bytes the ``doc_id`` names), else the file's path."""
    data = src.content()
    if data is not None:
        import io

        return io.BytesIO(data)
    return src.read_path


def decoder_problem(exc: BaseException) -> str:
    """A third-party decoder's exception in plain words, its own text kept in brackets."""
    text = str(exc).strip()
    low = text.lower()
    if isinstance(exc, MemoryError):
        plain = "out of memory while decoding"
    elif "truncated" in low or isinstance(exc, EOFError):
        plain = "the file ends early (truncated or still being written)"
    elif "decompression bomb" in low or "exceeds limit" in low:
        plain = "the image declares more pixels than allowed"
    elif isinstance(exc, SyntaxError) or "not a" in low or "cannot identify" in low:
        plain = "its structure is damaged or it is not the format its header claims"
    elif isinstance(exc, (KeyError, IndexError, TypeError, ValueError)):
        plain = "its structure is damaged (a field the decoder needs is missing or invalid)"
    elif "unsupported" in low or "not supported" in low or "unknown" in low:
        plain = "it uses a feature or encoding the decoder does not support"
    else:
        plain = "the decoder failed"
    return f"{plain} [{type(exc).__name__}: {text or repr(exc)}]"[:500]
