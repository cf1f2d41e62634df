"""Text recognition for pages without a usable text layer."""

from __future__ import annotations

from docvlm.datamodel import OcrOptions
from docvlm.errors import ConfigError
from docvlm.ocr.base import OcrEngine

_ENGINES = {"rapidocr": "docvlm.ocr.rapid:RapidOcrEngine"}
_CACHE: dict[tuple[str, float], OcrEngine] = {}


def get_ocr_engine(options: OcrOptions | None = None) -> OcrEngine:
    """The OCR engine named by ``options.kind``, created once per process and reused."""
    import importlib

    options = options or OcrOptions()
    target = _ENGINES.get(options.kind)
    if target is None:
        raise ConfigError(f"unknown OCR kind {options.kind!r}; known: {', '.join(_ENGINES)}")
    key = (options.kind, options.min_score)
    if key not in _CACHE:
        module, cls = target.split(":")
        _CACHE[key] = getattr(importlib.import_module(module), cls)(options)
    return _CACHE[key]


__all__ = ["OcrEngine", "get_ocr_engine"]
