"""Candidate values of a document by type, and the features a scorer ranks them by.

Candidates come from the page lines (text layer or OCR), typed by what they can be: dates,
amounts, pattern matches, enum members, identifier-like tokens, line segments, the text after
a label and blocks of consecutive lines (names and addresses). Which candidates a field gets
depends only on its JSON Schema type (``type``, ``format``, ``pattern``, ``enum``).

Features are the same for every field and every schema: how well the printed text before,
left of and above a candidate reads as the field's label (see :mod:`.vocab`), the type of the
candidate, its geometry on the page, its text's shape and how it ranks among the document's
other candidates of its type. No feature is keyed on a field name or a document's wording,
so a model trained on some documents and schemas scores others.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from docvlm.datamodel import BBox, Line, Page
from docvlm.lines import union_box
from docvlm.normalize import find_currency, find_dates, fold, parse_amount
from docvlm.read.learned.vocab import (
    FieldPhrases,
    all_term_similarity,
    field_phrases,
    label_similarity,
)
from docvlm.read.rules.context import DocContext
from docvlm.schema import FieldSpec

KINDS = ("date", "amount", "pattern", "enum", "token", "segment", "after_label", "block2", "block3")
FEATURES = (
    "f_date", "f_number", "f_integer", "f_string", "f_pattern", "f_enum",
    *(f"k_{k}" for k in KINDS),
    "s_prefix", "prefix_sep", "s_left", "d_left", "s_above", "d_above", "s_above2",
    "s_self", "labelness", "s_doc_max", "s_local_rel", "s_row_max", "s_below",
    "x0", "y0", "x1", "page_index", "last_page", "rel_height", "top_band",
    "n_chars", "n_tokens", "digit_ratio", "alpha_ratio", "upper_ratio",
    "has_decimals", "has_currency", "amount_rank", "amount_is_max", "value_count",
    "date_rank", "line_order", "r_title", "r_table", "r_margin", "field_group_w",
    "block_aligned", "n_fields_typed", "alt_order", "rule_agree", "rule_conf",
)  # fmt: skip
_F = {name: i for i, name in enumerate(FEATURES)}

_AMOUNT = re.compile(
    r"(?<![\w.,/-])(?:[$€£¥]\s?|[A-Z]{3}\s?)?\(?-?\d{1,3}(?:(?:[.,'\u00a0 ]\d{3})+|\d*)"
    r"(?:[.,]\d{1,2})?\)?(?:\s?(?:[A-Z]{3}|[$€£¥]))?(?![\w/]|[.,]\d)"
)
_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9][\w\-/.#]{0,30}[A-Za-z0-9](?![\w-])")
_SEP_END = re.compile(r"[:#]\s*$|\bno\.?\s*$|\bnr\.?\s*$", re.I)


@dataclass
class Candidate:
    """A span of the document that could be a field's value."""

    kind: str
    value: Any
    text: str
    line: int  # index of its first line in DocLines.lines
    start: int  # span in that line's text (0..len for whole lines and blocks)
    end: int
    lines: tuple[int, ...]
    bbox: BBox
    page: int
    alt: bool = False  # a date read in the other day/month order than the document's


@dataclass
class DocLines:
    """The document's lines in reading order with their neighbours and page sizes."""

    lines: list[Line]
    ctx: DocContext
    page_size: dict[int, tuple[float, float]]
    left: list[int] = field(default_factory=list)  # nearest segment to the left, same row
    above: list[int] = field(default_factory=list)  # nearest line above, overlapping in x
    below: list[int] = field(default_factory=list)
    row_members: list[list[int]] = field(default_factory=list)
    median_h: float = 10.0
    n_pages: int = 1

    @classmethod
    def build(cls, pages: list[Page]) -> DocLines:
        ctx = DocContext.build(pages)
        lines = ctx.lines
        doc = cls(
            lines=lines,
            ctx=ctx,
            page_size={p.number: (float(p.width or 1), float(p.height or 1)) for p in pages},
            n_pages=max(len(pages), 1),
        )
        heights = [ln.bbox[3] - ln.bbox[1] for ln in lines]
        doc.median_h = statistics.median(heights) if heights else 10.0
        index = {id(ln): i for i, ln in enumerate(lines)}
        doc.left = [-1] * len(lines)
        doc.above = [-1] * len(lines)
        doc.below = [-1] * len(lines)
        doc.row_members = [[] for _ in lines]
        by_page: dict[int, list[int]] = {}
        for row in ctx.rows:
            members = [index[id(ln)] for ln in row.lines]
            for j, i in enumerate(members):
                doc.row_members[i] = members
                if j > 0:
                    doc.left[i] = members[j - 1]
            by_page.setdefault(row.page, []).extend(members)
        for members in by_page.values():
            for i in members:
                b = lines[i].bbox
                best, best_gap = -1, 4.0 * doc.median_h
                for k in members:
                    o = lines[k].bbox
                    gap = b[1] - o[3]
                    if k == i or gap < -0.3 * doc.median_h or gap > best_gap:
                        continue
                    if min(b[2], o[2]) - max(b[0], o[0]) <= 0:
                        continue
                    best, best_gap = k, gap
                if best >= 0:
                    doc.above[i] = best
                    if doc.below[best] < 0 or (lines[doc.below[best]].bbox[1] > lines[i].bbox[1]):
                        doc.below[best] = i
        return doc


