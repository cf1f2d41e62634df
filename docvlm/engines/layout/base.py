"""The LayoutDetector interface: page images in, layout regions out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from docvlm.datamodel import DetectOptions, Region


class LayoutDetector(ABC):
    """Finds layout regions (text, title, table, figure, ...) on page images.

    Subclasses load their model lazily in ``initialize`` (called once, on first use, then
    reused). Boxes are returned in pixels of the image passed in.
    """

    name: str = "base"

    def __init__(self, options: DetectOptions | None = None) -> None:
        self.options = options or DetectOptions()
        self._ready = False

    @abstractmethod
    def initialize(self) -> None:
        """Load the model. Called once before the first prediction.

        Raises:
            DetectError: The model cannot be found or loaded.
        """

    def ensure_ready(self) -> None:
        """Call ``initialize`` if it has not run yet."""
        if not self._ready:
            self.initialize()
            self._ready = True

    @abstractmethod
    def predict_batch(self, images: list[np.ndarray]) -> list[list[Region]]:
        """Detect regions on several page images.

        Args:
            images: RGB ``uint8`` arrays of shape ``(H, W, 3)``.

        Returns:
            One list of regions per image, in the same order, boxes in that image's pixels.

        Raises:
            DetectError: An image cannot be used or the model failed.
        """

    def predict(self, image: np.ndarray) -> list[Region]:
        """Detect regions on one page image.

        Args:
            image: RGB ``uint8`` array of shape ``(H, W, 3)``.

        Returns:
            The regions found, boxes in pixels of ``image``.

        Raises:
            DetectError: The image cannot be used or the model failed.
        """
        return self.predict_batch([image])[0]
