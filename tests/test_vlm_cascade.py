"""The ``cascade`` reader: the OCR reader first, the VLM only for what it left."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from vlm_server import asked_schema, running_server

from docvlm.datamodel import FieldValue, Line, Page, ReaderOptions, Region, Word
from docvlm.engines.vlm.openai_engine import OpenAIEngine
from docvlm.errors import ConfigError
from docvlm.read import get_reader
from docvlm.read.base import DocumentContent
from docvlm.read.cascade import CascadeReader, reader_counts, vlm_kind
from docvlm.schema import load_schema, schema_from_dict

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
TRUTH = {
    "invoice_number": "WRONG-IF-ASKED",
    "issue_date": "2024-01-31",
    "due_date": "2024-02-29",
    "seller.name": "WRONG-IF-ASKED",
    "seller.address": "Hauptstr. 1, Berlin",
    "buyer.name": "Kunde AG",
    "buyer.address": "Weg 2, Hamburg",
    "currency": "USD",
    "subtotal": 1037.44,
    "tax": 197.12,
    "total": 9999,
    "line_items": [
        {"description": "Widget", "quantity": 2, "unit_price": 518.72, "amount": 1037.44}
    ],
}


def _line(text: str, x: float, y: float, region: int) -> Line:
    box = (x, y, x + 7 * len(text), y + 14)
    words = [Word(text=t, bbox=box) for t in text.split()]
    return Line(text=text, bbox=box, words=words, page=1, region_index=region)


def _doc() -> DocumentContent:
    lines = [
        _line("ACME GmbH", 40, 30, 0),
        _line("Invoice No: INV-2024-0012", 40, 80, 0),
        _line("Total: 1,234.56 EUR", 40, 400, 1),
    ]
    page = Page(
        number=1, width=600, height=800, dpi=72, has_text_layer=True, lines=lines,
        regions=[
            Region(label="text", bbox=(30, 20, 400, 120), score=0.9),
            Region(label="text", bbox=(30, 380, 400, 430), score=0.9),
        ],
    )  # fmt: skip
    img = Image.new("RGB", (600, 800), "white")
    return DocumentContent(doc_id="c1", source="c1.pdf", pages=[page], image=lambda n: img)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setattr(OpenAIEngine, "initial_backoff_s", 0.01)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _leaves(schema: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, node in schema["properties"].items():
        if node.get("type") == "object":
            out |= _leaves(node, f"{prefix}{key}.")
        else:
            out.add(prefix + key)
    return out


def test_vlm_asked_only_for_what_ocr_left():
    spec = load_schema(SCHEMAS / "invoice.schema.json")
    ocr = get_reader(ReaderOptions(kind="learned")).read(_doc(), spec)  # the first reader
    ocr_paths = {v.path for v in ocr.values}
    assert {"invoice_number", "total"} <= ocr_paths  # the premise of this test

    with running_server(TRUTH) as server:
        options = ReaderOptions(kind="cascade", base_url=server.url, model="tiny-vlm")
        result = get_reader(options).read(_doc(), spec)
        requests = server.chat_requests()
    asked = set()
    for r in requests:
        asked |= _leaves(asked_schema(r["body"]))
    routed = CascadeReader(options).route(spec, ocr.values, None)
    assert asked == set(routed)
    assert not asked & {"invoice_number", "total", "currency"}
    assert {"issue_date", "due_date", "line_items"} <= asked
    assert result.calls == len(requests) > 0

    values = {v.path: v for v in result.values}
    assert values["invoice_number"].value == "INV-2024-0012"
    assert values["invoice_number"].reader == "learned"
    assert values["issue_date"].value == "2024-01-31"
    assert values["issue_date"].reader == "openai"
    assert values["line_items/0/description"].value == "Widget"
    assert all(v.value != "WRONG-IF-ASKED" for v in result.values)
    counts = reader_counts(result.values)
    assert counts["learned"] >= 3 and counts["openai"] >= 5


def test_no_vlm_call_when_ocr_reads_everything():
    spec = schema_from_dict(
        {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string", "title": "Invoice number"},
                "total": {"type": "number", "title": "Total"},
            },
        },
        "mini",
    )
    with running_server(TRUTH) as server:
        reader = get_reader(ReaderOptions(kind="cascade", base_url=server.url, model="m"))
        result = reader.read(_doc(), spec)
        assert server.requests == []
    assert reader.vlm is None  # never even built
    assert result.calls == 0
    assert {v.reader for v in result.values} == {"learned"}


def test_route_low_confidence_invalid_and_arrays():
    spec = load_schema(SCHEMAS / "invoice.schema.json")
    reader = CascadeReader(ReaderOptions(kind="cascade", model="x", min_confidence=0.6))

    def fv(path, value, conf=0.9):
        return FieldValue(path=path, value=value, confidence=conf)

    values = [
        fv("invoice_number", "A-1"),
        fv("issue_date", "2024-01-31", 0.3),  # low confidence
        fv("due_date", "31.01.2024"),  # not an ISO date
        fv("currency", "euro"),  # fails ^[A-Z]{3}$
        fv("total", "12,50"),  # not a number
        fv("subtotal", 10.0),
        fv("line_items/0/description", "A"),
        fv("line_items/0/amount", "x"),  # invalid item
    ]
    routed = reader.route(spec, values, None)
    assert "invoice_number" not in routed and "subtotal" not in routed
    assert routed["issue_date"].startswith("confidence")
    for path in ("due_date", "currency", "total"):
        assert routed[path].startswith("invalid"), path
    assert routed["line_items"].startswith("invalid item")
    assert routed["tax"] == "missing"
    # ``wanted`` limits the routing
    assert set(reader.route(spec, values, ["total", "tax"])) == {"total", "tax"}


def test_vlm_kind_selection(monkeypatch):
    assert vlm_kind(ReaderOptions(kind="cascade", base_url="http://h/v1", model="m")) == "openai"
    assert vlm_kind(ReaderOptions(kind="cascade", model="/models/smolvlm")) == "transformers"
    with pytest.raises(ConfigError, match="--model"):
        vlm_kind(ReaderOptions(kind="cascade"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://h/v1")
    assert vlm_kind(ReaderOptions(kind="cascade")) == "openai"
