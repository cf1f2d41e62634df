"""Result types passed between stages.

Coordinates: every ``bbox`` is ``(x0, y0, x1, y1)`` in pixels of the rendered page image
(PDF pages at the configured DPI, image files at their own resolution).
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

BBox = tuple[float, float, float, float]


class DocStatus(str, enum.Enum):
    """How a document ended."""

    SUCCESS = "success"  # all fields read, record valid
    PARTIAL = "partial"  # record written, but invalid or with stage errors
    FAILURE = "failure"  # nothing could be read (unreadable input, crash)


class SourceDoc(BaseModel):
    """One discovered input file."""

    model_config = ConfigDict(frozen=True)

    path: str
    doc_id: str = Field(description="sha256 of the file bytes")
    mime: str = Field(description="type sniffed from the bytes, e.g. application/pdf, image/png")
    size: int
    error: str | None = Field(
        default=None, description="why the file cannot be processed (set by discovery)"
    )
    raw_path: str | None = Field(
        default=None,
        description="the file's real name as hex bytes, when ``path`` had to be escaped "
        "to be printable (a name that is not UTF-8 or holds control characters)",
    )
    snapshot: str | None = Field(
        default=None,
        description="a private copy of the bytes that were hashed, read instead of ``path`` "
        "(set by discovery for files that may change, e.g. in a watched folder)",
    )
    # The hashed bytes themselves, for small files read once; not serialised (a SourceDoc
    # sent to another process reads ``snapshot`` or ``path``).
    _data: bytes | None = PrivateAttr(default=None)

    def content(self) -> bytes | None:
        """The bytes ``doc_id`` was computed from, when discovery kept them in memory."""
        return self._data

    def with_content(self, data: bytes) -> SourceDoc:
        """This document holding ``data`` (the exact bytes its ``doc_id`` hashes)."""
        self._data = data
        return self

    @property
    def read_path(self) -> str:
        """The file to read the document from: the private snapshot, else ``path``."""
        if self.snapshot:
            import os

            if os.path.exists(self.snapshot):
                return self.snapshot  # gone when read on another machine: fall back
        if self.raw_path:
            import os

            return os.fsdecode(bytes.fromhex(self.raw_path))
        return self.path


class Word(BaseModel):
    """A piece of text with its box: a PDF word or an OCR text segment."""

    text: str
    bbox: BBox
    conf: float = 1.0
    origin: str = "pdf"  # "pdf" (text layer) or "ocr"
    block: int = -1  # the text layer's block of the word (PyMuPDF's block number); -1: none


class Line(BaseModel):
    """Words on one visual line that belong together (a column gap splits a line in two)."""

    text: str
    bbox: BBox
    words: list[Word]
    conf: float = 1.0
    page: int = Field(description="1-based page number")
    region_class: str = "residual"
    region_index: int = -1


class Region(BaseModel):
    """A detected layout region."""

    label: str
    bbox: BBox
    score: float


class Page(BaseModel):
    """A rendered page: its size, text and regions (the image itself travels separately)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    number: int = Field(description="1-based")
    width: int
    height: int
    dpi: float
    has_text_layer: bool = False
    words: list[Word] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)


class PageContent(BaseModel):
    """A document's pages read up to the reader (text, lines, regions), with the errors and
    stage times of getting there: all its pages, or one page range of a split document."""

    pages: list[Page] = Field(default_factory=list)
    errors: list[ErrorItem] = Field(default_factory=list)
    stats: dict[str, float] = Field(default_factory=dict)
    seconds: float = 0.0


class FieldValue(BaseModel):
    """One extracted value with its provenance."""

    path: str = Field(description="field path: 'total', 'seller.name', 'line_items/3/amount'")
    value: Any
    raw: str = Field(default="", description="source text the value was read from")
    page: int | None = None
    bbox: BBox | None = None
    region_class: str | None = None
    reader: str = "ocr"
    confidence: float = 0.0
    xpath: str | None = Field(default=None, description="where in an e-invoice XML the value is")
    suspicious: bool = Field(
        default=False,
        description="the value reads like an instruction to a model (prompt injection); "
        "kept, but the record fails validation",
    )


class ErrorItem(BaseModel):
    """An error attached to a document, naming the stage and the problem."""

    stage: str
    error_type: str
    message: str
    path: str | None = Field(default=None, description="JSON pointer of the field, if any")


class DocumentResult(BaseModel):
    """Everything one document produced: the record, its provenance and its errors."""

    doc_id: str
    source: str
    schema_name: str
    status: DocStatus
    record: dict[str, Any] = Field(default_factory=dict)
    values: list[FieldValue] = Field(default_factory=list)
    errors: list[ErrorItem] = Field(default_factory=list)
    pages: int = 0
    stats: dict[str, float] = Field(default_factory=dict)
