"""Pydantic types only: what flows between the stages, and the options that steer them."""

from docvlm.datamodel.document import (
    BBox,
    DocStatus,
    DocumentResult,
    ErrorItem,
    FieldValue,
    Line,
    Page,
    PageContent,
    Region,
    SourceDoc,
    Word,
)
from docvlm.datamodel.options import (
    DetectOptions,
    EInvoiceOptions,
    LimitOptions,
    OcrOptions,
    OutputOptions,
    PipelineOptions,
    ReaderOptions,
    RenderOptions,
)

__all__ = [
    "BBox",
    "DetectOptions",
    "DocStatus",
    "DocumentResult",
    "EInvoiceOptions",
    "ErrorItem",
    "FieldValue",
    "LimitOptions",
    "Line",
    "OcrOptions",
    "OutputOptions",
    "Page",
    "PageContent",
    "PipelineOptions",
    "ReaderOptions",
    "Region",
    "RenderOptions",
    "SourceDoc",
    "Word",
]
