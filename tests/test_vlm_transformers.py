"""The ``transformers`` reader on tiny random-weight VLMs built on the spot (offline).

Random weights say nothing useful, which is the point: constrained decoding must still give
answers that parse and match the schema's types, whatever the model prefers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

import vlm_fixtures  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from docvlm.datamodel import Page, PipelineOptions, ReaderOptions, Region  # noqa: E402
from docvlm.read import get_reader  # noqa: E402
from docvlm.read.base import DocumentContent  # noqa: E402
from docvlm.schema import schema_from_dict  # noqa: E402


def _load(model):
    from docvlm.engines.vlm.transformers_engine import TransformersEngine

    engine = TransformersEngine.for_device(str(model), "cpu", "float32")
    engine.load()
    return engine


pytestmark = pytest.mark.vlm

SMALL = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string", "title": "Vendor"},
        "total": {"type": "number", "title": "Total"},
        "date": {"type": "string", "format": "date", "title": "Date"},
    },
}
TYPED = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "total": {"type": "number"},
        "date": {"type": "string", "format": "date"},
    },
    "required": ["vendor", "total", "date"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread; with more, OpenMP workers spin and stall badly
    when the (2-core) machine is busy with other work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def idefics3_dir(tmp_path_factory) -> Path:
    return vlm_fixtures.build_idefics3(tmp_path_factory.mktemp("vlm") / "idefics3")


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory) -> Path:
    return vlm_fixtures.build_llava(tmp_path_factory.mktemp("vlm") / "llava")


@pytest.fixture(params=["idefics3", "llava"])
def model_dir(request) -> Path:
    return request.getfixturevalue(f"{request.param}_dir")


def _page_image() -> Image.Image:
    img = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), "ACME Ltd", fill="black")
    draw.text((10, 150), "Total 12.50  Date 2024-01-31", fill="black")
    return img


def _doc(regions: list[Region]) -> DocumentContent:
    img = _page_image()
    page = Page(number=1, width=400, height=300, dpi=72, regions=regions)
    return DocumentContent(doc_id="d", source="d.png", pages=[page], image=lambda n: img)


def test_engine_constrained_json_is_schema_valid(model_dir):
    from jsonschema import Draft202012Validator, FormatChecker

    engine = _load(str(model_dir))
    img = _page_image()
    convs = [
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": img.crop(box)},
                    {"type": "text", "text": f"Read region {i} as JSON."},
                ],
            }
        ]
        for i, box in enumerate([(0, 0, 200, 100), (0, 100, 400, 300), (50, 50, 90, 70)])
    ]
    completions = engine.complete(convs, [TYPED] * 3, max_new_tokens=48)
    validator = Draft202012Validator(TYPED, format_checker=FormatChecker())
    for c in completions:
        assert c.error is None and c.finished
        data = json.loads(c.text)
        assert not list(validator.iter_errors(data)), c.text
        assert isinstance(data["total"], (int, float))
        assert len(c.token_probs) == len(c.token_bytes)
        assert b"".join(c.token_bytes).decode() == c.text
        assert all(0.0 <= p <= 1.0 for p in c.token_probs)


def test_tiny_budget_still_closes_the_answer(idefics3_dir):

    engine = _load(str(idefics3_dir))
    conv = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": _page_image()},
                {"type": "text", "text": "JSON please"},
            ],
        }
    ]
    (c,) = engine.complete([conv], [TYPED], max_new_tokens=2)
    data = json.loads(c.text)  # forced to close: nulls are not allowed here, so values exist
    assert set(data) == {"vendor", "total", "date"}


def test_reader_reads_regions_in_one_batch_with_provenance(model_dir):
    spec = schema_from_dict(SMALL, "small")
    regions = [
        Region(label="text", bbox=(0, 0, 200, 60), score=0.9),
        Region(label="text", bbox=(0, 130, 400, 180), score=0.9),
        Region(label="figure", bbox=(300, 200, 390, 290), score=0.9),
    ]
    reader = get_reader(ReaderOptions(kind="transformers", model=str(model_dir), max_new_tokens=40))
    result = reader.read(_doc(regions), spec)
    # one generate for the page's two useful regions, maybe one whole-page fallback
    assert 1 <= result.calls <= 2
    assert not result.errors
    by_path: dict[str, list] = {}
    for v in result.values:
        by_path.setdefault(v.path, []).append(v)
        assert v.reader == "transformers"
        assert 0.0 <= v.confidence <= 1.0
        assert v.page == 1 and v.raw
        if v.region_class == "page":
            assert v.bbox == (0.0, 0.0, 400.0, 300.0)
        else:
            assert v.bbox in {r.bbox for r in regions[:2]}
    for path, vs in by_path.items():
        assert len(vs) == 1, path  # merged: one candidate per field
    for v in result.values:
        if v.path == "total":
            assert isinstance(v.value, float)
        if v.path == "date":
            assert len(v.value) == 10 and v.value[4] == "-"


def test_model_loaded_once_per_pipeline(idefics3_dir):
    from docvlm.pipeline import Pipeline

    pipeline = Pipeline(
        PipelineOptions(reader=ReaderOptions(kind="transformers", model=str(idefics3_dir)))
    )
    first = pipeline.page_reader.engine
    assert first is not None and first.model is not None  # loaded when the pipeline was built
    pipeline.reader.ensure_ready()
    assert pipeline.page_reader.engine is first
    assert (first.device, first.dtype) == ("cpu", "float32")  # "auto" resolved on this machine


def test_missing_model_is_a_clear_error(tmp_path):
    from docvlm.engines.vlm.base import VlmEngineError
    from docvlm.errors import ConfigError

    with pytest.raises(ConfigError, match="--model"):
        get_reader(ReaderOptions(kind="transformers")).ensure_ready()
    with pytest.raises(VlmEngineError, match="DOCVLM_ALLOW_DOWNLOAD"):
        get_reader(ReaderOptions(kind="transformers", model="nobody/no-such-vlm")).ensure_ready()


def test_conversations_batched_into_one_generate(idefics3_dir):
    """Up to ``batch_size`` conversations go through one generate call."""

    engine = _load(str(idefics3_dir))
    img = _page_image()
    convs = [
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": img},
                    {"type": "text", "text": f"region {i}"},
                ],
            }
        ]
        for i in range(4)
    ]
    before = engine.stats.calls
    completions = engine.complete(convs, [TYPED] * 4, max_new_tokens=24)
    assert engine.stats.calls - before == 1
    assert len(completions) == 4 and all(json.loads(c.text) for c in completions)


def test_cascade_with_local_vlm_asks_only_missing_fields(idefics3_dir):
    from docvlm.datamodel import Line, Word

    spec = schema_from_dict(
        {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string", "title": "Invoice number"},
                "total": {"type": "number", "title": "Total"},
                "due_date": {"type": "string", "format": "date", "title": "Due date"},
            },
        },
        "mini",
    )
    box = (40.0, 30.0, 240.0, 44.0)
    lines = [
        Line(text="Invoice No: INV-7", bbox=box, words=[Word(text="Invoice No: INV-7", bbox=box)],
             page=1, region_index=0),
        Line(text="Total: 12.50", bbox=(40, 60, 200, 74),
             words=[Word(text="Total: 12.50", bbox=(40, 60, 200, 74))], page=1, region_index=0),
    ]  # fmt: skip
    img = _page_image()
    page = Page(number=1, width=400, height=300, dpi=72, lines=lines, has_text_layer=True,
                regions=[Region(label="text", bbox=(30, 20, 300, 90), score=0.9)])  # fmt: skip
    doc = DocumentContent(doc_id="c", source="c.pdf", pages=[page], image=lambda n: img)
    reader = get_reader(ReaderOptions(kind="cascade", model=str(idefics3_dir), max_new_tokens=24))
    result = reader.read(doc, spec)
    assert 1 <= result.calls <= 2  # the region, maybe a whole-page fallback
    by_reader = {v.path: v.reader for v in result.values}
    assert by_reader["invoice_number"] == "learned" and by_reader["total"] == "learned"
    assert set(by_reader) - {"invoice_number", "total"} <= {"due_date"}
    assert all(v.reader == "transformers" for v in result.values if v.path == "due_date")


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None,
    reason="Qwen2-VL processors need torchvision, which does not import beside this torch build",
)
def test_qwen2_vl(tmp_path_factory):
    from jsonschema import Draft202012Validator, FormatChecker

    path = vlm_fixtures.build_qwen2_vl(tmp_path_factory.mktemp("vlm") / "qwen2vl")
    engine = _load(str(path))
    conv = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": _page_image()},
                {"type": "text", "text": "JSON"},
            ],
        }
    ]
    (c,) = engine.complete([conv], [TYPED], max_new_tokens=32)
    validator = Draft202012Validator(TYPED, format_checker=FormatChecker())
    assert not list(validator.iter_errors(json.loads(c.text)))
