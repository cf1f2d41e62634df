"""A chat-completions server on localhost for the ``openai`` and ``cascade`` reader tests.

It speaks enough of the OpenAI protocol (``GET /v1/models``, ``POST /v1/chat/completions``),
answers from a truth table for exactly the fields each request asks (read from the
``json_schema`` response format, or from the prompt's "JSON Schema:" line), records every
request, and injects faults from a script: ``"500"``, ``"429"`` (Retry-After: 0), ``"slow"``,
``"malformed"`` (a broken body), ``"prose"`` (an answer that is not JSON), ``"429-forever"``
(Retry-After: 100000), ``"trickle"`` (a valid answer sent one byte every ``trickle_s``),
``"long"`` (every string value ``long_n`` characters long) and the wrong shapes of a 2xx body
``"no-choices"``, ``"empty-choices"``, ``"message-string"``, ``"content-object"``,
``"content-list"`` (parts without text), ``"content-null"``, ``"body-list"``;
``reject_json_schema`` answers 400 to ``response_format: json_schema``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ChatServer(ThreadingHTTPServer):
    """Speaks enough of the chat-completions protocol; faults come from ``script``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.script: list[str] = []  # behaviours for the next chat requests, then "ok"
        self.default = "ok"
        self.reject_json_schema = False
        self.slow_s = 1.0
        self.trickle_s = 0.05
        self.long_n = 5000
        self.delay_s = 0.0
        self.inflight = 0
        self.max_inflight = 0
        self.truth: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]


def asked_schema(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    first_user = next(m for m in body["messages"] if m["role"] == "user")
    text = next(p["text"] for p in first_user["content"] if p["type"] == "text")
    return json.loads(text.rsplit("JSON Schema:\n", 1)[1])


def _answer(schema: dict[str, Any], truth: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, node in schema["properties"].items():
        if node.get("type") == "object":
            out[key] = _answer(node, truth, f"{prefix}{key}.")
        else:
            out[key] = truth.get(prefix + key)
    return out


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append({"path": self.path, "headers": dict(self.headers)})
        if self.path.endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "tiny-vlm", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        try:
            self._chat(body)
        finally:
            with srv.lock:
                srv.inflight -= 1

    def _chat(self, body: dict[str, Any]) -> None:
        srv = self.server
        if srv.delay_s:
            time.sleep(srv.delay_s)
        fmt = (body.get("response_format") or {}).get("type")
        if srv.reject_json_schema and fmt == "json_schema":
            self._send(400, {"error": {"message": "response_format json_schema is unsupported"}})
            return
        behaviour = srv.next_behaviour()
        if behaviour == "500":
            self._send(500, {"error": {"message": "internal error"}})
        elif behaviour == "echo-key":  # a careless server quoting the credentials back
            auth = self.headers.get("Authorization", "")
            self._send(503, {"error": {"message": f"bad upstream for {auth}"}})
        elif behaviour == "429":
            self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
        elif behaviour == "slow":
            time.sleep(srv.slow_s)
            self._reply(body)
        elif behaviour == "malformed":
            self._send(200, b'{"choices": [{"message": ')
        elif behaviour == "prose":
            self._reply(body, content="Sorry, I cannot help with that image.")
        elif behaviour == "429-forever":
            self._send(429, {"error": {"message": "come back later"}}, {"Retry-After": "100000"})
        elif behaviour == "trickle":
            self._trickle(body)
        elif behaviour == "long":
            answer = _answer(asked_schema(body), self.server.truth)
            self._reply(body, content=json.dumps(_lengthen(answer, self.server.long_n)))
        elif behaviour in _WRONG_SHAPES:
            self._send(200, _WRONG_SHAPES[behaviour])
        else:
            self._reply(body)

    def _trickle(self, body: dict[str, Any]) -> None:
        content = json.dumps(_answer(asked_schema(body), self.server.truth))
        data = json.dumps(_completion(body, {"role": "assistant", "content": content})).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(self.server.trickle_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reply(self, body: dict[str, Any], content: str | None = None) -> None:
        if content is None:
            content = json.dumps(_answer(asked_schema(body), self.server.truth))
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if body.get("logprobs"):
            # one "token" per character: probability 0.5 for digits, 0.9 for the rest
            choice["logprobs"] = {
                "content": [
                    {
                        "token": ch,
                        "bytes": list(ch.encode()),
                        "logprob": math.log(0.5 if ch.isdigit() else 0.9),
                    }
                    for ch in content
                ]
            }
        self._send(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [choice],
            },
        )


def _completion(body: dict[str, Any], message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


def _lengthen(answer: Any, n: int) -> Any:
    if isinstance(answer, dict):
        return {k: _lengthen(v, n) for k, v in answer.items()}
    if isinstance(answer, str):
        return (answer + " ") * (n // (len(answer) + 1) + 1)
    return answer


_WRONG_SHAPES: dict[str, Any] = {
    "no-choices": {"id": "x", "object": "chat.completion", "model": "tiny-vlm"},
    "empty-choices": {"id": "x", "choices": []},
    "message-string": {"id": "x", "choices": [{"index": 0, "message": "{}"}]},
    "content-object": {"choices": [{"message": {"role": "assistant", "content": {"a": 1}}}]},
    "content-list": {"choices": [{"message": {"role": "assistant", "content": [{"x": 1}]}}]},
    "content-null": {"choices": [{"message": {"role": "assistant", "content": None}}]},
    "body-list": [{"choices": []}],
}


@contextmanager
def running_server(truth: dict[str, Any]) -> Iterator[ChatServer]:
    """A started :class:`ChatServer` answering from ``truth`` (field path -> raw value)."""
    srv = ChatServer()
    srv.truth = dict(truth)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
