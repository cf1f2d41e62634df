"""JSON-Schema-constrained decoding for ``transformers.generate`` with llguidance.

llguidance compiles a JSON Schema into a grammar and, at every decoding step, gives the set
of tokens that keep the output a valid prefix of a schema-conforming JSON document; it works
with any fast Hugging Face tokenizer (byte-level BPE, SentencePiece, one trained on the spot).
:class:`ConstrainedJsonProcessor` is a logits processor that applies those masks row by row in
a batched ``generate`` (image inputs included: it only sees token ids and logits).

Two things llguidance cannot know are handled here:

- **The token budget.** A schema-valid answer can be longer than ``max_new_tokens`` (a string
  that never closes, a number with endless digits). When a row's remaining budget reaches the
  length of the shortest way to finish (every remaining value ``null``, every open string,
  array and object closed), the processor narrows the grammar's mask to closing tokens, so the
  answer always completes. Answer schemas make every leaf nullable for this reason.
- **Confidence.** For each generated token it records the model's probability of that token
  under the unconstrained (pre-mask) distribution; readers average them per field.

This module imports torch lazily; llguidance and numpy are light.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from docvlm.engines.vlm.base import VlmEngineError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Compact JSON, no free whitespace: fewer tokens, and no way to loop on blanks.
JSON_COMPILE_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    # Ignore keywords llguidance does not implement (e.g. "examples" hints) instead of failing;
    # the answer is validated with jsonschema afterwards anyway.
    "lenient": True,
}
# Characters that finish an answer quickly, by preference: inside a string close it; outside
# close objects/arrays, move to the next key, or write null.
_CLOSE_IN_STRING = ('"',)
_CLOSE_OUTSIDE = ("}", "]", ",", "n", "u", "l")
_RESERVE_SLACK = 32  # tokens for a value in progress (a date, a short pattern, a UTF-8 tail)


@functools.lru_cache(maxsize=256)
def compile_grammar(schema_json: str) -> str:
    """llguidance grammar for a JSON Schema given as a JSON string (cached)."""
    import llguidance

    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        schema_json, defaults=JSON_COMPILE_OPTIONS
    )
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise VlmEngineError(f"JSON Schema cannot be used for constrained decoding: {messages[0]}")
    for warning in messages:
        logger.debug("grammar warning: %s", warning)
    return grammar


def skeleton_reserve(schema: dict[str, Any]) -> int:
    """Upper bound, in tokens, of the shortest completion of any prefix of an answer.

    The skeleton is the answer with every leaf ``null`` and one item per array (an answer cut
    inside an array item must still close that item); one token per byte is the worst case
    of a byte-level tokenizer.
    """

    def skel(node: dict[str, Any]) -> Any:
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "object" in types and node.get("properties"):
            return {k: skel(v) for k, v in node["properties"].items()}
        if "array" in types and isinstance(node.get("items"), dict):
            return [skel(node["items"])]
        return None

    text = json.dumps(skel(schema), separators=(", ", ": "), ensure_ascii=False)
    return len(text.encode("utf-8")) + _RESERVE_SLACK


class GrammarTokenizer:
    """An llguidance tokenizer for a Hugging Face tokenizer, plus the closing-token ids."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int, eos_ids: list[int]) -> None:
        import llguidance.hf

        try:
            self.ll = llguidance.hf.from_tokenizer(
                hf_tokenizer, n_vocab=vocab_size, eos_token=list(eos_ids)
            )
        except ValueError as exc:
            raise VlmEngineError(
                f"constrained decoding needs a fast (tokenizers-based) tokenizer: {exc}"
            ) from exc
        self.vocab_size = vocab_size
        self.eos_ids = set(eos_ids)
        self.close_ids: dict[str, int] = {}
        for ch in set(_CLOSE_IN_STRING + _CLOSE_OUTSIDE):
            ids = self.ll.tokenize_str(ch)
            if len(ids) == 1 and self.ll.decode_bytes(ids) == ch.encode():
                self.close_ids[ch] = ids[0]
        self._token_bytes: dict[int, bytes] = {}

    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (special tokens give b'')."""
        b = self._token_bytes.get(token)
        if b is None:
            b = b"" if token in self.eos_ids else self.ll.decode_bytes([token])
            self._token_bytes[token] = b
        return b


@functools.lru_cache(maxsize=1)
def _executor() -> Any:
    import llguidance

    return llguidance.LLExecutor()


class ConstrainedJsonProcessor:
    """Logits processor: one llguidance matcher per batch row, budget-aware, with token probs.

    Args:
        tokenizer: The grammar tokenizer of the model.
        schemas: One JSON Schema per batch row.
        max_new_tokens: The ``generate`` budget (closing starts in time to respect it).
    """

    def __init__(
        self, tokenizer: GrammarTokenizer, schemas: list[dict[str, Any]], max_new_tokens: int
    ) -> None:
        import llguidance

        self.tok = tokenizer
        self.max_new_tokens = max_new_tokens
        self.matchers = []
        for schema in schemas:
            grammar = compile_grammar(json.dumps(schema, sort_keys=False))
            matcher = llguidance.LLMatcher(tokenizer.ll, grammar, log_level=0)
            if matcher.is_error():
                raise VlmEngineError(f"grammar error: {matcher.get_error()}")
            self.matchers.append(matcher)
        self.reserve = [skeleton_reserve(s) for s in schemas]
        n = len(schemas)
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.probs: list[list[float]] = [[] for _ in range(n)]
        self.done = [False] * n
        self._in_string = [False] * n
        self._escape = [False] * n
        self._prompt_len: int | None = None
        self._prev_logprobs: torch.Tensor | None = None
        self._step = 0
        self._bitmask = np.full((n, (tokenizer.ll.vocab_size + 31) // 32), -1, dtype=np.int32)

    @staticmethod
    def budget_for(schemas: list[dict[str, Any]], max_new_tokens: int) -> int:
        """The ``generate`` budget: ``max_new_tokens`` for the answer's content, plus the
        reserve that closing it may take (so the content budget is never cut short)."""
        return max_new_tokens + max((skeleton_reserve(s) for s in schemas), default=0)

    def _track(self, row: int, token: int) -> None:
        for byte in self.tok.token_bytes(token):
            if self._escape[row]:
                self._escape[row] = False
            elif byte == 0x5C and self._in_string[row]:  # backslash
                self._escape[row] = True
            elif byte == 0x22:  # quote
                self._in_string[row] = not self._in_string[row]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        if self._prompt_len is None:
            self._prompt_len = int(input_ids.shape[1])
        else:
            last_ids = input_ids[:, -1]
            last = last_ids.tolist()
            prev = self._prev_logprobs
            # one gather (one device sync) for the whole batch
            chosen = (
                prev.gather(1, last_ids.view(-1, 1).to(prev.device)).exp().view(-1).tolist()
                if prev is not None
                else [0.0] * len(last)
            )
            for row, token in enumerate(last):
                if self.done[row]:
                    continue
                self.tokens[row].append(token)
                self.probs[row].append(float(chosen[row]))
                if token in self.tok.eos_ids:
                    self.done[row] = True
                    continue
                if not self.matchers[row].consume_token(token):
                    logger.warning("constrained decoding: row %d left the grammar", row)
                    self.done[row] = True
                    continue
                self._track(row, token)
        # probabilities of the unconstrained model, for confidences
        self._prev_logprobs = torch.log_softmax(scores.float(), dim=-1)

        active = [(m, i) for i, m in enumerate(self.matchers) if not self.done[i]]
        if active:
            from llguidance.numpy import fill_next_token_bitmask_par

            fill_next_token_bitmask_par(_executor(), active, self._bitmask)
        allowed = np.unpackbits(self._bitmask.view(np.uint8), axis=1, bitorder="little")
        allowed = allowed[:, : scores.shape[-1]].astype(bool)
        if allowed.shape[1] < scores.shape[-1]:
            allowed = np.pad(allowed, ((0, 0), (0, scores.shape[-1] - allowed.shape[1])))
        remaining = self.max_new_tokens - self._step
        for row in range(len(self.matchers)):
            if self.done[row]:
                allowed[row, :] = True  # generate pads finished rows itself
                continue
            if not allowed[row].any():  # matcher error: end the row
                for eos in self.tok.eos_ids:
                    if eos < allowed.shape[1]:
                        allowed[row, eos] = True
                continue
            if remaining <= self.reserve[row]:
                prefs = _CLOSE_IN_STRING if self._in_string[row] else _CLOSE_OUTSIDE
                for ch in prefs:
                    tid = self.tok.close_ids.get(ch)
                    if tid is not None and tid < allowed.shape[1] and allowed[row, tid]:
                        allowed[row, :] = False
                        allowed[row, tid] = True
                        break
        mask = torch.from_numpy(allowed).to(scores.device)
        self._step += 1
        return scores.masked_fill(~mask, float("-inf"))

    def finish(self, sequences: torch.Tensor) -> list[tuple[list[int], list[float], bool]]:
        """Per row: generated token ids (up to EOS), their probabilities, and whether the
        grammar reached an accepting state (the answer is complete)."""
        prompt_len = self._prompt_len or 0
        out = []
        for row in range(len(self.matchers)):
            tokens = list(self.tokens[row])
            probs = list(self.probs[row])
            if not self.done[row]:
                # the token chosen at the last step was never fed back to the processor
                gen = sequences[row, prompt_len:].tolist()
                if len(gen) > len(tokens):
                    token = gen[len(tokens)]
                    tokens.append(token)
                    prev = self._prev_logprobs
                    probs.append(float(prev[row, token].exp()) if prev is not None else 0.0)
                    if token not in self.tok.eos_ids:
                        self.matchers[row].consume_token(token)
            complete = self.matchers[row].is_accepting() and not self.matchers[row].is_error()
            while tokens and tokens[-1] in self.tok.eos_ids:
                tokens.pop()
                probs.pop()
            out.append((tokens, probs, complete))
        return out
