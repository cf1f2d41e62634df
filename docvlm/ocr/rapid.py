"""PP-OCR (ONNX weights shipped in the ``rapidocr`` wheel) run with onnxruntime."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Word
from docvlm.errors import OcrError
from docvlm.ocr.base import OcrEngine

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


class RapidOcrEngine(OcrEngine):
    """Detection + recognition with RapidOCR's packaged PP-OCR models (offline)."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr import RapidOCR

                self._engine = RapidOCR(
                    params={"Global.log_level": "warning", "Global.text_score": self.options.min_score}
                )
            except Exception as exc:
                raise OcrError(f"could not load the RapidOCR models ({exc})") from exc
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._engine

    def recognize(self, image: np.ndarray) -> list[Word]:
        if image.ndim != 3 or image.shape[0] < 4 or image.shape[1] < 4:
            return []
        with self._lock:
            engine = self._load()
            try:
                out = engine(image)
            except Exception as exc:
                raise OcrError(f"OCR failed ({exc})") from exc
        if out.boxes is None or out.txts is None:
            return []
        words = []
        for box, text, score in zip(out.boxes, out.txts, out.scores, strict=False):
            text = str(text).strip()
            if not text:
                continue
            xs = [float(p[0]) for p in box]
            ys = [float(p[1]) for p in box]
            words.append(
                Word(
                    text=text,
                    bbox=(min(xs), min(ys), max(xs), max(ys)),
                    conf=float(score),
                    origin="ocr",
                )
            )
        return words
