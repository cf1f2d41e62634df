"""Layout engines: ONNX object detectors that find text, title, table and figure regions."""

from docvlm.engines.layout.base import LayoutDetector
from docvlm.engines.layout.factory import LAYOUT_ENGINES, get_layout_engine

__all__ = ["LAYOUT_ENGINES", "LayoutDetector", "get_layout_engine"]
