"""The candidate scorer: a gradient-boosted model exported to ONNX, run with onnxruntime.

A model is a folder with ``scorer.onnx`` (features in, P(candidate is the value) out) and
``scorer.json`` (the feature names it was trained with, the calibration map of its
confidences and what it was trained on). The embedded model ships in ``docvlm/models/scorer``;
``docvlm train`` writes new ones (see :mod:`docvlm.read.learned.train`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from docvlm.errors import ConfigError
from docvlm.read.learned.features import FEATURES

EMBEDDED = Path(__file__).resolve().parents[2] / "models" / "scorer"
MODEL_FILE, META_FILE = "scorer.onnx", "scorer.json"
#: the same model cut to its first trees: every candidate is scored with it, and only each
#: field's ROUGH_KEEP best go on to the whole model (the decoder looks at the top 50). 32
#: and 64 gave the same dev-set figures (but one more right ad-buy date with 32), 16 moved
#: some; the whole model costs ~11 µs a row
ROUGH_FILE, ROUGH_TREES, ROUGH_KEEP = "scorer_rough.onnx", 40, 32


class Calibration:
    """A monotone map from raw scores to the share of right answers (isotonic regression
    fitted on documents the model was not trained on)."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.xs = np.asarray(xs or [0.0, 1.0], dtype=np.float64)
        self.ys = np.asarray(ys or [0.0, 1.0], dtype=np.float64)

    def __call__(self, p: float) -> float:
        return float(np.interp(p, self.xs, self.ys))

    @classmethod
    def fit(cls, scores: list[float], right: list[bool]) -> Calibration:
        """Pool-adjacent-violators isotonic fit of ``right`` on ``scores``."""
        if not scores:
            return cls([0.0, 1.0], [0.0, 1.0])
        order = np.argsort(scores)
        xs = np.asarray(scores, dtype=np.float64)[order]
        ys = np.asarray(right, dtype=np.float64)[order]
        blocks: list[list[float]] = []  # [sum_y, count, min_x, max_x]
        for x, y in zip(xs, ys, strict=True):
            blocks.append([y, 1.0, x, x])
            while (
                len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]
            ):
                s, n, lo, hi = blocks.pop()
                blocks[-1][0] += s
                blocks[-1][1] += n
                blocks[-1][3] = hi
        px, py = [], []
        for s, n, lo, hi in blocks:
            px.append((lo + hi) / 2)
            py.append(s / n)
        return cls([round(x, 5) for x in px], [round(y, 5) for y in py])

    def to_json(self) -> dict:
        return {"x": self.xs.tolist(), "y": self.ys.tolist()}


class Scorer:
    """Loads a model folder once; ``predict`` gives one probability per feature row."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else EMBEDDED
        model, meta = self.folder / MODEL_FILE, self.folder / META_FILE
        if not model.is_file() or not meta.is_file():
            raise ConfigError(
                f"{self.folder}: not a scorer model (needs {MODEL_FILE} and {META_FILE}; "
                "make one with `docvlm train`)"
            )
        self.meta = json.loads(meta.read_text(encoding="utf-8"))
        if tuple(self.meta.get("features", ())) != FEATURES:
            raise ConfigError(
                f"{self.folder}: the model was trained with other features than this docvlm "
                "computes; retrain it with `docvlm train`"
            )
        cal = self.meta["calibration"]
        self.calibration = Calibration(cal["x"], cal["y"])
        self.model = OnnxModel(model)
        rough = self.folder / ROUGH_FILE
        self.rough = OnnxModel(rough) if rough.is_file() else None
        self.keep = int(self.meta.get("rough", {}).get("keep", ROUGH_KEEP))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.positive(X)

    def rough_keep(self, X: np.ndarray) -> np.ndarray:
        """The rows of one field's matrix worth the whole model (indices, in order): its
        ``keep`` best by the rough model, or all of them when there are no more."""
        if self.rough is None or len(X) <= self.keep:
            return np.arange(len(X))
        return np.sort(np.argpartition(-self.rough.positive(X), self.keep)[: self.keep])


class OnnxModel:
    """An ONNX classifier run on one thread, its input and output names found once."""

    def __init__(self, path: Path, what: str = "the scorer") -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=so, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(f"{path}: cannot load {what}: {exc}") from exc
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = "probabilities" if "probabilities" in outputs else outputs[-1]
        self.input = self.session.get_inputs()[0].name

    def run(self, X: np.ndarray, width: int = 2) -> np.ndarray:
        """The class probabilities of each row (``width`` columns; no rows: an empty one)."""
        if len(X) == 0:
            return np.zeros((0, width), dtype=np.float32)
        return np.asarray(
            self.session.run([self.output], {self.input: np.asarray(X, np.float32)})[0]
        )

    def positive(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) of each row."""
        out = self.run(X)
        return out[:, 1] if out.ndim == 2 else out
