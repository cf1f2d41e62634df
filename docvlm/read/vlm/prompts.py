"""Prompts: the instruction for one question and the re-ask message after a failed answer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docvlm.read.vlm.answer import Query
    from docvlm.schema import FieldSpec


def _describe(f: FieldSpec, name: str) -> str:
    kind = "date (YYYY-MM-DD)" if f.is_date else f.type
    text = f"- `{name}` ({f.title + ', ' if f.title else ''}{kind})"
    if f.description:
        text += f": {f.description}"
    if f.enum:
        text += f" One of: {', '.join(map(str, f.enum))}."
    if f.examples:
        text += f" Examples: {', '.join(map(str, f.examples[:3]))}."
    return text


def build_prompt(query: Query, doc_title: str | None = None) -> str:
    """The instruction for one query: where to look, which fields, the rules, the schema."""
    where = (
        f"page {query.page} of a document"
        if query.region_index is None
        else f"a '{query.region_class}' region cropped from page {query.page} of a document"
    )
    lines = [f"The image shows {where}{f' ({doc_title})' if doc_title else ''}."]
    lines.append("Extract these fields:")
    for f in query.fields:
        lines.append(_describe(f, f.path))
    for arr in query.arrays:
        head = f"- `{arr.path}` ({arr.title + ', ' if arr.title else ''}list)"
        if arr.description:
            head += f": {arr.description}"
        lines.append(head + " One entry per row, each with:")
        lines.extend("  " + _describe(f, f.name) for f in arr.items)
    lines.append(
        "Answer with one JSON object that matches the JSON Schema below and nothing else. "
        "Use null for a field that is not shown in this image; do not guess. Copy text as "
        "printed. Write dates as YYYY-MM-DD and numbers as plain JSON numbers (no currency "
        "symbols, no thousands separators, '.' as the decimal point)."
    )
    if query.hint:
        lines.append("Text recognised in this image (it may contain errors):")
        lines.append(query.hint)
    lines.append("JSON Schema:")
    lines.append(json.dumps(query.schema, ensure_ascii=False))
    return "\n".join(lines)


def reask_prompt(problems: list[tuple[str, str]], parsed: bool, finished: bool) -> str:
    """The follow-up turn after an answer the validator rejected."""
    if not parsed:
        head = "Your answer was not a JSON object."
        if not finished:
            head = "Your answer was cut off before the JSON object was complete; answer shorter."
    else:
        head = "Your answer does not match the JSON Schema:"
    body = "\n".join(f"- {ptr or '(root)'}: {msg}" for ptr, msg in problems[:20])
    return (
        f"{head}\n{body}\nAnswer again with the corrected JSON object only; "
        "use null for values you cannot read."
    ).replace("\n\n", "\n")
