"""The ``openai`` reader against a real chat-completions HTTP server on localhost, with faults."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from PIL import Image
from vlm_server import ChatServer, asked_schema, running_server

from docvlm.datamodel import Line, Page, ReaderOptions, Region, Word
from docvlm.engines.vlm.openai_engine import OpenAIEngine
from docvlm.errors import ConfigError
from docvlm.read import get_reader
from docvlm.read.base import DocumentContent
from docvlm.schema import schema_from_dict

OPENAI_CONFIDENCE = OpenAIEngine.default_confidence

KEY = "sk-test-DO-NOT-LOG-4242"
SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string", "title": "Vendor"},
        "total": {"type": "number", "title": "Total"},
        "date": {"type": "string", "format": "date", "title": "Date"},
    },
}
TRUTH = {"vendor": "ACME Ltd", "total": "1,234.50", "date": "31.01.2024"}  # server's raw answers
EXPECTED = {"vendor": "ACME Ltd", "total": 1234.5, "date": "2024-01-31"}


@pytest.fixture()
def server():
    with running_server(TRUTH) as srv:
        yield srv


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(OpenAIEngine, "initial_backoff_s", 0.01)
    monkeypatch.setattr(OpenAIEngine, "max_backoff_s", 0.05)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _doc(n_regions: int = 0) -> DocumentContent:
    img = Image.new("RGB", (400, 300), "white")
    regions, lines = [], []
    for i in range(n_regions):
        y = 10 + i * 30
        regions.append(Region(label="text", bbox=(0, y, 400, y + 25), score=0.9))
        box = (5, y + 5, 200, y + 20)
        lines.append(
            Line(
                text=f"line {i} 12.50",
                bbox=box,
                words=[Word(text="x", bbox=box)],
                page=1,
                region_index=i,
            )
        )
    page = Page(number=1, width=400, height=300, dpi=72, regions=regions, lines=lines)
    return DocumentContent(doc_id="doc", source="doc.png", pages=[page], image=lambda n: img)


def _reader(server: ChatServer, **kw: Any):
    options = dict(
        kind="openai",
        base_url=server.url,
        model="tiny-vlm",
        api_key=KEY,
        timeout_s=2.0,
        max_retries=2,
        concurrency=4,
    )
    options.update(kw)
    return get_reader(ReaderOptions(**options))


SPEC = schema_from_dict(SCHEMA, "small")


def test_happy_path_json_schema_and_key_only_in_header(server, caplog):
    caplog.set_level(logging.DEBUG)
    reader = _reader(server)
    result = reader.read(_doc(), SPEC)
    assert {v.path: v.value for v in result.values} == EXPECTED
    assert result.errors == [] and result.calls == 1
    (req,) = server.chat_requests()
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    body = req["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["model"] == "tiny-vlm" and body["temperature"] == 0
    image_part = body["messages"][0]["content"][0]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    for v in result.values:
        assert v.reader == "openai" and v.confidence == OPENAI_CONFIDENCE
        assert v.region_class == "page" and v.page == 1
    assert result.values[1].raw == "1,234.50"  # the model's own text for the field
    assert KEY not in caplog.text
    assert KEY not in repr(reader.options) and KEY not in str(reader.options)
    assert KEY not in json.dumps(body)


def test_env_configuration_and_model_discovery(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    result = get_reader(ReaderOptions(kind="openai")).read(_doc(), SPEC)
    assert {v.path: v.value for v in result.values} == EXPECTED
    assert server.requests[0]["path"] == "/v1/models"
    chat = server.chat_requests()[0]
    assert chat["body"]["model"] == "tiny-vlm"
    assert chat["headers"]["Authorization"] == f"Bearer {KEY}"


def test_no_base_url_is_a_config_error():
    with pytest.raises(ConfigError, match="base-url"):
        get_reader(ReaderOptions(kind="openai", model="m")).ensure_ready()


def test_retries_on_500_and_429_then_success(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.script = ["500", "429"]
    result = _reader(server).read(_doc(), SPEC)
    assert len(server.chat_requests()) == 3
    assert result.calls == 3
    assert {v.path: v.value for v in result.values} == EXPECTED
    assert result.errors == []
    assert "retry 1/2" in caplog.text and KEY not in caplog.text


def test_retries_exhausted_give_explicit_field_errors(server):
    server.default = "500"
    result = _reader(server, max_retries=2).read(_doc(), SPEC)
    assert len(server.chat_requests()) == 3  # 1 + 2 retries
    assert result.values == []
    assert sorted((e.path, e.stage, e.error_type) for e in result.errors) == [
        ("/date", "read", "VlmRequestError"),
        ("/total", "read", "VlmRequestError"),
        ("/vendor", "read", "VlmRequestError"),
    ]
    assert "after 3 attempts" in result.errors[0].message


def test_timeouts_are_retried(server):
    server.script = ["slow"]
    server.slow_s = 1.0
    t0 = time.perf_counter()
    result = _reader(server, timeout_s=0.3).read(_doc(), SPEC)
    assert time.perf_counter() - t0 < 1.0  # did not wait for the slow answer
    assert len(server.chat_requests()) == 2
    assert {v.path: v.value for v in result.values} == EXPECTED


def test_always_slow_server_times_out_explicitly(server):
    server.default = "slow"
    server.slow_s = 0.5
    result = _reader(server, timeout_s=0.2, max_retries=1).read(_doc(), SPEC)
    assert len(server.chat_requests()) == 2
    assert result.values == []
    assert {e.path for e in result.errors} == {"/vendor", "/total", "/date"}
    assert all("timed out" in e.message for e in result.errors)


def test_malformed_body_is_retried(server):
    server.script = ["malformed"]
    result = _reader(server).read(_doc(), SPEC)
    assert len(server.chat_requests()) == 2
    assert {v.path: v.value for v in result.values} == EXPECTED


def test_prose_answer_is_reasked_with_validator_message(server):
    server.script = ["prose"]
    result = _reader(server, reask=2).read(_doc(), SPEC)
    requests = server.chat_requests()
    assert len(requests) == 2
    messages = requests[1]["body"]["messages"]
    assert messages[1] == {"role": "assistant", "content": "Sorry, I cannot help with that image."}
    assert "not a JSON object" in messages[2]["content"][0]["text"]
    assert {v.path: v.value for v in result.values} == EXPECTED


def test_json_schema_rejected_falls_back_to_json_object(server, caplog):
    caplog.set_level(logging.INFO)
    server.reject_json_schema = True
    reader = _reader(server, concurrency=1)
    first = reader.read(_doc(), SPEC)
    second = reader.read(_doc(), SPEC)
    formats = [(r["body"].get("response_format") or {}).get("type") for r in server.chat_requests()]
    # first request 400, then json_object; the next document goes straight to json_object
    assert formats == ["json_schema", "json_object", "json_object"]
    assert {v.path: v.value for v in first.values} == EXPECTED
    assert {v.path: v.value for v in second.values} == EXPECTED
    assert first.calls == 2 and second.calls == 1
    # the prompt carries the schema when the server does not enforce it
    text = server.chat_requests()[1]["body"]["messages"][0]["content"][1]["text"]
    assert '"vendor"' in text.rsplit("JSON Schema:", 1)[1]


def test_bounded_concurrency(server):
    server.delay_s = 0.2
    t0 = time.perf_counter()
    result = _reader(server, concurrency=3).read(_doc(n_regions=6), SPEC)
    elapsed = time.perf_counter() - t0
    assert len(server.chat_requests()) == 6
    assert 2 <= server.max_inflight <= 3
    assert elapsed < 6 * 0.2
    assert {v.path for v in result.values} == set(EXPECTED)


def test_mixed_faults_lose_nothing(server):
    """Every asked field of every region ends as a value or as an explicit error."""
    server.script = ["500", "500", "500", "429", "malformed", "prose", "prose", "prose"]
    reader = _reader(server, concurrency=1, max_retries=2, reask=1)
    result = reader.read(_doc(n_regions=4), SPEC)
    requests = server.chat_requests()
    assert result.calls == len(requests)
    asked = set()
    for r in requests:
        asked |= set(asked_schema(r["body"])["properties"])
    covered = {v.path for v in result.values} | {e.path.lstrip("/") for e in result.errors}
    assert asked <= covered
    assert {e.error_type for e in result.errors} <= {"VlmRequestError", "VlmAnswerError"}
    assert any(e.error_type == "VlmRequestError" for e in result.errors)
    assert {v.path: v.value for v in result.values} == EXPECTED  # other regions answered


def test_logprobs_become_confidences(server, monkeypatch):
    monkeypatch.setattr(OpenAIEngine, "request_logprobs", True)
    server.truth = {"vendor": "ACME", "total": 12, "date": "2024-01-31"}
    result = _reader(server).read(_doc(), SPEC)
    assert server.chat_requests()[0]["body"]["logprobs"] is True
    conf = {v.path: v.confidence for v in result.values}
    assert conf["vendor"] == pytest.approx(0.9)  # '"ACME"': letters and quotes
    assert conf["total"] == pytest.approx(0.5)  # '12': digits only
    assert 0.5 < conf["date"] < 0.9


def test_key_echoed_by_the_server_is_scrubbed(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.default = "echo-key"
    result = _reader(server, max_retries=1).read(_doc(), SPEC)
    assert result.errors and all(KEY not in e.message for e in result.errors)
    assert all("***" in e.message for e in result.errors)
    assert KEY not in caplog.text
