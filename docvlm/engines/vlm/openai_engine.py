"""An OpenAI-compatible Chat Completions server (vLLM, SGLang, Ollama, hosted APIs) over httpx.

- Images travel as base64 PNG data URLs.
- ``response_format`` is ``json_schema`` (strict) first; when the server answers HTTP 400 to it,
  the request is sent again with ``json_object``, then with the schema in the prompt only, and
  the first format that works is kept for the following requests.
- 429 (honouring ``Retry-After``), 5xx, connection errors, timeouts and unreadable response
  bodies are retried with exponential backoff, ``max_retries`` times; then the conversation's
  :class:`~docvlm.engines.vlm.base.Completion` carries a ``VlmRequestError``.
- Conversations run concurrently on a thread pool of ``concurrency`` workers.

The API key goes into the ``Authorization`` header only; it is never logged or stored in
messages.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import logging
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from docvlm.engines.vlm.base import (
    Completion,
    Conversation,
    EngineStats,
    VlmEngine,
    VlmRequestError,
)
from docvlm.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

#: ``response_format`` variants, tried in this order when a server rejects one with HTTP 400.
MODES = ("json_schema", "json_object", "prompt")
# Keywords kept in the schema sent as response_format (strict servers reject the others).
_WIRE_KEYS = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "format",
    "pattern", "title", "description", "minimum", "maximum", "minItems", "maxItems",
    "minLength", "maxLength", "anyOf",
}  # fmt: skip


def wire_schema(node: Any) -> Any:
    """The schema with only the keywords that structured-output servers accept."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {k: wire_schema(v) for k, v in value.items()}
            elif key in _WIRE_KEYS:
                out[key] = wire_schema(value)
        return out
    if isinstance(node, list):
        return [wire_schema(v) for v in node]
    return node


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def data_url(image: Image.Image, max_edge: int = 2048) -> str:
    """A PNG data URL of ``image``, scaled down to ``max_edge`` on its long side if bigger."""
    if max(image.size) > max_edge:
        scale = max_edge / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        )
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _Rejected(Exception):
    """HTTP 400 to a request: maybe its response_format, maybe the request itself."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OpenAIEngine(VlmEngine):
    """Chat Completions client with retries, a response_format fallback and a thread pool.

    Attributes:
        initial_backoff_s: First retry delay; doubles each retry (with jitter).
        max_backoff_s: Cap of one delay, a server's Retry-After included (``Retry-After:
            100000`` waits ``max_backoff_s``).
        request_logprobs: Ask for token log-probabilities (vLLM and OpenAI give them); when
            present they become per-field confidences.
        max_image_edge: Images are scaled down to this long edge before sending.
    """

    name = "openai"
    preferred_edge = 1024
    #: Confidence given to a server's value when no token probabilities come back: high
    #: enough that a cascade keeps it (default ``min_confidence`` 0.6), below a text-layer
    #: read (1.0).
    default_confidence = 0.8
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    request_logprobs: bool = False
    max_image_edge: int = 2048
    #: a response body larger than this is abandoned (and retried)
    max_response_bytes: int = 16 << 20

    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 4,
    ) -> None:
        super().__init__()
        import httpx

        if not base_url:
            raise ConfigError("the openai reader needs a base URL (--base-url or OPENAI_BASE_URL)")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self.timeout_s = float(timeout_s)
        self.concurrency = max(1, int(concurrency))
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._secret = api_key or None  # only to scrub it from server messages
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self._mode = 0
        self._mode_lock = threading.Lock()
        self.model = model or self._discover_model()

    def _scrub(self, text: str) -> str:
        """``text`` without the API key (servers sometimes echo it in error messages)."""
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _discover_model(self) -> str:
        """The first model the server lists (vLLM and Ollama serve one model by default)."""
        import httpx

        try:
            response = self._client.get("/models")
            response.raise_for_status()
            models = [m["id"] for m in response.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"no --model given and {self.base_url}/models could not be listed ({exc}); "
                "name the model with --model"
            ) from exc
        if not models:
            raise ConfigError(f"no --model given and {self.base_url}/models lists none")
        logger.info("openai reader: using model %r served at %s", models[0], self.base_url)
        return models[0]

    # -- requests ----------------------------------------------------------------------------

    def complete(
        self,
        conversations: list[Conversation],
        schemas: list[dict[str, Any]],
        max_new_tokens: int,
        stats: EngineStats | None = None,
    ) -> list[Completion]:
        """Answer the conversations concurrently (``concurrency`` requests in flight)."""
        stats = stats or self.stats
        jobs = list(zip(conversations, schemas, strict=True))
        if len(jobs) <= 1 or self.concurrency == 1:
            return [self._complete_one(c, s, max_new_tokens, stats) for c, s in jobs]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
            return list(
                pool.map(lambda j: self._complete_one(j[0], j[1], max_new_tokens, stats), jobs)
            )

    def _wire_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        urls: dict[int, str] = {}
        messages = []
        for message in conversation:
            parts = []
            for part in message["content"]:
                if part["type"] == "image":
                    key = id(part["image"])
                    if key not in urls:
                        urls[key] = data_url(part["image"], self.max_image_edge)
                    parts.append({"type": "image_url", "image_url": {"url": urls[key]}})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            if message["role"] == "assistant":
                text = "".join(p["text"] for p in parts if p["type"] == "text")
                messages.append({"role": "assistant", "content": text})
            else:
                messages.append({"role": message["role"], "content": parts})
        return messages

    def _body(
        self, messages: list[dict[str, Any]], schema: dict[str, Any], mode: str, max_tokens: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "extraction",
                    "schema": wire_schema(schema),
                    "strict": True,
                },
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        if self.request_logprobs:
            body["logprobs"] = True
        return body

    def _complete_one(
        self,
        conversation: Conversation,
        schema: dict[str, Any],
        max_tokens: int,
        stats: EngineStats,
    ) -> Completion:
        messages = self._wire_messages(conversation)
        with self._mode_lock:
            first = self._mode
        last_rejection = ""
        for index in range(first, len(MODES)):
            mode = MODES[index]
            try:
                payload = self._post(self._body(messages, schema, mode, max_tokens), stats)
            except _Rejected as exc:
                last_rejection = exc.message
                if index + 1 < len(MODES):
                    logger.info(
                        "server rejected response_format %s (HTTP 400: %s); trying %s",
                        mode,
                        exc.message[:200],
                        MODES[index + 1],
                    )
                continue
            except VlmRequestError as exc:
                return Completion(error=exc)
            if index != first:
                with self._mode_lock:
                    if self._mode < index:
                        logger.warning(
                            "%s does not accept response_format %s; using %s from now on",
                            self.base_url,
                            MODES[self._mode],
                            mode,
                        )
                        self._mode = index
            return self._completion(payload)
        return Completion(
            error=VlmRequestError(
                f"server rejected the request (HTTP 400): {last_rejection[:500]}", status=400
            )
        )

    @staticmethod
    def _completion(payload: dict[str, Any]) -> Completion:
        """The Completion of a 2xx body already checked by :func:`answer_text`."""
        text, choice = answer_text(payload)
        token_bytes = token_probs = None
        logprobs = (
            (choice.get("logprobs") or {}).get("content")
            if isinstance(choice.get("logprobs"), dict)
            else None
        )
        if isinstance(logprobs, list) and logprobs:
            try:
                token_bytes = [
                    bytes(t["bytes"]) if t.get("bytes") is not None else t["token"].encode()
                    for t in logprobs
                ]
                token_probs = [math.exp(float(t["logprob"])) for t in logprobs]
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                token_bytes = token_probs = None
            if token_bytes is not None and b"".join(token_bytes).decode("utf-8", "replace") != text:
                token_bytes = token_probs = None  # tokens do not spell the text: ignore them
        return Completion(
            text=text,
            token_bytes=token_bytes,
            token_probs=token_probs,
            finished=choice.get("finish_reason") != "length",
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # a server's Retry-After is honoured up to our own longest backoff
            return min(retry_after, self.max_backoff_s)
        base = min(self.initial_backoff_s * (2 ** (attempt - 1)), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)

    def _send(self, body: dict[str, Any]) -> Any:
        """POST one request under one wall-clock deadline of ``timeout_s``: the body is
        streamed and the request abandoned once the deadline passes, so a server trickling
        a byte at a time cannot hold it longer than the timeout.

        Raises:
            _Deadline: The deadline passed.
        """
        import httpx

        deadline = time.monotonic() + self.timeout_s
        with self._client.stream("POST", "/chat/completions", json=body) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > deadline:
                    raise _Deadline(
                        f"timed out: the answer was still arriving after {self.timeout_s:g} s "
                        f"({size} bytes so far)"
                    )
                if size > self.max_response_bytes:
                    raise _Deadline(f"answer larger than {self.max_response_bytes} bytes")
            if time.monotonic() > deadline:
                raise _Deadline(f"timed out after {self.timeout_s:g} s")
        # the body is decoded already: drop the headers that describe its wire form
        headers = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=response.request,
        )

    def _post(self, body: dict[str, Any], stats: EngineStats) -> dict[str, Any]:
        """POST /chat/completions with retries; the parsed JSON body of a 2xx answer.

        Raises:
            _Rejected: HTTP 400.
            VlmRequestError: Any other failure, after the retries for the transient ones.
        """
        import httpx

        attempt = 0
        while True:
            attempt += 1
            stats.add_calls()
            retry_after = None
            status: int | None = None
            try:
                response = self._send(body)
            except _Deadline as exc:
                problem = str(exc)
            except httpx.TimeoutException as exc:
                problem = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                problem = f"connection error ({type(exc).__name__}: {self._scrub(str(exc))})"
            else:
                status = response.status_code
                if status == 400:
                    raise _Rejected(self._scrub(_error_text(response)))
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}: {self._scrub(_error_text(response))[:200]}"
                    retry_after = _retry_after(response.headers.get("retry-after"))
                elif status >= 400:
                    raise VlmRequestError(
                        f"{self.base_url}/chat/completions answered HTTP {status}: "
                        f"{self._scrub(_error_text(response))[:500]}",
                        attempts=attempt,
                        status=status,
                    )
                else:
                    try:
                        payload = response.json()
                        answer_text(payload)  # the protocol's shape, or _Malformed
                        return payload
                    except ValueError:
                        problem = f"malformed response body: {self._scrub(response.text[:200])!r}"
                    except _Malformed as exc:
                        problem = f"malformed response: {exc}"
            if attempt > self.max_retries:
                raise VlmRequestError(
                    f"{self.base_url}/chat/completions failed after {attempt} attempts: {problem}",
                    attempts=attempt,
                    status=status,
                )
            delay = self._delay(attempt, retry_after)
            logger.warning(
                "VLM request %s; retry %d/%d in %.2fs", problem, attempt, self.max_retries, delay
            )
            time.sleep(delay)


class _Deadline(Exception):
    """A request ran past its one wall-clock deadline (connect + wait + body)."""


class _Malformed(ValueError):
    """A 2xx body that is JSON but not a chat completion."""


def answer_text(payload: Any) -> tuple[str, dict[str, Any]]:
    """The answer text and the choice of a chat-completions body.

    Raises:
        _Malformed: Any other shape (``choices`` missing or empty, ``message`` not an
            object, ``content`` None, an object, or parts without text).
    """
    if not isinstance(payload, dict):
        raise _Malformed(f"the body is a JSON {type(payload).__name__}, not an object")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Malformed("no 'choices' list in the body")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise _Malformed(f"choices[0] is a {type(choice).__name__}, not an object")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _Malformed(f"choices[0].message is {type(message).__name__}, not an object")
    content = message.get("content")
    if isinstance(content, list):  # content parts: accepted when every part is text
        if not all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in content
        ):
            raise _Malformed("choices[0].message.content is a list that is not all text parts")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        kind = "null" if content is None else type(content).__name__
        raise _Malformed(f"choices[0].message.content is {kind}, not text")
    return content, choice


def _error_text(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or json.dumps(err))
        return str(err)
    return json.dumps(data)
