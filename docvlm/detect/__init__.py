"""Layout detection: find text, title, table and figure regions on page images."""

from __future__ import annotations

from docvlm.datamodel import DetectOptions
from docvlm.detect.base import LayoutDetector
from docvlm.detect.onnx_picodet import PicoDetOnnxDetector
from docvlm.errors import ConfigError

DETECTORS: dict[str, type[LayoutDetector]] = {
    "picodet": PicoDetOnnxDetector,
}


def get_detector(options: DetectOptions | None = None) -> LayoutDetector:
    """Build the layout detector named by ``options.kind`` (the model loads on first use).

    Args:
        options: Detection options; defaults to ``DetectOptions()``.

    Returns:
        An uninitialised detector.

    Raises:
        ConfigError: ``options.kind`` names no known detector.
    """
    options = options or DetectOptions()
    try:
        cls = DETECTORS[options.kind]
    except KeyError:
        known = ", ".join(sorted(DETECTORS))
        raise ConfigError(
            f"unknown detector kind {options.kind!r}; known kinds: {known}"
        ) from None
    return cls(options)


__all__ = ["DETECTORS", "LayoutDetector", "PicoDetOnnxDetector", "get_detector"]
