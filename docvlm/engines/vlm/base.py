"""What every VLM engine offers: conversations in, completions with token evidence out."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from docvlm.errors import ReaderError, VlmAnswerError, VlmEngineError, VlmRequestError

__all__ = [
    "Completion",
    "Conversation",
    "EngineStats",
    "VlmAnswerError",
    "VlmEngine",
    "VlmEngineError",
    "VlmRequestError",
]

# A chat conversation in a neutral form that both engines translate:
#   [{"role": "user", "content": [{"type": "image", "image": PIL.Image},
#                                 {"type": "text", "text": "..."}]},
#    {"role": "assistant", "content": [{"type": "text", "text": "{...}"}]}, ...]
Conversation = list[dict[str, Any]]


@dataclass
class Completion:
    """One answer of a VLM.

    ``token_bytes``/``token_probs`` are per generated token (when the engine knows them): the
    bytes each token added to ``text`` and the model's probability of that token. Readers
    turn them into per-field confidences. ``error`` is set (and ``text`` empty) when no answer
    could be had; ``finished`` is False when the answer was cut at the token limit.
    """

    text: str = ""
    token_bytes: list[bytes] | None = None
    token_probs: list[float] | None = None
    error: ReaderError | None = None
    finished: bool = True


@dataclass
class EngineStats:
    """Counters an engine keeps while it works (thread-safe increments)."""

    calls: int = 0  # model invocations: generate() batches or HTTP requests, retries included
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_calls(self, n: int = 1) -> None:
        with self._lock:
            self.calls += n


class VlmEngine(ABC):
    """A runtime that answers chat conversations with JSON, optionally schema-constrained."""

    name: str = "vlm"
    #: Long edge, in pixels, that a region crop is upscaled to (never downscaled) before it
    #: is sent; small crops read better when the model sees them at its native resolution.
    preferred_edge: int = 1024
    #: Whether the engine's answers are guaranteed to parse and match the schema's types.
    constrained: bool = False
    #: Whether crops should be padded to a square (processors that centre-crop lose the rest).
    pad_to_square: bool = False
    #: Confidence of a value when the engine reports no token probabilities for it.
    default_confidence: float = 0.5

    def __init__(self) -> None:
        self.stats = EngineStats()

    @abstractmethod
    def complete(
        self,
        conversations: list[Conversation],
        schemas: list[dict[str, Any]],
        max_new_tokens: int,
        stats: EngineStats | None = None,
    ) -> list[Completion]:
        """Answer each conversation (last turn is the user's) with JSON for its schema.

        Args:
            conversations: The chats to answer, in :data:`Conversation` form.
            schemas: One JSON Schema per conversation (the answer's shape).
            max_new_tokens: Token budget of one answer.
            stats: Where to count model calls (the engine's own counters when None).

        Never raises for one failed conversation: its ``Completion.error`` says why.
        """
