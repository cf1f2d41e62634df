"""OCR engine interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from docvlm.datamodel import OcrOptions, Word

if TYPE_CHECKING:
    import numpy as np


class OcrEngine(ABC):
    """Finds and recognises text segments in a page image."""

    def __init__(self, options: OcrOptions | None = None) -> None:
        self.options = options or OcrOptions()

    @abstractmethod
    def recognize(self, image: np.ndarray) -> list[Word]:
        """Text segments of an RGB uint8 image, boxes in the image's pixels."""
