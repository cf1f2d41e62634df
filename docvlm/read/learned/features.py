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
    _clean,
    all_term_similarity,
    field_phrases,
    phrase_index,
)
from docvlm.read.rules.context import DocContext
from docvlm.schema import FieldSpec

#: ``rule``: the layout-rule reader's own value for the field, as one more candidate (it can
#: join, clean or split text in ways no other kind does; the model learns when to trust it)
KINDS = ("date", "amount", "pattern", "enum", "token", "segment", "after_label", "block2", "block3",
         "rule")  # fmt: skip
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
    "date_ambiguous", "reads_month_first", "doc_order_evidence", "doc_usd",
    "doc_no_currency", "doc_decimal_comma",
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
    ambiguous: bool = False  # a date that reads as two dates (day/month order unknown)


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
            seen: dict[tuple[str, int], Candidate] = {}
            for iso, s, e in find_dates(text, ctx.dayfirst):
                out.append(_cand(doc, "date", iso, i, s, e))
                seen[(iso, s)] = out[-1]
            at = {s: c for (_, s), c in seen.items()}
            for iso, s, e in find_dates(text, not ctx.dayfirst):
                if (iso, s) not in seen:  # ambiguous order: both readings, the model decides
                    out.append(_cand(doc, "date", iso, i, s, e))
                    out[-1].alt = out[-1].ambiguous = True
                    if s in at:
                        at[s].ambiguous = True
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
    digits = sum(map(str.isdigit, text))
    alpha = sum(map(str.isalpha, text))
    upper = sum(map(str.isupper, text))
    return len(text), len(text.split()), digits / n, alpha / n, upper / max(alpha, 1)


def rule_candidate(doc: DocLines, value: Any, raw: str, page: int | None, bbox) -> Candidate | None:
    """The rule reader's value as a candidate, placed on the line it overlaps most."""
    best, best_area = -1, 0.0
    for i, ln in enumerate(doc.lines):
        if bbox is None or (page is not None and ln.page != page):
            continue
        w = min(ln.bbox[2], bbox[2]) - max(ln.bbox[0], bbox[0])
        h = min(ln.bbox[3], bbox[3]) - max(ln.bbox[1], bbox[1])
        if w > 0 and h > 0 and w * h > best_area:
            best, best_area = i, w * h
    if best < 0:
        return None  # not on the page's lines (read from elsewhere): nothing to place
    line = doc.lines[best]
    box = tuple(float(v) for v in bbox) if bbox is not None else line.bbox
    return Candidate("rule", value, raw or str(value), best, 0, len(line.text), (best,), box,
                     line.page)  # fmt: skip


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
    ctx = doc.ctx
    # column by column from Python lists: numpy's per-element setitem was most of the time
    cols: dict[str, list] = {name: [] for name in _BASE_COLUMNS}
    kind_col = [_F[f"k_{c.kind}"] for c in cands]
    for c in cands:
        line = doc.lines[c.line]
        pw, ph = doc.page_size.get(c.page, (1.0, 1.0))
        left = doc.left[c.line]
        cols["d_left"].append((line.bbox[0] - doc.lines[left].bbox[2]) / pw if left >= 0 else 0)
        up = doc.above[c.line]
        cols["d_above"].append(
            (line.bbox[1] - doc.lines[up].bbox[3]) / doc.median_h if up >= 0 else 0
        )
        cols["alt_order"].append(c.alt)
        cols["date_ambiguous"].append(c.ambiguous)
        # which order this reading takes: the document's (ctx.dayfirst) unless it is the alt
        cols["reads_month_first"].append(c.ambiguous and (ctx.dayfirst == c.alt))
        cols["prefix_sep"].append(bool(c.start and _SEP_END.search(line.text[: c.start])))
        cols["labelness"].append(all_term_similarity(c.text))
        cols["x0"].append(c.bbox[0] / pw)
        cols["y0"].append(c.bbox[1] / ph)
        cols["x1"].append(c.bbox[2] / pw)
        cols["top_band"].append(c.bbox[1] / ph < 0.15)
        cols["page_index"].append(c.page - 1)
        cols["last_page"].append(c.page == doc.n_pages)
        cols["rel_height"].append((line.bbox[3] - line.bbox[1]) / doc.median_h)
        n, t, d, a, u = _shape(c.text)
        cols["n_chars"].append(n)
        cols["n_tokens"].append(t)
        cols["digit_ratio"].append(d)
        cols["alpha_ratio"].append(a)
        cols["upper_ratio"].append(u)
        cols["has_decimals"].append(bool(_DECIMALS.search(c.text)))
        cols["has_currency"].append(bool(_CURRENCY.search(c.text)))
        rank = amount_rank[c.value] if c.kind == "amount" else -1
        cols["amount_rank"].append(rank)
        cols["amount_is_max"].append(rank == 0)
        cols["date_rank"].append(date_rank.get(c.value, -1))
        cols["value_count"].append(counts[c.value])
        cols["line_order"].append(c.line / n_lines)
        region = line.region_class or ""
        cols["r_title"].append(region in ("title", "header"))
        cols["r_table"].append(region == "table")
        cols["r_margin"].append(region in ("footer", "header", "reference"))
        aligned = False
        if c.kind.startswith("block"):
            xs = [doc.lines[k].bbox[0] for k in c.lines]
            aligned = (max(xs) - min(xs)) / doc.median_h < 1.0
        cols["block_aligned"].append(aligned)
    X[np.arange(len(cands)), kind_col] = 1
    # what the document says of its locale (the date order a reading should follow)
    X[:, _F["doc_order_evidence"]] = ctx.order_evidence
    X[:, _F["doc_usd"]] = ctx.currency == "USD"
    X[:, _F["doc_no_currency"]] = ctx.currency is None
    X[:, _F["doc_decimal_comma"]] = -1 if ctx.decimal_comma is None else ctx.decimal_comma
    for name, values in cols.items():
        X[:, _F[name]] = values
    return X


