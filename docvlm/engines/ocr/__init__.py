"""OCR engines: text detection and recognition for pages without a usable text layer."""

from docvlm.engines.ocr.base import OcrEngine
from docvlm.engines.ocr.factory import OCR_ENGINES, get_ocr_engine

__all__ = ["OCR_ENGINES", "OcrEngine", "get_ocr_engine"]
