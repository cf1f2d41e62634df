"""Page rendering: a document in, a stream of (page info, page image) out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docvlm.datamodel import Page, RenderOptions, SourceDoc

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class RenderedPage:
    """A page's metadata and text layer, plus its image (dropped once the page is read)."""

    page: Page
    image: Image.Image


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
    def iter_pages(self, src: SourceDoc) -> Iterator[RenderedPage]:
        """Yield pages in order; raises InputError/RenderError with the reason."""

    @abstractmethod
    def render_page(self, src: SourceDoc, number: int, dpi: int | None = None) -> Image.Image:
        """Render one page (1-based) again, e.g. for a VLM that needs pixels."""
