"""Options for every stage. ``extra="forbid"`` everywhere: a typo is an error, not a default."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RenderOptions(_Options):
    backend: Literal["pymupdf", "pdf2image"] = "pymupdf"
    dpi: int = Field(default=150, ge=36, le=600)
    max_pages: int | None = Field(default=None, description="stop after this many pages")
    max_pixels: int = Field(
        default=40_000_000, description="larger images are scaled down to this many pixels"
    )


class DetectOptions(_Options):
    enabled: bool = True
    kind: Literal["picodet"] = "picodet"
    model_path: str | None = Field(default=None, description="ONNX file; None = shipped model")
    score_threshold: float = 0.5
    iou_threshold: float = 0.5
    device: Literal["auto", "cpu", "cuda"] = "auto"


class OcrOptions(_Options):
    enabled: bool = True
    kind: Literal["rapidocr"] = "rapidocr"
    min_text_chars: int = Field(
        default=20, description="a PDF page with fewer text-layer characters is OCRed"
    )
    min_score: float = 0.5


class ReaderOptions(_Options):
    kind: str = "ocr"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    max_new_tokens: int = 512
    timeout_s: float = 60.0
    max_retries: int = 3
    concurrency: int = 4
    reask: int = 2
    min_confidence: float = Field(
        default=0.6, description="cascade: fields below this confidence go to the VLM"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class EInvoiceOptions(_Options):
    """E-invoices: the EN 16931 XML embedded in a PDF (Factur-X, ZUGFeRD) or given as a file."""

    mode: Literal["prefer", "only", "ignore"] = Field(
        default="prefer",
        description="prefer: XML values win, the page is read too and cross-checked; "
        "only: XML values alone, the page is not read; ignore: read the page as if no XML",
    )
    credit_notes: Literal["as_written", "negative"] = Field(
        default="as_written",
        description="negative: amounts of credit notes (BT-3 381, UBL CreditNote) become negative",
    )
    cross_check: bool = Field(default=True, description="report page values that disagree with the XML")
    mismatch_min_confidence: float = Field(
        default=0.3, ge=0, le=1, description="page values below this confidence are not cross-checked"
    )
    match_threshold: float = Field(
        default=0.5, ge=0, le=1, description="least similarity for a schema field to map to a term"
    )


class OutputOptions(_Options):
    formats: list[Literal["parquet", "csv"]] = Field(default_factory=lambda: ["parquet", "csv"])


class PipelineOptions(_Options):
    render: RenderOptions = Field(default_factory=RenderOptions)
    detect: DetectOptions = Field(default_factory=DetectOptions)
    ocr: OcrOptions = Field(default_factory=OcrOptions)
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    einvoice: EInvoiceOptions = Field(default_factory=EInvoiceOptions)
    output: OutputOptions = Field(default_factory=OutputOptions)
