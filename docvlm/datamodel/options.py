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
        default=40_000_000,
        ge=10_000,
        description="page images are scaled down to at most this many pixels (PDF pages are "
        "rendered at a lower zoom, JPEGs decoded at a reduced size)",
    )
    max_decode_pixels: int = Field(
        default=500_000_000,
        ge=10_000,
        description="an image file declaring more pixels than this (after the reduced JPEG "
        "decode) is refused before its pixels are decoded",
    )


class DetectOptions(_Options):
    enabled: bool = True
    kind: Literal["picodet"] = "picodet"
    model_path: str | None = Field(default=None, description="ONNX file; None = shipped model")
    score_threshold: float = 0.5
    iou_threshold: float = 0.5
    device: Literal["auto", "cpu", "cuda"] = "auto"
    skip_blank: bool = Field(default=True, description="blank pages are not run through the model")


class OcrOptions(_Options):
    enabled: bool = True
    kind: Literal["rapidocr"] = "rapidocr"
    min_text_chars: int = Field(
        default=20, description="a PDF page with fewer text-layer characters is OCRed"
    )
    min_score: float = 0.5
    skip_blank: bool = Field(default=True, description="blank pages are not OCRed")


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


class OutputOptions(_Options):
    formats: list[Literal["parquet", "csv"]] = Field(default_factory=lambda: ["parquet", "csv"])


class PipelineOptions(_Options):
    render: RenderOptions = Field(default_factory=RenderOptions)
    detect: DetectOptions = Field(default_factory=DetectOptions)
    ocr: OcrOptions = Field(default_factory=OcrOptions)
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    output: OutputOptions = Field(default_factory=OutputOptions)
