"""PP-OCR (ONNX weights shipped in the ``rapidocr`` wheel) run with onnxruntime.

RapidOCR's models are used stage by stage rather than through its one-call pipeline, so that
each stage reads the page at the scale that suits it:

- **detection** runs on a copy of the page scaled to fit ``max_det_side`` (and at least
  ``min_det_side`` on its short side);
- **recognition** reads each text line cropped from the *full-resolution* page and brought to
  the recogniser's input height with an area filter (the plain pipeline crops from the
  downscaled copy and lets the recogniser alias big crops down);
- lines read with low confidence are read again from a tighter crop (tightly spaced receipt
  lines often bleed into the detector's expanded box), keeping the better reading;
- decoding keeps a rare accented letter only when the model is sure of its accent: noisy scans
  of plain-Latin text otherwise come out as ``SÉLANGOR`` or ``Śhah``.
"""

from __future__ import annotations

import logging
import math
import threading
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import Word
from docvlm.engines.ocr.base import OcrEngine
from docvlm.engines.openvino_rt import resolve_runtime
from docvlm.errors import ConfigError, OcrError
from docvlm.settings import onnx_threads

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


class RapidOcrEngine(OcrEngine):
    """Detection + recognition with RapidOCR's packaged PP-OCR models (offline)."""

    #: shortest side of the image the text detector sees (smaller pages are scaled up)
    min_det_side: int = 736
    #: the detector never sees more pixels than this (its float input is 12 bytes a pixel)
    max_det_pixels: int = 6_000_000
    #: a page longer than this × its width is a strip, detected in tiles along its length
    max_det_aspect: int = 8
    #: a strip's tiles are scaled up at most this much (towards ``min_det_side``)
    max_strip_upscale: float = 2.0
    #: a page the detector would see as more pixels than this is detected in bands of rows
    #: (at the page's detector scale), overlapping by ``det_band_overlap`` rows: the
    #: detector's working memory grows with the pixels it is given at once, and OpenVINO
    #: keeps it between calls (measured: 185 bytes a pixel, 331 MB for an A4 page at
    #: 1600 px, ~160 MB for a band); an A4 page is 3 bands, 1.3x the detector's work
    max_det_band_pixels: int = 720_000
    #: ... a line up to this tall (detector pixels) is whole in a band, and a box is kept
    #: from the band where it lies at least half of this from an edge: a band changes what
    #: the detector sees up to ~100 rows from its edges (with 128 rows of overlap a sample
    #: invoice lost a line item; with 256 it reads as with no bands); bands are at least
    #: 3x this tall
    det_band_overlap: int = 256
    #: lines read with a lower confidence are read again from a tighter crop
    retry_below: float = 0.9
    #: the tighter crop keeps this share of the detected box's height
    retry_shrink: float = 0.8
    #: an accented letter below this probability is read as its base letter
    min_accent_prob: float = 0.8
    #: crops are widened on both ends by this share of the line height (faint first letters)
    pad_x: float = 0.0
    #: words of one detected line closer than this × their height stay one segment
    join_gap: float = 2.0
    #: a batch of lines is padded to at least this width / height: RapidOCR pads every
    #: line to 320 × 48 (6.7), which made recognition of short lines (the most common on
    #: forms and receipts: numbers, dates, one or two words) cost 2-3× their own width; the
    #: recogniser's cost is linear in the width it is given
    min_rec_ratio: float = 1.0
    #: recognition batch size (lines of similar width are batched together)
    batch_size: int = 8
    #: ... and a batch's lines together at most this wide (px at the recogniser's height):
    #: the runtime's buffers grow with the batch's pixels, its speed does not (measured:
    #: the recogniser's cost per line does not change with the batch size)
    max_batch_width: int = 2048
    #: a batch's width is rounded up to a multiple of this: OpenVINO compiles kernels per
    #: input shape (oneDNN's primitive cache), and fewer shapes compile less (measured on
    #: 24 real receipts and forms, one thread: 19.3 s at 64 px steps, 24.3 s at 1 px)
    rec_width_step: int = 64
    #: lines the rotation classifier probes before it is run on every line of a page
    cls_probe: int = 8

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        #: longest side of the image the text detector sees (larger pages are scaled down)
        self.max_det_side: int = self.options.max_det_side
        #: onnxruntime or openvino (``ocr.runtime``, resolved for this machine)
        self.runtime: str = resolve_runtime(self.options.runtime)
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr import RapidOCR

                engine = RapidOCR(
                    params={
                        "Global.log_level": "warning",
                        "Global.text_score": self.options.min_score,
                        "EngineConfig.onnxruntime.intra_op_num_threads": onnx_threads(),
                        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    }
                )
                engine._load_det_model()
                engine._load_cls_model()
                engine._load_rec_model()
                # _detect_tile sizes the detector's input itself; RapidOCR's own resize
                # (short side up to 736, whatever the long side becomes) must not redo it
                engine.text_det.limit_type = "max"
                engine.text_det.limit_side_len = 1 << 30
                if self.runtime == "openvino":
                    self._to_openvino(engine)
            except ConfigError:
                raise
            except Exception as exc:
                raise OcrError(f"could not load the RapidOCR models ({exc})") from exc
            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
            self._engine = engine
        return self._engine

    def _to_openvino(self, engine: Any) -> None:
        """The detector and the recogniser run by OpenVINO (the rotation classifier, a few
        lines a page, stays on ONNX Runtime). RapidOCR still loads them first: it reads the
        recogniser's character list from the ONNX Runtime session's metadata."""
        from docvlm.engines.openvino_rt import OpenVinoSession

        for stage in (engine.text_det, engine.text_rec):
            # RapidOCR's wrapper keeps the ONNX Runtime session, which knows its file
            path = getattr(getattr(stage.session, "session", None), "_model_path", None)
            if not path:
                raise OcrError("cannot find the ONNX file of RapidOCR's models for OpenVINO")
            stage.session = OpenVinoSession(path, onnx_threads())  # drops the ORT session
        logger.info("OCR models run by OpenVINO (%s)", engine.text_rec.session.precision)

    def recognize(self, image: np.ndarray) -> list[Word]:
        from docvlm.render.blank import is_blank

        if image.ndim != 3 or image.shape[0] < 4 or image.shape[1] < 4:
            return []
        if self.options.skip_blank and is_blank(image):
            return []  # nothing to read; spares the ~3 s of detection on an empty page
        with self._lock:
            engine = self._load()
            try:
                return self._recognize(engine, image)
            except OcrError:
                raise
            except Exception as exc:
                raise OcrError(f"OCR failed ({exc})") from exc

    # -- stages ---------------------------------------------------------------------------

    def _recognize(self, engine: Any, image: np.ndarray) -> list[Word]:
        import numpy as np

        if image.shape[2] == 4:
            image = image[:, :, :3]
        image = np.ascontiguousarray(image)
        boxes = self._detect(engine, image)
        if not boxes:
            return []
        if self.pad_x:
            boxes = [_widen(box, self.pad_x) for box in boxes]
        crops = [self._crop(image, box) for box in boxes]
        turned = engine.use_cls and self._upside_down(engine, crops)
        if turned:
            crops = engine.text_cls(crops).img_list
        readings = self._read(engine, crops)
        weak = [i for i, reading in enumerate(readings) if reading.score < self.retry_below]
        if weak:
            tight_boxes = {i: _shrink(boxes[i], self.retry_shrink) for i in weak}
            tight = [self._crop(image, tight_boxes[i]) for i in weak]
            if turned:
                tight = engine.text_cls(tight).img_list
            for i, again in zip(weak, self._read(engine, tight), strict=True):
                if again.score > readings[i].score:
                    readings[i] = again
        words: list[Word] = []
        for box, reading in zip(boxes, readings, strict=True):
            if not reading.text.strip() or reading.score < self.options.min_score:
                continue
            words.extend(self._words(box, reading))
        return words

    def _upside_down(self, engine: Any, crops: list[np.ndarray]) -> bool:
        """Whether any line of the page may be upside down: the rotation classifier looks at
        the ``cls_probe`` widest lines first (long lines are the surest reading of the
        page's orientation) and at every line only when one of those reads as turned."""
        if len(crops) <= self.cls_probe:
            return True  # as cheap to classify them all as to probe
        widest = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1])[: self.cls_probe]
        probe = engine.text_cls([crops[i] for i in widest])
        return any("180" in label and score > engine.text_cls.cls_thresh
                   for label, score in probe.cls_res)  # fmt: skip

    def _detect(self, engine: Any, image: np.ndarray) -> list[np.ndarray]:
        """Text-line quadrilaterals in the image's own pixels.

        A page is detected at its scale (see ``_page_scale``), in bands of rows when it
        would be more than ``max_det_band_pixels`` at once. A strip longer than
        ``max_det_aspect`` × its width is detected in overlapping tiles along its long side,
        scaled up at most ``max_strip_upscale``: scaled as a page, its short side brought up
        to ``min_det_side``, a 20000×40 strip would be a 368000×736 tensor (23 GB).
        """
        h, w = image.shape[:2]
        if max(h, w) > self.max_det_aspect * min(h, w):  # a strip
            scale = min(self.min_det_side / min(h, w), self.max_strip_upscale)
            axis = 0 if w >= h else 1  # the box coordinate that runs along the strip
            tile = max(int(self.max_det_side / scale), min(h, w))
            overlap = tile // 4  # a word or short line cut by one tile is whole in the next
        else:  # a page: bands of whole rows, so that no line of text is cut along its length
            scale = self._page_scale(h, w)
            axis = 1
            rows = self.max_det_band_pixels // max(1, round(w * scale))
            rows = max(rows, 3 * self.det_band_overlap)
            tile, overlap = int(rows / scale), int(self.det_band_overlap / scale)
            if tile >= h:
                return self._detect_tile(engine, image, scale)
        return self._detect_tiles(engine, image, scale, axis, tile, overlap)

    def _page_scale(self, h: int, w: int) -> float:
        """The detector's scale for a page: its long side down to ``max_det_side``, its
        short side up to ``min_det_side``."""
        scale = 1.0
        if max(h, w) > self.max_det_side:
            scale = self.max_det_side / max(h, w)
        if min(h, w) * scale < self.min_det_side:
            scale = self.min_det_side / min(h, w)
        return scale

    def _detect_tiles(
        self, engine: Any, image: np.ndarray, scale: float, axis: int, tile: int, overlap: int
    ) -> list[np.ndarray]:
        """Boxes of ``image`` detected in tiles of ``tile`` px overlapping by ``overlap``
        along box coordinate ``axis`` (0: x, 1: y)."""
        import numpy as np

        length = image.shape[1 - axis]
        boxes: list[np.ndarray] = []
        prev = np.zeros((0, 4))  # the boxes (x0, y0, x1, y1) the previous tile kept
        start = 0
        # each tile keeps the boxes centred in its own share, widened by a slack: two tiles
        # place a line on their border a few pixels apart, and with a hard border each
        # may put its centre on the other's side (the line was lost). A line both keep is
        # kept once: the second copy overlaps the first.
        slack = overlap / 4
        while True:
            end = min(start + tile, length)
            part = image[:, start:end] if axis == 0 else image[start:end]
            lo = start + overlap / 2 - slack if start > 0 else -math.inf
            hi = end - overlap / 2 + slack if end < length else math.inf
            kept = []
            for box in self._detect_tile(engine, np.ascontiguousarray(part), scale):
                box[:, axis] += start
                if lo <= float(box[:, axis].mean()) < hi and not _repeats(box, prev):
                    kept.append(box)
            boxes.extend(kept)
            if end >= length:
                return boxes
            prev = np.array([[*b.min(axis=0), *b.max(axis=0)] for b in kept]).reshape(-1, 4)
            start = end - overlap

    def _detect_tile(self, engine: Any, image: np.ndarray, scale: float) -> list[np.ndarray]:
        """Boxes of ``image`` (a page, a band of it or a strip's tile) detected at ``scale``."""
        import cv2
        import numpy as np

        h, w = image.shape[:2]
        # never more than max_det_pixels, whatever the shape (an upscaled small image too)
        scale = min(scale, math.sqrt(self.max_det_pixels / (h * w)))
        dw = max(32, int(round(w * scale / 32) * 32))
        dh = max(32, int(round(h * scale / 32) * 32))
        small = image
        if (dw, dh) != (w, h):
            interp = cv2.INTER_AREA if dw < w else cv2.INTER_CUBIC
            small = cv2.resize(image, (dw, dh), interpolation=interp)
        det = engine.text_det
        # (pixel / 255 - 0.5) / 0.5, the detector's own normalisation, in one pass of OpenCV
        # (numpy's float arithmetic on a 3-megapixel page took a quarter of detection)
        mean, std = (float(v) for v in det.mean), {float(v) for v in det.std}
        if len(std) == 1:
            blob = cv2.dnn.blobFromImage(small, 1 / (255 * std.pop()), mean=[255 * m for m in mean])
        else:  # per-channel spreads (not RapidOCR's models today): its own preprocessing
            blob = det.get_preprocess()(small)
        found, _ = det.postprocess_op(det.session(blob), (dh, dw))
        if len(found) == 0:
            return []
        boxes = np.asarray(det.sorted_boxes(np.asarray(found)), dtype=np.float32).copy()
        boxes[:, :, 0] *= w / dw
        boxes[:, :, 1] *= h / dh
        return list(boxes)

    def _crop(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The line under ``box``, straightened, at the recogniser's input height."""
        import cv2
        import numpy as np
        from rapidocr.utils.process_img import get_rotate_crop_image

        h, w = image.shape[:2]
        box = box.copy()
        box[:, 0] = np.clip(box[:, 0], 0, w - 1)
        box[:, 1] = np.clip(box[:, 1], 0, h - 1)
        crop = get_rotate_crop_image(image, box)
        target = self._engine.text_rec.rec_image_shape[1]
        ch, cw = crop.shape[:2]
        if ch < 2 or cw < 2:
            return np.zeros((target, target, 3), dtype=np.uint8)
        if ch != target:
            f = target / ch
            interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
            crop = cv2.resize(crop, (max(1, int(round(cw * f))), target), interpolation=interp)
        return crop

    def _read(self, engine: Any, crops: list[np.ndarray]) -> list[_Reading]:
        """The text of each crop (CTC greedy decoding), with where each character was read."""
        import cv2
        import numpy as np

        rec = engine.text_rec
        chars: list[str] = rec.postprocess_op.character
        img_h = int(rec.rec_image_shape[1])
        ratios = [c.shape[1] / max(c.shape[0], 1) for c in crops]
        order = [int(i) for i in np.argsort(ratios, kind="stable")]
        # batches of similar widths: a short line padded to a long one's width reads worse
        batches: list[list[int]] = []
        for i in order:
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and ratios[i] <= 1.3 * ratios[batches[-1][0]] + 1
                and (len(batches[-1]) + 1) * img_h * ratios[i] <= self.max_batch_width
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        out: list[_Reading] = [_Reading([], 0.0, 1)] * len(crops)
        for idx in batches:
            widest = max([self.min_rec_ratio] + [ratios[i] for i in idx])
            step = self.rec_width_step
            width = -(-int(img_h * widest) // step) * step
            # padded with zeros after normalisation, as RapidOCR's own resize_norm_img does
            batch = np.zeros((len(idx), 3, img_h, width), dtype=np.float32)
            for k, i in enumerate(idx):
                crop = crops[i]
                if crop.shape[0] != img_h or crop.shape[1] > width:
                    crop = cv2.resize(crop, (min(crop.shape[1], width), img_h))
                # (pixel / 255 - 0.5) / 0.5, the recogniser's normalisation
                batch[k, :, :, : crop.shape[1]] = crop.transpose(2, 0, 1) * (1 / 127.5) - 1.0
            probs = rec.session(batch)
            steps = probs.shape[1]
            for k, i in enumerate(idx):
                # the time steps that cover the crop itself (the rest is padding)
                used = min(steps, max(1, math.ceil(img_h * ratios[i] / (width / steps))))
                out[i] = self._decode(probs[k], chars, used)
        return out

    def _decode(self, probs: np.ndarray, chars: list[str], used: int) -> _Reading:
        best = probs.argmax(axis=1).tolist()
        spans: list[tuple[str, int, int, float]] = []  # char, first step, last step, probability
        prev = -1
        for t, a in enumerate(best):
            if a == prev and spans and 0 < a < len(chars):
                c, start, _, p = spans[-1]
                spans[-1] = (c, start, t, max(p, float(probs[t, a])))
            elif 0 < a < len(chars):
                c, p = chars[a], float(probs[t, a])
                if not c.isascii() and p < self.min_accent_prob:
                    c = _unaccent(c)
                spans.append((c, t, t, p))
            prev = a
        if not spans:
            return _Reading([], 0.0, used)
        score = sum(sp[3] for sp in spans) / len(spans)
        return _Reading(spans, score, used)

    def _words(self, box: np.ndarray, reading: _Reading) -> list[Word]:
        """One Word per space-separated word, its box cut from the line's box by where the
        recogniser read its characters."""
        groups: list[list[tuple[str, int, int, float]]] = [[]]
        for span in reading.spans:
            if span[0].isspace():
                if groups[-1]:
                    groups.append([])
            else:
                groups[-1].append(span)
        groups = [g for g in groups if g]
        if not groups:
            return []
        top, bottom = box[1] - box[0], box[2] - box[3]
        words: list[Word] = []
        for n, group in enumerate(groups):
            text = unicodedata.normalize("NFKC", "".join(sp[0] for sp in group)).strip()
            if not text:
                continue
            # a character is read around its steps; extend half a step each side, and to the
            # line's ends for the first and last word (the detector's box is the better edge)
            f0 = 0.0 if n == 0 else max(group[0][1] - 0.5, 0) / reading.used
            f1 = 1.0 if n == len(groups) - 1 else min((group[-1][2] + 1.5) / reading.used, 1.0)
            pts = [box[0] + top * f0, box[0] + top * f1, box[3] + bottom * f1, box[3] + bottom * f0]
            xs = [float(p[0]) for p in pts]
            ys = [float(p[1]) for p in pts]
            conf = sum(sp[3] for sp in group) / len(group)
            words.append(
                Word(text=text, bbox=(min(xs), min(ys), max(xs), max(ys)), conf=conf, origin="ocr")
            )
        # The detector put these words in one box: a letter-spaced heading ('T H R E E  S T O
        # O G E S') keeps together unless the gap is a real column gap.
        for k in range(1, len(words)):
            prev, cur = words[k - 1], words[k]
            height = min(prev.bbox[3] - prev.bbox[1], cur.bbox[3] - cur.bbox[1])
            if cur.bbox[0] - prev.bbox[2] < self.join_gap * height:
                x1 = max(prev.bbox[2], cur.bbox[0] - 0.4 * height)
                words[k - 1] = prev.model_copy(
                    update={"bbox": (prev.bbox[0], prev.bbox[1], x1, prev.bbox[3])}
                )
        return words


@dataclass
class _Reading:
    """A recognised line: characters with the time steps they were read at."""

    spans: list[tuple[str, int, int, float]]
    score: float
    used: int  # time steps covering the crop

    @property
    def text(self) -> str:
        return "".join(sp[0] for sp in self.spans)


def _unaccent(c: str) -> str:
    """The base letter of an accented Latin letter ('É' → 'E'); other characters unchanged."""
    base = unicodedata.normalize("NFKD", c)[0]
    return base if base != c and base.isascii() and base.isalpha() else c


def _shrink(box: np.ndarray, keep: float) -> np.ndarray:
    """``box`` with its height (the side from its top edge to its bottom edge) scaled by ``keep``."""
    box = box.copy()
    top = (box[0] + box[1]) / 2
    bottom = (box[3] + box[2]) / 2
    step = (bottom - top) * (1 - keep) / 2
    box[0] += step
    box[1] += step
    box[2] -= step
    box[3] -= step
    return box


def _widen(box: np.ndarray, pad: float) -> np.ndarray:
    """``box`` lengthened along its text direction by ``pad`` × its height at each end."""
    import numpy as np

    box = box.copy()
    height = float(np.linalg.norm(box[3] - box[0]))
    direction = box[1] - box[0]
    direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
    box[0] -= direction * pad * height
    box[3] -= direction * pad * height
    box[1] += direction * pad * height
    box[2] += direction * pad * height
    return box


def _repeats(box: np.ndarray, kept: np.ndarray) -> bool:
    """A second detection of a line already kept: the box shares half of the smaller one's
    area with one of ``kept`` (their x0, y0, x1, y1 rows)."""
    if not len(kept):
        return False
    import numpy as np

    (x0, y0), (x1, y1) = box.min(axis=0), box.max(axis=0)
    w = np.minimum(x1, kept[:, 2]) - np.maximum(x0, kept[:, 0])
    h = np.minimum(y1, kept[:, 3]) - np.maximum(y0, kept[:, 1])
    areas = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    smaller = np.maximum(np.minimum((x1 - x0) * (y1 - y0), areas), 1e-6)
    return bool(np.any((w > 0) & (h > 0) & (w * h >= 0.5 * smaller)))
