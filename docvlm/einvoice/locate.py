"""Find an e-invoice value on the rendered pages: where the page prints what the XML says.

Amounts are compared as numbers (any of 1.234,56 / 1,234.56 / 1234.56, sign ignored), dates as
ISO dates, text without case, spaces and punctuation. The result is the page, the box (the
words for numbers, the line(s) for text) and the region class — provenance for the XML value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docvlm.datamodel import BBox, Line, Page
from docvlm.lines import union_box
from docvlm.normalize import compact, find_currency, find_dates, parse_amount

_MAX_JOIN = 3  # a name or address may wrap onto this many lines


@dataclass(frozen=True)
class Hit:
    """Where a value is printed."""

    page: int
    bbox: BBox
    text: str
    region_class: str | None = None


def _near(hit: Hit, near: Hit | None) -> float:
    """Sort key: hits on the row of ``near`` first (same page, overlapping heights)."""
    if near is None:
        return 0.0
    if hit.page != near.page:
        return 2.0
    top, bottom = max(hit.bbox[1], near.bbox[1]), min(hit.bbox[3], near.bbox[3])
    return 0.0 if bottom - top > -2 else 1.0 + abs(hit.bbox[1] - near.bbox[1]) / 10_000


_DECIMALS = re.compile(r"\d[.,]\d{2}(?!\d)")


def _number_hits(target: float, line: Line, kind: str) -> list[Hit]:
    hits = []
    words = line.words
    for i in range(len(words)):
        for j in range(i + 1, min(i + 3, len(words)) + 1):
            span = words[i:j]
            text = " ".join(w.text for w in span)
            if not any(ch.isdigit() for ch in text):
                continue
            if kind == "amount" and not _DECIMALS.search(text):
                continue  # money is printed with cents: a bare '1' is no 1.00
            for decimal_comma in (None, True):
                value = parse_amount(text, decimal_comma)
                if value is not None and abs(abs(value) - abs(target)) < 0.005:
                    hits.append(
                        Hit(line.page, union_box([w.bbox for w in span]), text, line.region_class)
                    )
                    break
            if hits and hits[-1].text == text:
                break  # the shortest span that reads as the number
    return hits


def _text_hit(target: str, lines: list[Line], i: int, whole_word: bool) -> Hit | None:
    line = lines[i]
    if whole_word:
        for w in line.words:
            if compact(w.text.strip(".,:;()")) == target:
                return Hit(line.page, w.bbox, w.text, line.region_class)
        return None
    for n in range(1, _MAX_JOIN + 1):
        group = lines[i : i + n]
        if len(group) < n or group[-1].page != line.page:
            break
        if target in compact(" ".join(ln.text for ln in group)):
            if n > 1 and target in compact(" ".join(ln.text for ln in group[1:])):
                return None  # found from a later line on: that line reports it
            return Hit(
                line.page,
                union_box([ln.bbox for ln in group]),
                " / ".join(ln.text for ln in group),
                line.region_class,
            )
    return None


def locate(value: object, kind: str, pages: list[Page], near: Hit | None = None) -> Hit | None:
    """The first place (on ``near``'s row when given) where ``pages`` print ``value``.

    Args:
        value: The XML's typed value (float, ISO date, text).
        kind: The term kind (amount, quantity, percent, date, text, identifier, code, address).
        pages: Rendered pages with their text lines.
        near: Prefer hits on this hit's row (line items: the item's description).
    """
    lines = [ln for p in pages for ln in p.lines]
    if not lines or value is None:
        return None
    hits: list[Hit] = []
    if kind in ("amount", "quantity", "percent"):
        for ln in lines:
            hits.extend(_number_hits(float(value), ln, kind))
    elif kind == "date":
        for ln in lines:
            if any(
                iso == value
                for iso, _, _ in find_dates(ln.text) + find_dates(ln.text, dayfirst=False)
            ):
                hits.append(Hit(ln.page, ln.bbox, ln.text, ln.region_class))
    elif kind == "code" and len(str(value)) == 3 and str(value).isupper():
        for ln in lines:
            if find_currency(ln.text) == value or f" {value} " in f" {ln.text} ":
                hits.append(Hit(ln.page, ln.bbox, ln.text, ln.region_class))
    elif kind == "address":
        parts = [p for p in str(value).split(", ") if len(compact(p)) > 2]
        for part in parts:
            hit = locate(part, "text", pages)
            if hit is not None:
                hits.append(hit)
        if hits:
            page = max({h.page for h in hits}, key=lambda n: sum(h.page == n for h in hits))
            same = [h for h in hits if h.page == page]
            return Hit(
                page,
                union_box([h.bbox for h in same]),
                " / ".join(h.text for h in same),
                same[0].region_class,
            )
        return None
    elif kind in ("text", "identifier", "code"):
        target = compact(str(value))
        if not target:
            return None
        whole_word = kind != "text" and len(target) < 5 or kind == "code"
        for i in range(len(lines)):
            hit = _text_hit(target, lines, i, whole_word)
            if hit is not None:
                hits.append(hit)
                if near is None:
                    break
    if not hits:
        return None
    return min(hits, key=lambda h: _near(h, near)) if near is not None else hits[0]


__all__ = ["Hit", "locate"]