def _norm_text(text: str) -> str:
    return text.strip().strip(":;,|").strip()


def _span_box(line: Line, start: int, end: int) -> BBox:
    """The box of the words of ``line`` that hold characters ``start..end``."""
    pos, boxes = 0, []
    for w in line.words:
        w_start = line.text.find(w.text, pos)
        if w_start < 0:
            return line.bbox
        w_end = w_start + len(w.text)
        pos = w_end
        if w_end > start and w_start < end:
            boxes.append(w.bbox)
    return union_box(boxes) if boxes else line.bbox


def _cand(doc: DocLines, kind: str, value, i: int, s: int, e: int) -> Candidate:
    line = doc.lines[i]
    text = line.text[s:e]
    return Candidate(kind, value, text, i, s, e, (i,), _span_box(line, s, e), line.page)


def typed_candidates(doc: DocLines, spec: FieldSpec) -> list[Candidate]:
    """Every span of the document that parses as a value of ``spec``'s type."""
    out: list[Candidate] = []
    ctx = doc.ctx
    for i, line in enumerate(doc.lines):
        text = line.text
        if spec.is_date:
            seen = set()
            for iso, s, e in find_dates(text, ctx.dayfirst):
                out.append(_cand(doc, "date", iso, i, s, e))
                seen.add((iso, s))
            for iso, s, e in find_dates(text, not ctx.dayfirst):
                if (iso, s) not in seen:  # ambiguous order: both readings, the model decides
                    out.append(_cand(doc, "date", iso, i, s, e))
                    out[-1].alt = True
        elif spec.is_number:
            for m in _AMOUNT.finditer(text):
                if text[m.end() : m.end() + 2].strip().startswith("%"):
                    continue
                value = parse_amount(m.group(0), ctx.decimal_comma)
                if value is None:
                    continue
                if spec.type == "integer" and value != int(value):
                    continue
                out.append(_cand(doc, "amount", value, i, m.start(), m.end()))
        elif spec.enum:
            folded = fold(text)
            for member in spec.enum:
                f = fold(str(member))
                at = folded.find(f) if f else -1
                if at >= 0:
                    out.append(_cand(doc, "enum", member, i, 0, len(text)))
        elif spec.pattern:
            body = spec.pattern.lstrip("^").rstrip("$")
            try:
                rx = re.compile(body)
            except re.error:
                rx = None
            if rx is not None:
                for m in rx.finditer(text):
                    if m.group(0).strip():
                        out.append(_cand(doc, "pattern", m.group(0), i, m.start(), m.end()))
            iso = find_currency(text)
            if iso and rx is not None and rx.fullmatch(iso):
                if not any(c.value == iso and c.line == i for c in out):
                    out.append(_cand(doc, "pattern", iso, i, 0, len(text)))
        else:
            out.extend(_string_candidates(doc, i))
    if spec.type == "string" and not (spec.is_date or spec.enum or spec.pattern):
        out.extend(_blocks(doc))
    return out


