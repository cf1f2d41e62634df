"""The VLM stage logic with a scripted engine: planning, prompting, re-ask, merging."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image

from docvlm.datamodel import Line, Page, ReaderOptions, Region, Word
from docvlm.engines.vlm.base import Completion, EngineStats, VlmEngine, VlmRequestError
from docvlm.read.base import DocumentContent
from docvlm.read.vlm import VlmReader
from docvlm.read.vlm.answer import answer_schema, bounded_schema
from docvlm.read.vlm.parsing import coerce_value, leaf_spans, parse_answer, span_confidence
from docvlm.read.vlm.regions import crop_region, region_kind
from docvlm.schema import field_pointer as pointer
from docvlm.schema import load_schema, schema_from_dict
from docvlm.schema import schema_problems as validate

SCHEMAS = __import__("pathlib").Path(__file__).resolve().parents[1] / "schemas"

SMALL = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string", "title": "Vendor", "description": "Who sold it."},
        "total": {"type": "number", "title": "Total"},
        "date": {"type": "string", "format": "date", "title": "Date"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
}


class ScriptedEngine(VlmEngine):
    """Answers from a function of the last user text; records every conversation."""

    name = "scripted"
    preferred_edge = 64

    def __init__(self, answer) -> None:
        super().__init__()
        self.answer = answer
        self.seen: list[list[dict[str, Any]]] = []
        self.batches: list[int] = []

    def complete(self, conversations, schemas, max_new_tokens, stats=None):
        stats = stats or self.stats
        stats.add_calls()
        self.batches.append(len(conversations))
        out = []
        for conv, schema in zip(conversations, schemas, strict=True):
            self.seen.append(conv)
            result = self.answer(conv, schema)
            out.append(result if isinstance(result, Completion) else Completion(text=result))
        return out


class ScriptedReader(VlmReader):
    name = "scripted"
    default_confidence = 0.8

    def __init__(self, engine: ScriptedEngine, **options: Any) -> None:
        super().__init__(ReaderOptions(kind="openai", **options))
        self._engine = engine

    def _make_engine(self):
        return self._engine


def _line(text: str, x: float, y: float, region: int, page: int = 1) -> Line:
    box = (x, y, x + 8 * len(text), y + 14)
    return Line(
        text=text, bbox=box, words=[Word(text=text, bbox=box)], page=page, region_index=region
    )


def _doc(pages: list[Page]) -> DocumentContent:
    img = Image.new("RGB", (400, 300), "white")
    return DocumentContent(doc_id="doc1", source="doc1.png", pages=pages, image=lambda n: img)


def _page(number: int = 1, regions=None, lines=None) -> Page:
    return Page(
        number=number, width=400, height=300, dpi=72, regions=regions or [], lines=lines or []
    )


def _props(schema: dict[str, Any]) -> set[str]:
    out = set()
    for key, node in schema["properties"].items():
        if node.get("type") == "object":
            out |= {f"{key}.{k}" for k in _props(node)}
        else:
            out.add(key)
    return out


def asked(conv) -> dict[str, Any]:
    text = conv[0]["content"][-1]["text"]
    return json.loads(text.rsplit("JSON Schema:\n", 1)[1])


def test_pointer_and_region_kind():
    assert pointer("total") == "/total"
    assert pointer("seller.name") == "/seller/name"
    assert pointer("line_items/2/amount") == "/line_items/2/amount"
    assert region_kind("Table") == "table"
    assert region_kind("figure") == "skip"
    assert region_kind("paragraph_title") == "text"


def test_answer_schema_nested_nullable_and_required():
    spec = load_schema(SCHEMAS / "invoice.schema.json")
    fields = [spec.field("seller.name"), spec.field("total"), spec.field("issue_date")]
    schema = answer_schema(spec, fields, spec.arrays)
    assert schema["required"] == ["seller", "total", "issue_date", "line_items"]
    assert schema["properties"]["seller"]["required"] == ["name"]
    assert schema["properties"]["seller"]["additionalProperties"] is False
    assert schema["properties"]["total"]["type"] == ["number", "null"]
    assert schema["properties"]["issue_date"]["format"] == "date"
    items = schema["properties"]["line_items"]["items"]
    assert set(items["required"]) == {"description", "quantity", "unit_price", "amount"}
    bounded = bounded_schema(schema, 50, 10)
    assert bounded["properties"]["seller"]["properties"]["name"]["maxLength"] == 50
    assert bounded["properties"]["line_items"]["maxItems"] == 10
    assert "maxLength" not in schema["properties"]["seller"]["properties"]["name"]
    good = {"seller": {"name": "A"}, "total": 1.5, "issue_date": "2024-01-31", "line_items": None}
    assert validate(schema, good) == []
    bad = {**good, "issue_date": "31.01.2024"}
    assert validate(schema, bad)[0][0] == "/issue_date"


def test_coerce_values():
    spec = schema_from_dict(SMALL, "small")
    assert coerce_value(spec.field("total"), "1.234,50 EUR") == 1234.5
    assert coerce_value(spec.field("total"), 12) == 12.0
    assert coerce_value(spec.field("date"), "31.01.2024") == "2024-01-31"
    assert coerce_value(spec.field("vendor"), 12345) == "12345"
    assert coerce_value(spec.field("vendor"), "  ") is None
    assert coerce_value(spec.field("total"), "n/a") is None


def test_leaf_spans_and_confidence():
    text = 'Sure: {"a": {"b": "xy"}, "n": 12.5, "l": [{"q": null}]}'
    value, start = parse_answer(text)
    assert value["n"] == 12.5
    spans = leaf_spans(text, start)
    s, e = spans[("a", "b")]
    assert text[s:e] == '"xy"'
    s, e = spans[("n",)]
    assert text[s:e] == "12.5"
    assert ("l", 0, "q") in spans
    # tokens: everything before the value, then the value in two tokens
    pre = text[: spans[("n",)][0]].encode()
    toks = [pre, b"12", b".5", text[spans[("n",)][1] :].encode()]
    assert span_confidence(text, spans[("n",)], toks, [0.1, 0.9, 0.7, 0.2]) == pytest.approx(0.8)


def test_crop_upscales_small_regions():
    page = _page()
    img = Image.new("RGB", (800, 600), "white")  # page image at twice the page size
    crop = crop_region(img, (10, 10, 50, 30), page, edge=400)
    assert max(crop.size) >= 300  # 80 px wide region upscaled (x4 cap)
    square = crop_region(img, (10, 10, 50, 30), page, edge=400, square=True)
    assert square.width == square.height


def test_regions_get_only_plausible_missing_fields_in_one_batch():
    spec = schema_from_dict(SMALL, "small")
    regions = [
        Region(label="title", bbox=(0, 0, 400, 40), score=0.9),
        Region(label="table", bbox=(0, 50, 400, 200), score=0.9),
        Region(label="figure", bbox=(0, 210, 100, 290), score=0.9),
    ]
    lines = [_line("ACME Ltd", 10, 10, 0), _line("Total 12.50", 10, 60, 1)]

    def answer(conv, schema):
        props = schema["properties"]
        return json.dumps(
            {k: ("ACME" if k == "vendor" else None) for k in props}
            | ({"total": 12.5} if "total" in props else {})
        )

    engine = ScriptedEngine(answer)
    reader = ScriptedReader(engine)
    result = reader.read(_doc([_page(regions=regions, lines=lines)]), spec)
    first_batch = engine.seen[: engine.batches[0]]
    assert engine.batches[0] == 2  # title + table, figure skipped, one batch
    title_q, table_q = (set(asked(c)["properties"]) for c in first_batch)
    # no digits in the title region: no number/date asked there; tables get numbers only
    assert title_q == {"vendor", "currency"}
    assert table_q == {"total"}
    values = {v.path: v for v in result.values}
    assert values["vendor"].value == "ACME"
    assert values["vendor"].bbox == (0, 0, 400, 40)
    assert values["vendor"].region_class == "title"
    assert values["total"].region_class == "table"
    assert values["total"].reader == "scripted" and values["total"].confidence == 0.8
    # fallback: one whole-page query for what is still missing (date, currency)
    assert len(engine.batches) == 2
    fallback = asked(engine.seen[-1])
    assert set(fallback["properties"]) == {"date", "currency"}
    assert result.calls == 2
    assert result.errors == []


def test_found_fields_are_not_asked_on_later_pages():
    spec = schema_from_dict(SMALL, "small")
    full = {"vendor": "V", "total": 3.0, "date": "2024-02-01", "currency": "EUR"}

    def answer(conv, schema):
        return json.dumps({k: full[k] for k in schema["properties"]})

    engine = ScriptedEngine(answer)
    pages = [_page(1), _page(2)]
    result = ScriptedReader(engine).read(_doc(pages), spec)
    assert len(engine.seen) == 1  # page 1 gave everything
    assert {v.path: v.value for v in result.values} == full
    assert all(v.page == 1 and v.region_class == "page" for v in result.values)


def test_reask_sends_validator_messages_then_explicit_error():
    spec = schema_from_dict(SMALL, "small")
    answers = iter(
        [
            '{"vendor": "V", "total": 3, "date": "someday", "currency": "euro"}',
            '{"vendor": "V", "total": 3, "date": "later", "currency": "EUR"}',
            '{"vendor": "V", "total": 3, "date": "never", "currency": "EUR"}',
        ]
    )
    engine = ScriptedEngine(lambda conv, schema: next(answers))
    result = ScriptedReader(engine, reask=2).read(_doc([_page()]), spec)
    assert len(engine.seen) == 3  # first answer + 2 re-asks
    feedback = engine.seen[1][-1]["content"][0]["text"]
    assert "/date" in feedback and "/currency" in feedback
    assert engine.seen[1][-2] == {
        "role": "assistant",
        "content": [
            {
                "type": "text",
                "text": '{"vendor": "V", "total": 3, "date": "someday", "currency": "euro"}',
            }
        ],
    }
    values = {v.path: v.value for v in result.values}
    assert values == {"vendor": "V", "total": 3.0, "currency": "EUR"}
    (err,) = result.errors
    assert err.path == "/date" and err.stage == "read" and err.error_type == "VlmAnswerError"
    assert '"never"' in err.message  # carries the last raw answer


def test_unparseable_answers_become_errors_for_every_field():
    spec = schema_from_dict(SMALL, "small")
    engine = ScriptedEngine(lambda conv, schema: "I cannot read this image.")
    result = ScriptedReader(engine, reask=1).read(_doc([_page()]), spec)
    assert len(engine.seen) == 2
    assert result.values == []
    assert {e.path for e in result.errors} == {"/vendor", "/total", "/date", "/currency"}
    assert all("I cannot read" in e.message for e in result.errors)


def test_request_failures_are_explicit_per_field():
    spec = schema_from_dict(SMALL, "small")
    engine = ScriptedEngine(
        lambda conv, schema: Completion(error=VlmRequestError("HTTP 503 after 4 attempts", 4, 503))
    )
    result = ScriptedReader(engine).read(_doc([_page()]), spec)
    assert result.values == []
    assert {(e.path, e.error_type) for e in result.errors} == {
        (p, "VlmRequestError") for p in ("/vendor", "/total", "/date", "/currency")
    }


def test_line_items_from_tables_concatenated_in_order():
    spec = load_schema(SCHEMAS / "invoice.schema.json")
    regions = [Region(label="table", bbox=(0, 0, 400, 300), score=0.9)]
    rows = iter(
        [
            [{"description": "A", "quantity": "2", "unit_price": 1, "amount": 2}],
            [{"description": "B", "quantity": 1, "unit_price": "1,5", "amount": 1.5}],
        ]
    )

    def answer(conv, schema):
        out = {k: None for k in schema["properties"]}
        if "line_items" in out:
            out["line_items"] = next(rows)
        return json.dumps(out)

    engine = ScriptedEngine(answer)
    result = ScriptedReader(engine).read(
        _doc([_page(1, regions), _page(2, regions)]), spec, wanted=["line_items"]
    )
    values = {v.path: v.value for v in result.values}
    assert values["line_items/0/description"] == "A"
    assert values["line_items/0/quantity"] == 2.0
    assert values["line_items/1/description"] == "B"
    assert values["line_items/1/unit_price"] == 1.5
    pages = {v.path.split("/")[1]: v.page for v in result.values}
    assert pages == {"0": 1, "1": 2}


def test_engine_stats_thread_safe_counter():
    stats = EngineStats()
    stats.add_calls(3)
    assert stats.calls == 3


def test_preferred_edge_from_image_processors():
    from types import SimpleNamespace

    from docvlm.engines.vlm.transformers_engine import _image_edge

    smolvlm = SimpleNamespace(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512})
    assert _image_edge(smolvlm) == 512
    clip = SimpleNamespace(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    assert _image_edge(clip) == 336
    qwen = SimpleNamespace(size={"shortest_edge": 3136, "longest_edge": 1003520})
    assert _image_edge(qwen) == 1001
    assert _image_edge(SimpleNamespace()) is None
