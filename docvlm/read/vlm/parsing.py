"""Answers: find the JSON in a model's text, coerce it to the asked types, check it, and
measure the confidence of each value from token probabilities."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from docvlm.schema import field_keys, schema_node

if TYPE_CHECKING:
    from docvlm.read.vlm.answer import Query
    from docvlm.schema import FieldSpec


def _json_start(text: str) -> int:
    """Offset of the answer's JSON object (models sometimes wrap it in prose or fences)."""
    i = text.find("{")
    return 0 if i < 0 else i


def parse_answer(text: str) -> tuple[Any, int]:
    """The first JSON value in ``text`` and its offset.

    Raises:
        ValueError: No JSON object in the text.
    """
    start = _json_start(text)
    value, _ = json.JSONDecoder().raw_decode(text, start)
    return value, start


def leaf_spans(text: str, start: int = 0) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Character span of every leaf value of the JSON document at ``text[start:]``,
    keyed by its path (object keys and array indices)."""
    decoder = json.JSONDecoder()
    spans: dict[tuple[Any, ...], tuple[int, int]] = {}

    def ws(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, path: tuple[Any, ...]) -> int:
        i = ws(i)
        ch = text[i]
        if ch == "{":
            i = ws(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key, i = decoder.raw_decode(text, ws(i))
                i = ws(i) + 1  # ':'
                i = ws(value(i, (*path, key)))
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1  # '}'
        if ch == "[":
            i = ws(i + 1)
            if text[i] == "]":
                return i + 1
            n = 0
            while True:
                i = ws(value(i, (*path, n)))
                n += 1
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1  # ']'
        _, end = decoder.raw_decode(text, i)
        spans[path] = (i, end)
        return end

    try:
        value(start, ())
    except (ValueError, IndexError):
        pass
    return spans


def span_confidence(
    text: str, span: tuple[int, int], token_bytes: list[bytes], token_probs: list[float]
) -> float:
    """Mean probability of the tokens that overlap ``text[span[0]:span[1]]``."""
    b0 = len(text[: span[0]].encode("utf-8"))
    b1 = len(text[: span[1]].encode("utf-8"))
    pos, probs = 0, []
    for piece, prob in zip(token_bytes, token_probs, strict=False):
        end = pos + len(piece)
        if end > b0 and pos < b1 and piece:
            probs.append(prob)
        pos = end
        if pos >= b1:
            break
    return float(sum(probs) / len(probs)) if probs else 0.0


def get_path(data: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def coerce_value(spec: FieldSpec, value: Any) -> Any:
    """Bring a model's value to the field's type (ISO dates, plain numbers); None for blanks.

    Values that cannot be brought are returned unchanged so the validator reports them.
    """
    from docvlm.normalize import coerce

    return coerce(spec, value)


def raw_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def coerce_answer(query: Query, data: Any) -> dict[str, Any] | None:
    """Coerce an answer in place: asked keys filled with None when omitted, others dropped."""
    if not isinstance(data, dict):
        return None

    def fix_obj(obj: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        props = node.get("properties") or {}
        return {k: obj.get(k) for k in props}  # unknown keys dropped, omitted keys -> None

    def parent_of(keys: list[str]) -> dict[str, Any]:
        # walk (and repair) the nested objects above a field
        parent = out
        for depth, key in enumerate(keys[:-1]):
            node = schema_node(query.schema, keys[: depth + 1])
            child = parent.get(key)
            parent[key] = fix_obj(child, node) if isinstance(child, dict) else fix_obj({}, node)
            parent = parent[key]
        return parent

    out = fix_obj(data, query.schema)
    for f in query.fields:
        keys = field_keys(f.path)
        parent = parent_of(keys)
        parent[keys[-1]] = coerce_value(f, parent.get(keys[-1]))
    for arr in query.arrays:
        keys = field_keys(arr.path)
        parent = parent_of(keys)
        items = parent.get(keys[-1])
        if isinstance(items, dict):  # a single item instead of a list
            items = [items]
        if isinstance(items, list):
            fixed = []
            for item in items:
                if not isinstance(item, dict):
                    fixed.append(item)
                    continue
                fixed.append({f.name: coerce_value(f, item.get(f.name)) for f in arr.items})
            items = fixed
        parent[keys[-1]] = items
    return out
