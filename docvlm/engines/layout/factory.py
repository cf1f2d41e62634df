"""Layout engines by kind (the model loads on first use)."""

from __future__ import annotations

from docvlm.datamodel import DetectOptions
from docvlm.engines.layout.base import LayoutDetector
from docvlm.engines.registry import Registry

LAYOUT_ENGINES = Registry(
    "layout engine", {"picodet": "docvlm.engines.layout.onnx_picodet:PicoDetOnnxDetector"}
)


def get_layout_engine(options: DetectOptions | None = None) -> LayoutDetector:
    """Build the layout engine named by ``options.kind`` (uninitialised).

    Raises:
        ConfigError: ``options.kind`` names no known layout engine.
    """
    options = options or DetectOptions()
    return LAYOUT_ENGINES.create(options.kind, options)