_BASE_COLUMNS = ("d_left", "d_above", "alt_order", "date_ambiguous", "reads_month_first",
                 "prefix_sep", "labelness", "x0", "y0", "x1",
                 "top_band", "page_index", "last_page", "rel_height", "n_chars", "n_tokens",
                 "digit_ratio", "alpha_ratio", "upper_ratio", "has_decimals", "has_currency",
                 "amount_rank", "amount_is_max", "date_rank", "value_count", "line_order",
                 "r_title", "r_table", "r_margin", "block_aligned")  # fmt: skip
_DECIMALS = re.compile(r"[.,]\d{2}\)?\s*\D*$")
_CURRENCY = re.compile(r"[$€£¥]|\b[A-Z]{3}\b")


class FieldFeatures:
    """Feature rows for one field's candidates in one document."""

    def __init__(self, doc: DocLines, spec: FieldSpec, phrases: FieldPhrases | None = None):
        self.doc = doc
        self.spec = spec
        self.fp = phrases or field_phrases(spec)
        self._index = phrase_index(self.fp.phrases)  # looked up once, not per text
        self._line_sim = [self.label_sim(ln.text) for ln in doc.lines]
        self.doc_max = max(self._line_sim, default=0.0)

    def label_sim(self, text: str) -> float:
        """``label_similarity(self.fp, text)``."""
        text = _clean(text)
        if not text or len(text) > 80:
            return 0.0
        return self._index.best(text)

    def sim(self, i: int) -> float:
        return self._line_sim[i] if i >= 0 else 0.0

    def matrix(
        self,
        cands: list[Candidate],
        n_typed: int = 1,
        base: np.ndarray | None = None,
        rule: tuple[str, float] | None = None,
        norms: list[str] | None = None,
    ) -> np.ndarray:
        """Feature rows; ``rule``: the rule reader's (normalised value, confidence) for
        the field, when it found one (the model learns how far to trust it); ``norms``:
        the candidates' normalised values, when already known (:func:`normalised`)."""
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
        row_max: dict[int, float] = {}
        if rule is not None:
            X[:, _F["rule_conf"]] = rule[1]
            if norms is None:
                norms = normalised(spec, cands)
            X[:, _F["rule_agree"]] = [n == rule[0] for n in norms]
        # column by column from Python lists: numpy's per-element setitem was most of it
        cols: dict[str, list[float]] = {k: [] for k in _SIM_COLUMNS}
        sim, line_sim, lines = self.sim, self._line_sim, doc.lines
        for c in cands:
            prefix = self.label_sim(lines[c.line].text[: c.start]) if c.start else 0.0
            left = sim(doc.left[c.line])
            up = doc.above[c.line]
            above = sim(up)
            cols["s_prefix"].append(prefix)
            cols["s_left"].append(left)
            cols["s_above"].append(above)
            cols["s_above2"].append(sim(doc.above[up]) if up >= 0 else 0.0)
            cols["s_below"].append(sim(doc.below[c.lines[-1]]))
            cols["s_self"].append(
                line_sim[c.line] if c.start == 0 and len(c.lines) == 1 else self.label_sim(c.text)
            )
            # float32 like the matrix the model was trained on
            local = max(np.float32(prefix), np.float32(left), np.float32(above))
            cols["s_local_rel"].append(local / (self.doc_max + 1e-3))
            if c.line not in row_max:
                row_max[c.line] = max((sim(k) for k in doc.row_members[c.line]), default=0)
            cols["s_row_max"].append(row_max[c.line])
        for name, values in cols.items():
            X[:, _F[name]] = values
        return X


_SIM_COLUMNS = ("s_prefix", "s_left", "s_above", "s_above2", "s_below", "s_self",
                "s_local_rel", "s_row_max")  # fmt: skip


def normalised(spec: FieldSpec, cands: list[Candidate]) -> list[str]:
    """The candidates' values in their comparable form (the same for every field of a
    candidate pool: it depends on the type only)."""
    from docvlm.evaluate import normalise

    return [normalise(spec, c.value) for c in cands]