def _string_candidates(doc: DocLines, i: int) -> list[Candidate]:
    line = doc.lines[i]
    text = line.text
    out = []
    whole = _norm_text(text)
    if whole and re.search(r"\w", whole):
        out.append(_cand(doc, "segment", whole, i, 0, len(text)))
    words = list(re.finditer(r"\S+", text))
    if 2 <= len(words) <= 14:
        for k in range(1, min(4, len(words))):
            rest = _norm_text(text[words[k].start() :])
            if rest and re.search(r"\w", rest):
                out.append(_cand(doc, "after_label", rest, i, words[k].start(), len(text)))
    if ":" in text:
        at = text.index(":") + 1
        rest = _norm_text(text[at:])
        if rest and rest != whole and not any(c.value == rest for c in out):
            out.append(_cand(doc, "after_label", rest, i, at, len(text)))
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if re.search(r"\d", tok) and tok != whole:
            out.append(_cand(doc, "token", tok, i, m.start(), m.end()))
    return out


def _blocks(doc: DocLines) -> list[Candidate]:
    out = []
    for i, line in enumerate(doc.lines):
        chain, cur = [i], i
        for size in (2, 3, 4, 5):
            nxt = doc.below[cur]
            if nxt < 0:
                break
            a, b = doc.lines[cur].bbox, doc.lines[nxt].bbox
            if b[1] - a[3] > 1.2 * doc.median_h:
                break
            chain.append(nxt)
            cur = nxt
            text = " ".join(_norm_text(doc.lines[k].text) for k in chain)
            box = union_box([doc.lines[k].bbox for k in chain])
            out.append(
                Candidate(f"block{min(size, 3)}", text, text, i, 0, len(line.text), tuple(chain), box,
                          line.page)
            )  # fmt: skip
    return out


def _shape(text: str) -> tuple[float, float, float, float, float]:
    n = max(len(text), 1)
    digits = sum(c.isdigit() for c in text)
    alpha = sum(c.isalpha() for c in text)
    upper = sum(c.isupper() for c in text)
    return len(text), len(text.split()), digits / n, alpha / n, upper / max(alpha, 1)


def pool_key(spec: FieldSpec) -> tuple:
    """Fields with the same key get the same candidates (computed once per document)."""
    if spec.is_date:
        return ("date",)
    if spec.is_number:
        return ("number", spec.type)
    if spec.enum:
        return ("enum", tuple(map(str, spec.enum)))
    if spec.pattern:
        return ("pattern", spec.pattern)
    return (spec.type,)


def base_matrix(doc: DocLines, cands: list[Candidate]) -> np.ndarray:
    """The columns that do not depend on the field: kind, geometry, shape, ranks."""
    X = np.zeros((len(cands), len(FEATURES)), dtype=np.float32)
    if not cands:
        return X
    amounts = sorted({c.value for c in cands if c.kind == "amount"}, reverse=True)
    amount_rank = {v: r for r, v in enumerate(amounts)}
    dates = sorted({c.value for c in cands if c.kind == "date"})
    date_rank = {v: r for r, v in enumerate(dates)}
    counts: dict[Any, int] = {}
    for c in cands:
        counts[c.value] = counts.get(c.value, 0) + 1
    n_lines = max(len(doc.lines), 1)
    for r, c in enumerate(cands):
        row = X[r]
        row[_F[f"k_{c.kind}"]] = 1
        row[_F["alt_order"]] = c.alt
        line = doc.lines[c.line]
        left = doc.left[c.line]
        if left >= 0:
            w = doc.page_size.get(c.page, (1.0, 1.0))[0]
            row[_F["d_left"]] = (line.bbox[0] - doc.lines[left].bbox[2]) / w
        up = doc.above[c.line]
        if up >= 0:
            row[_F["d_above"]] = (line.bbox[1] - doc.lines[up].bbox[3]) / doc.median_h
        row[_F["prefix_sep"]] = bool(c.start and _SEP_END.search(line.text[: c.start]))
        row[_F["labelness"]] = all_term_similarity(c.text)
        pw, ph = doc.page_size.get(c.page, (1.0, 1.0))
        row[_F["x0"]] = c.bbox[0] / pw
        row[_F["y0"]] = c.bbox[1] / ph
        row[_F["x1"]] = c.bbox[2] / pw
        row[_F["top_band"]] = c.bbox[1] / ph < 0.15
        row[_F["page_index"]] = c.page - 1
        row[_F["last_page"]] = c.page == doc.n_pages
        row[_F["rel_height"]] = (line.bbox[3] - line.bbox[1]) / doc.median_h
        n, t, d, a, u = _shape(c.text)
        row[_F["n_chars"]], row[_F["n_tokens"]] = n, t
        row[_F["digit_ratio"]], row[_F["alpha_ratio"]], row[_F["upper_ratio"]] = d, a, u
        row[_F["has_decimals"]] = bool(_DECIMALS.search(c.text))
        row[_F["has_currency"]] = bool(_CURRENCY.search(c.text))
        if c.kind == "amount":
            row[_F["amount_rank"]] = amount_rank[c.value]
            row[_F["amount_is_max"]] = amount_rank[c.value] == 0
        else:
            row[_F["amount_rank"]] = -1
        row[_F["date_rank"]] = date_rank.get(c.value, -1)
        row[_F["value_count"]] = counts[c.value]
        row[_F["line_order"]] = c.line / n_lines
        region = line.region_class or ""
        row[_F["r_title"]] = region in ("title", "header")
        row[_F["r_table"]] = region == "table"
        row[_F["r_margin"]] = region in ("footer", "header", "reference")
        if c.kind.startswith("block"):
            xs = [doc.lines[k].bbox[0] for k in c.lines]
            row[_F["block_aligned"]] = (max(xs) - min(xs)) / doc.median_h < 1.0
    return X


