"""The OCR's runtimes and memory bounds (issue 12): OpenVINO reads as ONNX Runtime does, the
runtime option fails clearly, a page is detected in bands of bounded pixels, recognition
batches have few shapes, and the benchmark takes the pipeline's options."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from docvlm.bench import make_scans
from docvlm.datamodel import OcrOptions, PipelineOptions
from docvlm.engines import openvino_rt
from docvlm.engines.ocr.rapid import RapidOcrEngine
from docvlm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
KEY_WORDS = {"ACME", "Components", "INV-00000", "Total:"}


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> np.ndarray:
    (png,) = make_scans(tmp_path_factory.mktemp("scan"), 1)
    return np.asarray(Image.open(png).convert("RGB"))  # a dense A4 page, 1653 × 2339


def _agreement(a: list[str], b: list[str]) -> float:
    """Share of words read the same (as multisets), over the longer reading."""
    return sum((Counter(a) & Counter(b)).values()) / max(len(a), len(b), 1)


def _spy(stage, seen: list[tuple]) -> None:
    session = stage.session

    def call(blob, session=session):
        seen.append(blob.shape)
        return session(blob)

    stage.session = call


@pytest.mark.skipif(not openvino_rt.openvino_installed(), reason="openvino not installed")
def test_openvino_reads_the_page_as_onnxruntime_does(page: np.ndarray) -> None:
    top = page[:1000]
    words = {}
    for runtime in ("onnxruntime", "openvino"):
        engine = RapidOcrEngine(OcrOptions(runtime=runtime))
        assert engine.runtime == runtime
        model = engine._load()
        kind = type(model.text_rec.session).__name__
        assert (kind == "OpenVinoSession") == (runtime == "openvino"), kind
        words[runtime] = [w.text for w in engine.recognize(top)]
    assert len(words["openvino"]) > 40
    assert {"ACME", "Components", "INV-00000"} <= set(words["openvino"])
    assert _agreement(words["onnxruntime"], words["openvino"]) >= 0.9


def test_runtime_option_is_resolved_or_fails_naming_the_fix(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="ocr.runtime must be one of"):
        openvino_rt.resolve_runtime("tensorrt")
    with pytest.raises(ValueError):
        PipelineOptions.model_validate({"ocr": {"runtime": "tensorrt"}})
    assert openvino_rt.resolve_runtime("onnxruntime") == "onnxruntime"
    # a machine without the package: asking for it is an error, auto falls back
    monkeypatch.setattr(openvino_rt, "openvino_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'docvlm\[openvino\]'"):
        RapidOcrEngine(OcrOptions(runtime="openvino"))
    monkeypatch.setattr(openvino_rt, "cpu_has_bf16", lambda: False)
    assert openvino_rt.resolve_runtime("auto") == "onnxruntime"
    monkeypatch.setattr(openvino_rt, "cpu_has_bf16", lambda: True)
    assert openvino_rt.resolve_runtime("auto") == "openvino"


def test_page_is_detected_in_bands_of_bounded_pixels(page: np.ndarray) -> None:
    engine = RapidOcrEngine(OcrOptions())
    model = engine._load()
    shapes: list[tuple] = []
    _spy(model.text_det, shapes)
    banded = [w.text for w in engine.recognize(page)]
    bands = list(shapes)
    limit, overlap = engine.max_det_band_pixels, engine.det_band_overlap
    shapes.clear()
    engine.max_det_band_pixels = 10**9  # the whole page at once
    whole = [w.text for w in engine.recognize(page)]
    assert len(shapes) == 1 and 1568 <= max(shapes[0][2:]) <= 1632  # 1600 px, one call
    assert len(bands) >= 2, bands
    # every band at the page's scale (its width), within the pixel bound or 3 overlaps tall
    # (+ rounding to 32), less than the page
    width = shapes[0][3]
    assert all(s[3] == width for s in bands), bands
    bound = max(limit, 3 * overlap * width) + 32 * width
    assert all(s[2] * s[3] <= bound < shapes[0][2] * width for s in bands), (bands, bound)
    # and together they cover the page's rows, each overlapping the next
    assert sum(s[2] for s in bands) >= shapes[0][2] + (len(bands) - 1) * overlap - 32
    assert KEY_WORDS <= set(banded)
    assert _agreement(whole, banded) >= 0.95


def _lines_page(shift: int) -> np.ndarray:
    """A page of numbered lines in a right-hand column, every 24 pt, moved down ``shift``
    pixels (so that some line falls on a band border at some shift)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=420)
    for i in range(15):
        page.insert_text((420, 30 + 24 * i), f"{100 + i},00 EUR", fontsize=11)
    pix = page.get_pixmap(dpi=150)
    img = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, pix.n)[:, :, :3]
    return np.concatenate([np.full((shift, pix.width, 3), 255, np.uint8), img])


