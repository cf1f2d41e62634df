"""Vision-language model engines: chat conversations with images in, JSON answers out.

- ``transformers_engine``: a local image-text-to-text checkpoint, JSON-Schema-constrained
  decoding with llguidance, batched ``generate``.
- ``openai_engine``: an OpenAI-compatible Chat Completions server over httpx.

Nothing heavy is imported here; each engine imports torch/transformers/httpx when it loads.
"""

from docvlm.engines.vlm.base import (
    Completion,
    Conversation,
    VlmAnswerError,
    VlmEngine,
    VlmEngineError,
    VlmRequestError,
)

__all__ = [
    "Completion",
    "Conversation",
    "VlmAnswerError",
    "VlmEngine",
    "VlmEngineError",
    "VlmRequestError",
]