_DECIMALS = re.compile(r"[.,]\d{2}\)?\s*\D*$")
_CURRENCY = re.compile(r"[$€£¥]|\b[A-Z]{3}\b")


class FieldFeatures:
    """Feature rows for one field's candidates in one document."""

    def __init__(self, doc: DocLines, spec: FieldSpec, phrases: FieldPhrases | None = None):
        self.doc = doc
        self.spec = spec
        self.fp = phrases or field_phrases(spec)
        self._line_sim = [label_similarity(self.fp, ln.text) for ln in doc.lines]
        self.doc_max = max(self._line_sim, default=0.0)

    def sim(self, i: int) -> float:
        return self._line_sim[i] if i >= 0 else 0.0

    def matrix(
        self,
        cands: list[Candidate],
        n_typed: int = 1,
        base: np.ndarray | None = None,
        rule: tuple[str, float] | None = None,
    ) -> np.ndarray:
        """Feature rows; ``rule``: the rule reader's (normalised value, confidence) for
        the field, when it found one (the model learns how far to trust it)."""
        doc, spec = self.doc, self.spec
        X = (base if base is not None else base_matrix(doc, cands)).copy()
        if not cands:
            return X
        X[:, _F["f_date"]] = spec.is_date
        X[:, _F["f_number"]] = spec.is_number
        X[:, _F["f_integer"]] = spec.type == "integer"
        X[:, _F["f_string"]] = spec.type == "string" and not spec.is_date
        X[:, _F["f_pattern"]] = bool(spec.pattern)
        X[:, _F["f_enum"]] = bool(spec.enum)
        X[:, _F["field_group_w"]] = self.fp.groups[0][1] if self.fp.groups else 0.0
        X[:, _F["n_fields_typed"]] = n_typed
        X[:, _F["s_doc_max"]] = self.doc_max
        row_max = {}
        if rule is not None:
            from docvlm.evaluate import normalise

            X[:, _F["rule_conf"]] = rule[1]
        for r, c in enumerate(cands):
            row = X[r]
            if rule is not None and normalise(spec, c.value) == rule[0]:
                row[_F["rule_agree"]] = 1
            line = doc.lines[c.line]
            if c.start:
                row[_F["s_prefix"]] = label_similarity(self.fp, line.text[: c.start])
            row[_F["s_left"]] = self.sim(doc.left[c.line])
            up = doc.above[c.line]
            row[_F["s_above"]] = self.sim(up)
            row[_F["s_above2"]] = self.sim(doc.above[up]) if up >= 0 else 0.0
            row[_F["s_below"]] = self.sim(doc.below[c.lines[-1]])
            row[_F["s_self"]] = (
                self._line_sim[c.line] if c.start == 0 and len(c.lines) == 1
                else label_similarity(self.fp, c.text)
            )  # fmt: skip
            local = max(row[_F["s_prefix"]], row[_F["s_left"]], row[_F["s_above"]])
            row[_F["s_local_rel"]] = local / (self.doc_max + 1e-3)
            if c.line not in row_max:
                row_max[c.line] = max((self.sim(k) for k in doc.row_members[c.line]), default=0)
            row[_F["s_row_max"]] = row_max[c.line]
        return X
