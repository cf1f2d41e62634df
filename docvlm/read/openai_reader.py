"""Reader ``openai``: a VLM behind an OpenAI-compatible Chat Completions server.

Works with vLLM, SGLang, Ollama and hosted APIs. Configuration, option first, then environment:

- base URL: ``options.base_url`` / ``OPENAI_BASE_URL`` (including ``/v1``, e.g.
  ``http://localhost:8000/v1``);
- model: ``options.model``; when absent, the first model ``GET /models`` lists;
- API key: ``options.api_key`` / ``OPENAI_API_KEY`` (optional for local servers). It is only
  ever sent in the ``Authorization`` header.

Per request: ``options.timeout_s``; ``options.max_retries`` retries with exponential backoff on
429 (Retry-After honoured), 5xx, connection errors and timeouts; ``options.concurrency``
requests in flight. A request that still fails becomes one ``VlmRequestError`` item per field
it asked for (stage "read", path = the field's JSON pointer).

Confidence of a value: :data:`OPENAI_CONFIDENCE` (0.8), or the mean token probability when the
server returns logprobs (``OpenAIEngine.request_logprobs = True``).
"""

from __future__ import annotations

import os

from docvlm.engines.vlm.base import VlmEngine
from docvlm.errors import ConfigError
from docvlm.read.vlm_common import VlmReader

#: Confidence given to a server's value when no token probabilities come back: high enough
#: that a cascade keeps it (default ``min_confidence`` 0.6), below a text-layer read (1.0).
OPENAI_CONFIDENCE = 0.8


class OpenAIReader(VlmReader):
    """A VLM served over the OpenAI Chat Completions protocol (see module docs)."""

    name = "openai"
    default_confidence = OPENAI_CONFIDENCE

    def _make_engine(self) -> VlmEngine:
        from docvlm.engines.vlm.openai_engine import OpenAIEngine

        options = self.options
        base_url = options.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError(
                "reader 'openai' needs a server: --base-url URL (e.g. http://localhost:8000/v1) "
                "or OPENAI_BASE_URL"
            )
        return OpenAIEngine(
            base_url=base_url,
            model=options.model,
            api_key=options.api_key or os.environ.get("OPENAI_API_KEY"),
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
            concurrency=options.concurrency,
        )

    def close(self) -> None:
        """Close the HTTP connections (the reader can be initialised again afterwards)."""
        engine = self.engine
        if engine is not None and hasattr(engine, "close"):
            engine.close()
        self.engine = None
        self._ready = False
