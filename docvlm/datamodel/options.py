"""Options for every stage. ``extra="forbid"`` everywhere: a typo is an error, not a default."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    text_layer_regions: bool = Field(
        default=True,
        description="a page with a text layer takes its regions from it (blocks, rulings) and "
        "is neither rendered nor run through the model; False: the model sees every page",
    )
    max_image_share: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="a text-layer page whose images cover at least this share of it still goes "
        "through the model (a scan behind a thin text layer, a photo with text)",
    )


class OcrOptions(_Options):
    enabled: bool = True
    kind: Literal["rapidocr"] = "rapidocr"
    min_text_chars: int = Field(
        default=20, description="a PDF page with fewer text-layer characters is OCRed"
    )
    min_score: float = 0.5
    skip_blank: bool = Field(default=True, description="blank pages are not OCRed")
    max_det_side: int = Field(
        default=1600,
        ge=320,
        description="longest side of the image the text detector sees (larger pages are "
        "scaled down; its cost grows with the pixels)",
    )
    runtime: Literal["auto", "onnxruntime", "openvino"] = Field(
        default="auto",
        description="what runs the text detector and recogniser: auto = OpenVINO where it is "
        "installed and the CPU computes in bfloat16 (1.7x faster there), else ONNX Runtime",
    )


#: Reader kinds and the options each one takes (besides ``kind``).
_VLM_COMMON = frozenset({"model", "max_new_tokens", "reask"})
_LOCAL = frozenset({"device", "dtype"})
_SERVER = frozenset({"base_url", "api_key", "timeout_s", "max_retries", "concurrency"})
READER_FIELDS: dict[str, frozenset[str]] = {
    "ocr": frozenset(),
    "learned": frozenset({"model"}),
    "transformers": _VLM_COMMON | _LOCAL,
    "openai": _VLM_COMMON | _SERVER,
    "cascade": _VLM_COMMON | _LOCAL | _SERVER | {"min_confidence"},
}


class ReaderOptions(_Options):
    """The reader and its options, checked by ``kind``: a kind takes only its own options,
    so ``{kind: ocr, base_url: ...}`` is an error when the options load, not a silent no-op.

    Kinds: ``learned`` (the default, embedded: typed candidates ranked by a trained ONNX
    scorer; ``model`` = a folder from ``docvlm train``), ``ocr`` (embedded layout rules only),
    ``transformers`` (a local checkpoint: ``model``,
    ``device``, ``dtype``), ``openai`` (a server: ``base_url``, ``api_key``, ``timeout_s``,
    ``max_retries``, ``concurrency``, ``model``), ``cascade`` (the learned reader first, then either VLM:
    all of these plus ``min_confidence``); the VLM kinds also take ``max_new_tokens``, ``reask``.
    """

    kind: Literal["ocr", "learned", "transformers", "openai", "cascade"] = "learned"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    max_new_tokens: int = Field(default=512, ge=1)
    timeout_s: float = Field(default=60.0, gt=0, description="overall deadline of one request")
    max_retries: int = Field(default=3, ge=0)
    concurrency: int = Field(default=4, ge=1)
    reask: int = Field(default=2, ge=0)
    min_confidence: float = Field(
        default=0.6, ge=0, le=1, description="cascade: fields below this confidence go to the VLM"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    @model_validator(mode="after")
    def _options_of_kind(self) -> ReaderOptions:
        allowed = READER_FIELDS[self.kind]
        defaults = {
            n: f.get_default(call_default_factory=True) for n, f in type(self).model_fields.items()
        }
        foreign = sorted(
            n
            for n in self.model_fields_set - allowed - {"kind"}
            if getattr(self, n) != defaults[n]  # a dumped-and-reloaded default is no choice
        )
        if foreign:
            owners = {
                name: [k for k, fields in READER_FIELDS.items() if name in fields]
                for name in foreign
            }
            detail = "; ".join(f"{n!r} belongs to {', '.join(o)}" for n, o in owners.items())
            raise ValueError(f"reader kind {self.kind!r} takes no {', '.join(foreign)} ({detail})")
        return self


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
    cross_check: bool = Field(
        default=True, description="report page values that disagree with the XML"
    )
    mismatch_min_confidence: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="page values below this confidence are not cross-checked",
    )
    match_threshold: float = Field(
        default=0.5, ge=0, le=1, description="least similarity for a schema field to map to a term"
    )


class OutputOptions(_Options):
    formats: list[Literal["parquet", "csv"]] = Field(default_factory=lambda: ["parquet", "csv"])


class LimitOptions(_Options):
    """Budgets of one document in the ``extract`` worker processes (not part of any hash:
    they decide whether a document finishes, not what it yields)."""

    max_seconds_per_doc: float | None = Field(
        default=900.0, gt=0, description="a document still running after this is stopped"
    )
    max_memory_mb: int | None = Field(
        default=None,
        ge=256,
        description="address-space limit of a worker; None: 3/4 of RAM shared by the workers, "
        "at least 2048 MB (3072 when OpenVINO runs the OCR: it maps ~1 GB more)",
    )


class PipelineOptions(_Options):
    render: RenderOptions = Field(default_factory=RenderOptions)
    detect: DetectOptions = Field(default_factory=DetectOptions)
    ocr: OcrOptions = Field(default_factory=OcrOptions)
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    einvoice: EInvoiceOptions = Field(default_factory=EInvoiceOptions)
    output: OutputOptions = Field(default_factory=OutputOptions)
    limits: LimitOptions = Field(default_factory=LimitOptions)
