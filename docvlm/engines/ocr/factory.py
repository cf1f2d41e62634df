"""OCR engines by kind (models load when the engine is built)."""

from __future__ import annotations

from docvlm.datamodel import OcrOptions
from docvlm.engines.ocr.base import OcrEngine
from docvlm.engines.registry import Registry

OCR_ENGINES = Registry("OCR engine", {"rapidocr": "docvlm.engines.ocr.rapid:RapidOcrEngine"})


def get_ocr_engine(options: OcrOptions | None = None) -> OcrEngine:
    """Build the OCR engine named by ``options.kind``.

    Raises:
        ConfigError: ``options.kind`` names no known OCR engine.
    """
    options = options or OcrOptions()
    return OCR_ENGINES.create(options.kind, options)
