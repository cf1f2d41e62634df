"""The Reader interface: regions of a document in, field candidates with provenance out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docvlm.datamodel import ErrorItem, FieldValue, Page, ReaderOptions

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.schema import SchemaSpec


@dataclass
class DocumentContent:
    """What readers see of a document: page text, lines and regions, and images on demand.

    Images are not held in memory (a 500-page PDF would not fit); ``image(n)`` renders page
    ``n`` (1-based) again when a reader needs pixels (VLM readers do, the OCR reader doesn't).
    """

    doc_id: str
    source: str
    pages: list[Page]
    image: Callable[[int], Image.Image]


@dataclass
class ReadResult:
    """Candidates for scalar fields (``path`` = 'total', 'seller.name') and for array items
    (``path`` = 'line_items/0/amount'), plus errors that did not stop the reader."""

    values: list[FieldValue] = field(default_factory=list)
    errors: list[ErrorItem] = field(default_factory=list)
    calls: int = 0  # model/server calls made (VLM readers)


class Reader(ABC):
    """Turns a document's content into field candidates for a schema.

    Subclasses load their engine lazily in ``initialize`` (called once, then reused).
    """

    name: str = "base"

    def __init__(self, options: ReaderOptions | None = None) -> None:
        self.options = options or ReaderOptions()
        self._ready = False

    def initialize(self) -> None:
        """Load models or clients. Called once before the first ``read``."""

    def ensure_ready(self) -> None:
        if not self._ready:
            self.initialize()
            self._ready = True

    @abstractmethod
    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        """Read ``wanted`` field paths (all when None). ``prior`` holds values already found
        by another reader (the cascade passes them so a VLM can skip or check them)."""
