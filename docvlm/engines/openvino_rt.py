"""OpenVINO as the CPU runtime of the OCR models (optional: ``pip install 'docvlm[openvino]'``).

Measured on this project's 2-core AMD EPYC (AVX-512 BF16) with RapidOCR's PP-OCRv6 small
models, one thread: ONNX Runtime and OpenVINO run the models at the same speed in float32
(recogniser 8 lines × 320 px: 192 vs 203 ms; detector at 1600 × 1120: 640 vs 623 ms), and
OpenVINO at its default CPU precision, bfloat16 where the CPU has it, runs them 1.7× faster
(117 and 368 ms). bfloat16 keeps float32's range, so the readings barely move: on 1,396 text
lines cropped from real receipts and forms 96.8 % read exactly as in float32 and 0.33 % of the
characters differ (int8 static quantisation of the recogniser with ONNX Runtime was as fast
but changed 1.7 % of the characters). On whole pages, where the recogniser sees a new width with
nearly every batch, the gap is wider: OCR of 24 real receipts and forms took 58.5 s with ONNX
Runtime, 43.8 s with OpenVINO in float32 and 22.2 s in bfloat16. OpenVINO holds more memory
(its compiled kernels and the detector's activations stay between calls: ~700 vs ~270 MB a
process), so ``ocr.runtime: auto`` takes it only where the CPU computes in bfloat16, and keeps
ONNX Runtime, always installed, elsewhere.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from docvlm.datamodel import OcrOptions
from docvlm.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

#: the values of ``ocr.runtime``, from its option type
RUNTIMES: tuple[str, ...] = get_args(OcrOptions.model_fields["runtime"].annotation)


@functools.cache
def _core() -> Any:
    import openvino

    return openvino.Core()


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether OpenVINO computes in bfloat16 on this CPU (AVX-512 BF16 or AMX)."""
    if not openvino_installed():
        return False
    try:
        return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # an OpenVINO that cannot see its CPU plugin: not usable either
        return False


def resolve_runtime(requested: str) -> str:
    """``onnxruntime`` or ``openvino`` for the option value ``requested``.

    Raises:
        ConfigError: ``openvino`` asked for and not installed, or an unknown runtime.
    """
    if requested not in RUNTIMES:
        raise ConfigError(f"ocr.runtime must be one of {', '.join(RUNTIMES)}, not {requested!r}")
    if requested == "openvino" and not openvino_installed():
        raise ConfigError(
            "ocr.runtime is 'openvino' but the openvino package is not installed "
            "(pip install 'docvlm[openvino]'), or set ocr.runtime to auto/onnxruntime"
        )
    if requested == "auto":
        return "openvino" if cpu_has_bf16() else "onnxruntime"
    return requested


class OpenVinoSession:
    """An ONNX model compiled by OpenVINO for the CPU, called like RapidOCR's ONNX Runtime
    session: one array in, the first output out."""

    def __init__(self, path: str | Path, threads: int) -> None:
        core = _core()
        self.path = Path(path)
        compiled = core.compile_model(
            core.read_model(str(self.path)),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": max(1, threads),
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                # OpenVINO pins its threads to cores, and two worker processes pin to the
                # same core (measured: 2 workers ran at 0.57 of a core each)
                "ENABLE_CPU_PINNING": False,
                # a compiled kernel per input shape is cached; recognition sees a new width
                # with nearly every batch, so the cache would only hold memory
                "CPU_RUNTIME_CACHE_CAPACITY": 0,
            },
        )
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision: str = getattr(precision, "get_type_name", lambda: str(precision))()
        self._request = compiled.create_infer_request()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._request.infer({0: x})
        # the output tensor is OpenVINO's buffer, overwritten by the next call
        return self._request.get_output_tensor(0).data.copy()