def test_a_line_on_a_band_border_is_read_once(page: np.ndarray) -> None:
    """Two bands place a border line a few pixels apart; it must be neither lost (each
    band leaving it to the other) nor read twice."""
    engine = RapidOcrEngine(OcrOptions(runtime="onnxruntime"))
    engine.det_band_overlap = 64
    engine.max_det_band_pixels = 3 * 64 * 1300  # bands of ~200 detector rows
    want = Counter(f"{100 + i},00" for i in range(15))
    for shift in range(0, 48, 6):
        got = Counter(w.text for w in engine.recognize(_lines_page(shift)) if "," in w.text)
        assert got == want, (shift, got)


def test_recognition_batches_have_bounded_widths_on_a_coarse_grid(page: np.ndarray) -> None:
    engine = RapidOcrEngine(OcrOptions())
    model = engine._load()
    shapes: list[tuple] = []
    _spy(model.text_rec, shapes)
    words = [w.text for w in engine.recognize(page[:1200])]
    assert {"ACME", "Components", "INV-00000"} <= set(words)
    step, cap = engine.rec_width_step, engine.max_batch_width
    assert shapes and all(s[3] % step == 0 for s in shapes), shapes
    # a batch of several lines is at most the cap wide (its widest line rounded up a step)
    assert all(s[0] == 1 or s[0] * (s[3] - step) <= cap for s in shapes), shapes
    assert len({s[3] for s in shapes}) < len(shapes)  # widths are shared between batches


def test_bench_runs_only_the_groups_asked_for_with_the_given_options(tmp_path: Path) -> None:
    from docvlm.bench import scenarios

    options = PipelineOptions.model_validate({"ocr": {"runtime": "onnxruntime"}})
    rows = scenarios(tmp_path, 0, 1, 2, options.model_dump(mode="json"))
    names = [name for name, _ in rows]
    assert names == ["floor: RapidOCR alone (1 scans)", "scanned A4 200 dpi, 1 process",
                     "scanned A4 200 dpi, 2 workers"]  # fmt: skip
    assert all(spec["options"]["ocr"]["runtime"] == "onnxruntime"
               for _, spec in rows if spec["kind"] == "pipeline")  # fmt: skip
    assert not (tmp_path / "long.pdf").exists()  # the born-digital group is not even built


def test_bench_with_a_bad_config_fails_before_measuring(tmp_path: Path) -> None:
    bad = tmp_path / "opts.yaml"
    bad.write_text("ocr:\n  runtime: tensorrt\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "docvlm", "bench", "--config", str(bad), "--repeat", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "runtime" in proc.stderr and "measured" not in proc.stdout, proc.stderr[-1500:]


@pytest.mark.skipif(not openvino_rt.openvino_installed(), reason="openvino not installed")
def test_an_openvino_worker_reads_a_scan_within_its_smallest_address_space(
    page: np.ndarray, tmp_path: Path
) -> None:
    """The floor of the per-worker address-space limit leaves OpenVINO room: a worker held
    to it reads a dense scan (held to ONNX Runtime's 2 GB floor, OpenVINO's OCR failed)."""
    from docvlm.datamodel import DocStatus
    from docvlm.pipeline import _min_address_space
    from docvlm.schema import load_schema
    from docvlm.sources import discover
    from docvlm.workers import WorkerPool

    ov = PipelineOptions.model_validate({"ocr": {"runtime": "openvino"}})
    ort = PipelineOptions.model_validate({"ocr": {"runtime": "onnxruntime"}})
    assert _min_address_space(ov) > _min_address_space(ort) == 2048
    png = tmp_path / "scan.png"
    Image.fromarray(page).save(png)
    spec = load_schema(ROOT / "schemas" / "invoice.schema.json")
    with WorkerPool(ov, spec, 1, None, _min_address_space(ov)) as pool:
        (res,) = list(pool.map(discover([str(png)])))
    # (at 2048 MB: PARTIAL, "OCR failed (Exception from src/inference/...infer_request.cpp")
    assert res.status == DocStatus.SUCCESS, res.errors
    assert res.pages == 1 and res.stats.get("ocr_pages") == 1
