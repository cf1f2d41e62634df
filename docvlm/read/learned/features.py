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

import bisect
import re
import statistics
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from docvlm.datamodel import BBox, Line, Page
from docvlm.lines import union_box
from docvlm.normalize import (
    ISO_CURRENCIES,
    compact,
    find_currency_span,
    find_dates,
    fold,
    parse_amount,
)
from docvlm.read.learned.vocab import (
    _LETTER,
    FieldPhrases,
    PhraseIndex,
    _clean,
    all_term_similarity_many,
    field_phrases,
    phrase_index,
)
from docvlm.read.rules.context import DocContext
from docvlm.read.rules.labels import courtesy_ratio
from docvlm.schema import FieldSpec

#: ``rule``: the layout-rule reader's own value for the field, as one more candidate (it can
#: join, clean or split text in ways no other kind does; the model learns when to trust it)
#: ``trimmed``: a line or its part after a label without a trailing code in brackets
#: ("Acme Corp (33287)"): names often carry an account number the value does not include
KINDS = ("date", "amount", "pattern", "enum", "token", "segment", "after_label", "block2", "block3",
         "rule", "trimmed")  # fmt: skip
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
    "doc_no_currency", "doc_decimal_comma", "sum_of_two", "part_of_sum", "sum_above",
    "left_h_ratio", "left_below_label", "range_first", "range_second", "field_start",
    "field_end", "block_centered", "block_h_ratio", "courtesy", "s_header", "d_header",
    "date_intro", "time_after",
)  # fmt: skip
_F = {name: i for i, name in enumerate(FEATURES)}
_KIND_COLUMN = {k: _F[f"k_{k}"] for k in KINDS}
_TYPED = frozenset(("date", "amount", "pattern", "enum"))  # kinds whose text is a typed value

#: a currency code beside an amount is a real one ('INV-9900' is no amount in 'INV')
_ISO_CODE = "(?:" + "|".join(sorted(ISO_CURRENCIES)) + ")"
_AMOUNT = re.compile(
    rf"(?<![\w.,/-])(?:[$€£¥]\s?|{_ISO_CODE}\s?)?\(?-?\d{{1,3}}(?:(?:[.,'\u00a0 ]\d{{3}})+|\d*)"
    rf"(?:[.,]\d{{1,2}})?\)?(?:\s?(?:{_ISO_CODE}|[$€£¥]))?(?![\w/]|[.,]\d)"
)
_TRAILING_CODE = re.compile(r"\s*[(\[][^()\[\]]*\d[^()\[\]]*[)\]]?\s*$")
_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9][\w\-/.#]{0,30}[A-Za-z0-9](?![\w-])")
_SEP_END = re.compile(r"[:#]\s*$|\bno\.?\s*$|\bnr\.?\s*$", re.I)
_WORD_CHAR = re.compile(r"\w")
_DIGIT = re.compile(r"\d")
_NON_SPACE = re.compile(r"\S+")


@dataclass(slots=True)
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
    _neighbours: Neighbours | None = None
    _spans: dict[int, _WordSpans | None] = field(default_factory=dict)
    _boxes: dict[tuple[int, int, int], BBox] = field(default_factory=dict)  # (line, words)
    _line_arrays: LineArrays | None = None
    _sums: AmountSums | None = None
    _labelness: dict[int, float] = field(default_factory=dict)
    _norm_texts: list[str] | None = None
    _label_texts: list[str] | None = None
    _amount_spans: list[list[tuple[int, int, str]]] | None = None

    def amount_spans(self) -> list[list[tuple[int, int, str]]]:
        """Each line's :data:`_AMOUNT` matches as (start, end, text) (found once)."""
        if self._amount_spans is None:
            self._amount_spans = [
                [(m.start(), m.end(), m.group(0)) for m in _AMOUNT.finditer(ln.text)]
                for ln in self.lines
            ]
        return self._amount_spans

    def label_texts(self) -> list[str]:
        """:func:`_label_text` of each line (found once; every field reads them)."""
        if self._label_texts is None:
            self._label_texts = [_label_text(ln.text) for ln in self.lines]
        return self._label_texts

    def norm_texts(self) -> list[str]:
        """:func:`_norm_text` of each line (found once)."""
        if self._norm_texts is None:
            self._norm_texts = [_norm_text(ln.text) for ln in self.lines]
        return self._norm_texts

    def amount_sums(self) -> AmountSums:
        """Which printed amounts add up with others (found once)."""
        if self._sums is None:
            self._sums = AmountSums.of(self)
        return self._sums

    def line_labelness(self, idx: Iterable[int]) -> dict[int, float]:
        """How much each line ``idx`` reads like a label (found once per line)."""
        todo = sorted({i for i in idx if i >= 0 and i not in self._labelness})
        if todo:
            scores = all_term_similarity_many([self.lines[i].text for i in todo])
            self._labelness.update(zip(todo, map(float, scores), strict=True))
        return self._labelness

    def line_arrays(self) -> LineArrays:
        """Line boxes, regions and page sizes as arrays (built once)."""
        if self._line_arrays is None:
            self._line_arrays = _build_line_arrays(self)
        return self._line_arrays

    def word_spans(self, i: int) -> _WordSpans | None:
        """:func:`_word_spans` of line ``i`` (found once)."""
        if i not in self._spans:
            self._spans[i] = _word_spans(self.lines[i])
        return self._spans[i]

    def neighbours(self) -> Neighbours:
        """The neighbour lists as arrays (built once)."""
        if self._neighbours is None:
            self._neighbours = _build_neighbours(self)
        return self._neighbours

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
        h = doc.median_h
        boxes = [ln.bbox for ln in lines]
        far = -0.3 * h  # a line ending this far below i's top is no line above it
        for members in by_page.values():
            # the line above i ends between 4 line heights above i's top and 0.3 below it:
            # look only there (lines sorted by their bottom), in the members' own order
            order = sorted(members, key=lambda k: lines[k].bbox[3])
            bottoms = [lines[k].bbox[3] for k in order]
            rank = {k: r for r, k in enumerate(members)}
            for i in members:
                b = boxes[i]
                lo = bisect.bisect_left(bottoms, b[1] - 4.0 * h)
                hi = bisect.bisect_right(bottoms, b[1] + 0.3 * h)
                # the smallest gap; of equal gaps the last in the members' order (what a
                # pass in that order keeping each gap <= the best so far ends with)
                best, best_gap, best_rank = -1, 4.0 * h, -1
                for k in order[lo:hi]:
                    o = boxes[k]
                    gap = b[1] - o[3]
                    if k == i or gap < far or gap > best_gap:
                        continue
                    if (o[2] if o[2] < b[2] else b[2]) - (o[0] if o[0] > b[0] else b[0]) <= 0:
                        continue
                    r = rank[k]
                    if gap < best_gap or r > best_rank:
                        best, best_gap, best_rank = k, gap, r
                if best >= 0:
                    doc.above[i] = best
                    if doc.below[best] < 0 or (lines[doc.below[best]].bbox[1] > lines[i].bbox[1]):
                        doc.below[best] = i
        return doc


@dataclass
class Neighbours:
    """:class:`DocLines`' neighbour lists as index arrays, each with one extra slot at the
    end so that index -1 ('none') reads the extra slot."""

    left: np.ndarray
    above: np.ndarray
    below: np.ndarray
    row_of: np.ndarray  # each line's row (rows numbered 0..n_rows-1; n_rows: in none)
    n_rows: int
    header: np.ndarray  # the first worded line up the chain of lines above (a column head)


def _build_neighbours(doc: DocLines) -> Neighbours:
    def ext(values: list[int]) -> np.ndarray:
        return np.asarray([*values, -1], dtype=np.int64)

    row_of, rows = [-1] * len(doc.lines), {}
    for i, members in enumerate(doc.row_members):
        if members:
            row_of[i] = rows.setdefault(id(members), len(rows))
    n_rows = len(rows)
    return Neighbours(
        ext(doc.left), ext(doc.above), ext(doc.below),
        np.asarray([r if r >= 0 else n_rows for r in row_of], dtype=np.int64), n_rows,
        ext(_headers(doc)),
    )  # fmt: skip


#: how far up a column its head is looked for: lines, and line heights
_HEADER_STEPS, _HEADER_REACH = 8, 15.0


def _headers(doc: DocLines) -> list[int]:
    """Each line's column head: going up through the lines above it (each overlapping the
    next in x), the first with a word in it, past rows of numbers and rules ('Montant TVA'
    over '2,20' over '0,00'); -1 when there is none within reach."""
    lines, above = doc.lines, doc.above
    worded = [_LETTER.search(ln.text) is not None for ln in lines]
    reach = _HEADER_REACH * doc.median_h
    out = [-1] * len(lines)
    for i, ln in enumerate(lines):
        k, top = above[i], ln.bbox[1]
        for _ in range(_HEADER_STEPS):
            if k < 0 or top - lines[k].bbox[3] > reach:
                break
            if worded[k]:
                out[i] = k
                break
            k = above[k]
    return out


#: :func:`parse_amount`, cached: the amount pools and :class:`AmountSums` parse the same
#: spans, and a document prints the same amounts on many lines
_parse_amount = lru_cache(maxsize=65536)(parse_amount)


def _norm_text(text: str) -> str:
    return text.strip().strip(":;,|").strip()


def _span_box(doc: DocLines, i: int, start: int, end: int) -> BBox:
    """The box of the words of line ``i`` that hold characters ``start..end``."""
    spans = doc.word_spans(i)
    if spans is None:
        return doc.lines[i].bbox
    starts, ends, boxes = spans
    # words are in text order: those ending after start are a suffix, those starting
    # before end a prefix; the span's words are where the two meet
    a = bisect.bisect_right(ends, start)
    b = bisect.bisect_left(starts, end)
    if a >= b:
        return doc.lines[i].bbox
    key = (i, a, b)
    box = doc._boxes.get(key)
    if box is None:
        box = doc._boxes[key] = boxes[a] if b == a + 1 else union_box(boxes[a:b])
    return box


#: where each word of a line sits in its text: starts, ends (both ascending) and boxes
_WordSpans = tuple[list[int], list[int], list[BBox]]


def _word_spans(line: Line) -> _WordSpans | None:
    """Where each word of ``line`` sits in its text (None: a word not found in it)."""
    pos, starts, ends, boxes = 0, [], [], []
    for w in line.words:
        w_start = line.text.find(w.text, pos)
        if w_start < 0:
            return None
        pos = w_start + len(w.text)
        starts.append(w_start)
        ends.append(pos)
        boxes.append(w.bbox)
    return starts, ends, boxes


def _cand(doc: DocLines, kind: str, value, i: int, s: int, e: int) -> Candidate:
    line = doc.lines[i]
    text = line.text[s:e]
    return Candidate(kind, value, text, i, s, e, (i,), _span_box(doc, i, s, e), line.page)


def typed_candidates(doc: DocLines, spec: FieldSpec) -> list[Candidate]:
    """Every span of the document that parses as a value of ``spec``'s type."""
    out: list[Candidate] = []
    ctx = doc.ctx
    is_date, is_number = spec.is_date, spec.is_number  # (a frozen spec: the same per line)
    amounts = doc.amount_spans() if is_number and not is_date else None
    rx = None
    if spec.pattern and not (is_date or is_number or spec.enum):
        try:
            rx = re.compile(spec.pattern.lstrip("^").rstrip("$"))
        except re.error:
            rx = None
    for i, line in enumerate(doc.lines):
        text = line.text
        if is_date:
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
        elif is_number:
            # a span that reads as a date is no amount ("2024" of "2024-07-01")
            found = amounts[i]
            if not found:
                continue
            dated = [(ds, de) for _, ds, de in find_dates(text, ctx.dayfirst)]
            for m_start, m_end, m_text in found:
                if text[m_end : m_end + 2].strip().startswith("%"):
                    continue
                if any(m_start < de and ds < m_end for ds, de in dated):
                    continue
                value = _parse_amount(m_text, ctx.decimal_comma)
                if value is None:
                    continue
                if spec.type == "integer" and value != int(value):
                    continue
                out.append(_cand(doc, "amount", value, i, m_start, m_end))
        elif spec.enum:
            folded = fold(text)
            for member in spec.enum:
                f = fold(str(member))
                at = folded.find(f) if f else -1
                if at >= 0:
                    out.append(_cand(doc, "enum", member, i, 0, len(text)))
        elif spec.pattern:
            if rx is not None:
                for m in rx.finditer(text):
                    if m.group(0).strip() and not _inside_word(text, m.start(), m.end()):
                        out.append(_cand(doc, "pattern", m.group(0), i, m.start(), m.end()))
            found = find_currency_span(text)
            iso = found[0] if found else None
            if iso and rx is not None and rx.fullmatch(iso):
                if not any(c.value == iso and c.line == i for c in out):
                    # the symbol's own span: the amount beside it stays free for an amount
                    out.append(_cand(doc, "pattern", iso, i, found[1], found[2]))
        else:
            out.extend(_string_candidates(doc, i))
    if spec.type == "string" and not (spec.is_date or spec.enum or spec.pattern):
        out.extend(_blocks(doc))
    return out


def _inside_word(text: str, start: int, end: int) -> bool:
    """A match that cuts a word ('OIC' of 'INVOICE'): a schema pattern is the whole value,
    and a value printed on a page does not begin or end inside a word."""
    return (start > 0 and text[start - 1].isalnum() and text[start].isalnum()) or (
        end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    )


def trim_code(text: str) -> str:
    """A name without the code in brackets it ends with ('Acme Corp (33287)' → 'Acme Corp')."""
    m = _TRAILING_CODE.search(text)
    cut = text[: m.start()] if m is not None else text
    return cut if _WORD_CHAR.search(cut) else text


def _string_candidates(doc: DocLines, i: int) -> list[Candidate]:
    line = doc.lines[i]
    text = line.text
    out = []
    whole = doc.norm_texts()[i]
    if whole and _WORD_CHAR.search(whole):
        out.append(_cand(doc, "segment", whole, i, 0, len(text)))
    words = list(_NON_SPACE.finditer(text))
    if 2 <= len(words) <= 14:
        for k in range(1, min(4, len(words))):
            rest = _norm_text(text[words[k].start() :])
            if rest and _WORD_CHAR.search(rest):
                out.append(_cand(doc, "after_label", rest, i, words[k].start(), len(text)))
    if ":" in text:
        at = text.index(":") + 1
        rest = _norm_text(text[at:])
        if rest and rest != whole and not any(c.value == rest for c in out):
            out.append(_cand(doc, "after_label", rest, i, at, len(text)))
    # the leftmost trailing code from the line's start is every candidate's that starts
    # before it (the pattern is anchored at the end); none at all means none for any
    first = _TRAILING_CODE.search(text) if out else None
    for c in list(out) if first is not None else ():
        m = first if first.start() >= c.start else _TRAILING_CODE.search(text, c.start)
        if m is not None and m.start() > c.start:
            cut = _norm_text(text[c.start : m.start()])
            if _WORD_CHAR.search(cut) and not any(o.value == cut for o in out):
                out.append(_cand(doc, "trimmed", cut, i, c.start, m.start()))
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if _DIGIT.search(tok) and tok != whole:
            out.append(_cand(doc, "token", tok, i, m.start(), m.end()))
    return out


def _blocks(doc: DocLines) -> list[Candidate]:
    out = []
    lines, below, norm = doc.lines, doc.below, doc.norm_texts()
    gap = 1.2 * doc.median_h
    for i, line in enumerate(lines):
        if below[i] < 0:
            continue  # no line below: no block starts here
        chain, cur = [i], i
        text, box = norm[i], tuple(line.bbox)
        for size in (2, 3, 4, 5):
            nxt = below[cur]
            if nxt < 0:
                break
            a, b = lines[cur].bbox, lines[nxt].bbox
            if b[1] - a[3] > gap:
                break
            chain.append(nxt)
            cur = nxt
            text = f"{text} {norm[nxt]}"
            box = (
                box[0] if box[0] < b[0] else b[0], box[1] if box[1] < b[1] else b[1],
                box[2] if box[2] > b[2] else b[2], box[3] if box[3] > b[3] else b[3],
            )  # fmt: skip
            out.append(
                Candidate(f"block{min(size, 3)}", text, text, i, 0, len(line.text), tuple(chain), box,
                          line.page)
            )  # fmt: skip
    return out


def _shape(text: str, digits: int, alpha: int, upper: int) -> tuple[float, ...]:
    """Length, words, the shares of digits and letters, and of capitals among the letters."""
    n = max(len(text), 1)
    return len(text), len(text.split()), digits / n, alpha / n, upper / max(alpha, 1)


def _char_counts(text: str) -> tuple[int, int, int]:
    """Digits, letters and capitals in ``text``."""
    if text.isascii():  # the same counts by deleting the bytes of each class at once
        raw = text.encode("ascii")
        size = len(raw)
        digits = size - len(raw.translate(None, _DIGIT_BYTES))
        upper = size - len(raw.translate(None, _UPPER_BYTES))
        return digits, upper + size - len(raw.translate(None, _LOWER_BYTES)), upper
    digits = sum(map(str.isdigit, text))
    return digits, sum(map(str.isalpha, text)), sum(map(str.isupper, text))


_DIGIT_BYTES = string.digits.encode()
_LOWER_BYTES = string.ascii_lowercase.encode()
_UPPER_BYTES = string.ascii_uppercase.encode()


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
    n = len(cands)
    amounts = sorted({c.value for c in cands if c.kind == "amount"}, reverse=True)
    amount_rank = {v: r for r, v in enumerate(amounts)}
    dates = sorted({c.value for c in cands if c.kind == "date"})
    date_rank = {v: r for r, v in enumerate(dates)}
    counts: dict[Any, int] = {}
    for c in cands:
        counts[c.value] = counts.get(c.value, 0) + 1
    ctx, lines, h = doc.ctx, doc.lines, doc.median_h
    la = doc.line_arrays()
    nb = doc.neighbours()
    L = np.fromiter((c.line for c in cands), dtype=np.int64, count=n)
    box = np.asarray([c.bbox for c in cands], dtype=np.float64).reshape(n, 4)
    page = np.fromiter((c.page for c in cands), dtype=np.int64, count=n)
    pw, ph = la.page_w[page], la.page_h[page]
    lb = la.box  # one extra row of zeros at the end, read by index -1 ('no line')
    left, up = nb.left[L], nb.above[L]
    cols: dict[str, Any] = {}
    cols["d_left"] = np.where(left >= 0, (lb[L, 0] - lb[left, 2]) / pw, 0.0)
    cols["d_above"] = np.where(up >= 0, (lb[L, 1] - lb[up, 3]) / h, 0.0)
    head = nb.header[L]
    cols["d_header"] = np.where(head >= 0, (lb[L, 1] - lb[head, 3]) / h, -1.0)
    # a label is set like its value; a heading beside a value is much taller than it
    own_h = np.maximum(lb[L, 3] - lb[L, 1], 1e-3)
    cols["left_h_ratio"] = np.where(left >= 0, (lb[left, 3] - lb[left, 1]) / own_h, 0.0)
    # a label with a value under it heads a block ("Bill To" over a name): what stands to
    # its right is another heading, not its value; a label over a label is a key list
    under_left = np.where(left >= 0, nb.below[left], -1)
    label_of = doc.line_labelness(under_left.tolist())
    cols["left_below_label"] = [label_of.get(k, -1.0) for k in under_left.tolist()]
    alt = np.fromiter((c.alt for c in cands), dtype=bool, count=n)
    ambiguous = np.fromiter((c.ambiguous for c in cands), dtype=bool, count=n)
    cols["alt_order"], cols["date_ambiguous"] = alt, ambiguous
    # which order this reading takes: the document's (ctx.dayfirst) unless it is the alt
    cols["reads_month_first"] = ambiguous & (alt == bool(ctx.dayfirst))
    cols["prefix_sep"] = [
        bool(c.start and _SEP_END.search(lines[c.line].text[: c.start])) for c in cands
    ]
    cols["x0"], cols["y0"], cols["x1"] = box[:, 0] / pw, box[:, 1] / ph, box[:, 2] / pw
    cols["top_band"] = box[:, 1] / ph < 0.15
    cols["page_index"] = page - 1
    cols["last_page"] = page == doc.n_pages
    cols["rel_height"] = (lb[L, 3] - lb[L, 1]) / h
    # what depends on a candidate's text alone, once per distinct text (about half of them:
    # a date read both ways, a line that is a segment and a token)
    distinct = list(dict.fromkeys(c.text for c in cands))
    at = {t: k for k, t in enumerate(distinct)}
    of_text = np.fromiter((at[c.text] for c in cands), dtype=np.int64, count=n)
    per_text = np.asarray([_text_features(t) for t in distinct], dtype=np.float64)
    shapes = per_text.reshape(len(distinct), 7)[of_text]
    for j, name in enumerate(("n_chars", "n_tokens", "digit_ratio", "alpha_ratio",
                              "upper_ratio", "has_decimals", "has_currency")):  # fmt: skip
        cols[name] = shapes[:, j]
    rank = np.asarray([amount_rank[c.value] if c.kind == "amount" else -1 for c in cands])
    cols["amount_rank"], cols["amount_is_max"] = rank, rank == 0
    cols["date_rank"] = [date_rank.get(c.value, -1) for c in cands]
    cols["value_count"] = [counts[c.value] for c in cands]
    cols["line_order"] = L / max(len(lines), 1)
    cols["r_title"], cols["r_table"] = la.r_title[L], la.r_table[L]
    cols["r_margin"] = la.r_margin[L]
    # blocks: left-aligned lines; centred lines (a receipt's header); the size of the
    # continuation lines against the first (a name over a smaller address line)
    aligned, centred = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    h_ratio = np.zeros(n, dtype=np.float64)
    blocks = [j for j, c in enumerate(cands) if c.kind.startswith("block")]
    if blocks:
        if not h:
            raise ZeroDivisionError("float division by zero")  # as a float division would
        # each block's lines, padded with its last line (which changes no min or max)
        chains = [cands[j].lines for j in blocks]
        width = max(map(len, chains))
        bx = lb[np.asarray([(*ch, *(ch[-1],) * (width - len(ch))) for ch in chains])]
        x0s, cxs = bx[:, :, 0], bx[:, :, 0] + bx[:, :, 2]
        aligned[blocks] = (x0s.max(axis=1) - x0s.min(axis=1)) / h < 1.0
        centred[blocks] = (cxs.max(axis=1) - cxs.min(axis=1)) / (2 * h) < 1.0
        h_ratio[blocks] = (bx[:, 1:, 3] - bx[:, 1:, 1]).min(axis=1) / np.maximum(
            bx[:, 0, 3] - bx[:, 0, 1], 1e-3
        )
    cols["block_aligned"], cols["block_centered"], cols["block_h_ratio"] = aligned, centred, h_ratio
    cols["labelness"] = np.asarray(all_term_similarity_many(distinct))[of_text]
    # greeting words in what is read as text (a typed value's text is no greeting)
    worded = np.fromiter((c.kind not in _TYPED for c in cands), dtype=bool, count=n)
    courtesy = np.zeros(len(distinct), dtype=np.float64)
    for k in np.unique(of_text[worded]).tolist():
        courtesy[k] = courtesy_ratio(distinct[k])
    cols["courtesy"] = np.where(worded, courtesy[of_text], 0.0)
    cols["range_first"], cols["range_second"] = _range_positions(doc, cands)
    cols["date_intro"], cols["time_after"] = _date_context(doc, cands)
    sums = doc.amount_sums()
    sum_of_two, part_of_sum = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    sum_above = np.zeros(n, dtype=bool)
    for j, c in enumerate(cands):
        if c.kind not in ("amount", "rule"):
            continue
        k = _cents(c.value)
        if k is not None:
            sum_of_two[j] = k in sums.sum_of_two.get(c.page, ())
            part_of_sum[j] = k in sums.part_of_sum.get(c.page, ())
            sum_above[j] = (c.line, k) in sums.sum_above
    cols["sum_of_two"], cols["part_of_sum"], cols["sum_above"] = sum_of_two, part_of_sum, sum_above
    X[np.arange(n), [_KIND_COLUMN[c.kind] for c in cands]] = 1
    # what the document says of its locale (the date order a reading should follow)
    X[:, _F["doc_order_evidence"]] = ctx.order_evidence
    X[:, _F["doc_usd"]] = ctx.currency == "USD"
    X[:, _F["doc_no_currency"]] = ctx.currency is None
    X[:, _F["doc_decimal_comma"]] = -1 if ctx.decimal_comma is None else ctx.decimal_comma
    for name, values in cols.items():
        X[:, _F[name]] = values
    return X


def alone_matrix(doc: DocLines, cands: list[Candidate]) -> np.ndarray:
    """Each candidate's :func:`base_matrix` row as if it were the only one in its list (the
    rule reader's value joins each field's pool on its own), all in one pass."""
    X = base_matrix(doc, cands)
    if not cands:
        return X
    # the columns that compare a candidate with the others in its list
    amount = np.asarray([c.kind == "amount" for c in cands], dtype=bool)
    date = np.asarray([c.kind == "date" for c in cands], dtype=bool)
    X[:, _F["amount_rank"]] = np.where(amount, 0, -1)
    X[:, _F["amount_is_max"]] = amount
    X[:, _F["date_rank"]] = np.where(date, 0, -1)
    X[:, _F["value_count"]] = 1
    X[:, _F["range_first"]] = X[:, _F["range_second"]] = 0
    return X


#: what joins the two dates of a range ("01/06/20 - 01/12/20", "du 3 au 9 mai")
_RANGE_SEP = re.compile(r"\s*(?:[-–—~]|to|thru|through|until|bis|au|al|a|hasta)\s*", re.I)


def _range_positions(doc: DocLines, cands: list[Candidate]) -> tuple[list[bool], list[bool]]:
    """Whether each date candidate opens or closes a range of two dates on its line."""
    spans: dict[int, set[tuple[int, int]]] = {}
    for c in cands:
        if c.kind == "date":
            spans.setdefault(c.line, set()).add((c.start, c.end))
    first, second = [False] * len(cands), [False] * len(cands)
    if not spans:
        return first, second
    for j, c in enumerate(cands):
        others = spans.get(c.line, ()) if c.kind == "date" else ()
        if not others:
            continue
        text = doc.lines[c.line].text
        first[j] = any(s >= c.end and _RANGE_SEP.fullmatch(text[c.end : s]) for s, _ in others)
        second[j] = any(e <= c.start and _RANGE_SEP.fullmatch(text[e : c.start])
                        for _, e in others)  # fmt: skip
    return first, second


#: words that introduce the date of what comes before them: 'Rechnung Nr. 12 vom 03.10.2025',
#: 'München, den 01.11.2024', 'Paris, le 3 mai 2024', 'Order 7 dated 5/1/24', 'el 3 de mayo'
_DATE_INTRO = re.compile(r"(?:\b(?:vom|den|am|le|du|del|el|dated|datiert|fechado)\s*|,\s*)$",
                         re.I)  # fmt: skip
#: a time of day right after a date: a printout's or a till's time stamp
_TIME_AFTER = re.compile(r"^\W{0,3}(?:\w{1,6}\W{1,3})?\d{1,2}[:.h]\d{2}\b")


def _date_context(doc: DocLines, cands: list[Candidate]) -> tuple[list[bool], list[bool]]:
    """Whether each date candidate is introduced by a dating word (or follows a comma, as
    in 'place, date') and whether a time of day follows it."""
    intro, time_after = [False] * len(cands), [False] * len(cands)
    for j, c in enumerate(cands):
        if c.kind != "date":
            continue
        text = doc.lines[c.line].text
        intro[j] = bool(c.start and _DATE_INTRO.search(text[max(0, c.start - 12) : c.start]))
        time_after[j] = bool(_TIME_AFTER.match(text[c.end : c.end + 16]))
    return intro, time_after


def _cents(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return round(value * 100)


@dataclass
class AmountSums:
    """Arithmetic that holds between the amounts printed with decimals on a page, whatever
    the document says around them: a total is the sum of a subtotal and a tax, or of the
    line amounts above it; a tax or a subtotal is a part of such a sum; cash tendered is the
    total plus the change. The scorer learns which of these tells a field's value."""

    sum_of_two: dict[int, set[int]]  # page -> cents that are the sum of two other amounts
    part_of_sum: dict[int, set[int]]  # page -> cents that added to another give a third
    sum_above: set[tuple[int, int]]  # (line, cents): the sum of 2+ line amounts right above

    @classmethod
    def of(cls, doc: DocLines, window: int = 30, most: int = 400) -> AmountSums:
        per_line: list[tuple[int, int, list[int]]] = []  # (page, line, cents on the line)
        spans = doc.amount_spans()
        for i, ln in enumerate(doc.lines):
            found = []
            for _, _, m_text in spans[i]:
                if not _DECIMALS.search(m_text):
                    continue
                value = _parse_amount(m_text, doc.ctx.decimal_comma)
                k = _cents(value)
                if k is not None:
                    found.append(k)
            if found:
                per_line.append((ln.page, i, found))
        sum_of_two: dict[int, set[int]] = {}
        part_of_sum: dict[int, set[int]] = {}
        sum_above: set[tuple[int, int]] = set()
        by_page: dict[int, list[tuple[int, list[int]]]] = {}  # in line order, as listed
        for p, i, f in per_line:
            by_page.setdefault(p, []).append((i, f))
        for page in sorted(by_page):
            rows = by_page[page]
            values = np.unique(np.asarray([k for _, f in rows for k in f], dtype=np.int64))
            if 2 <= len(values) <= most:
                pair = values[:, None] + values[None, :]
                off = ~np.eye(len(values), dtype=bool)  # two different amounts
                # c = a + b for amounts a != b: c is a sum of two, a (and b) a part of one
                hit = np.isin(pair, values) & off
                sum_of_two[page] = set(pair[hit].tolist())
                part_of_sum[page] = set(values[hit.any(axis=1)].tolist())
            # the line's last amount continues a column: a run of 2+ of them sums to one below
            column = [f[-1] for _, f in rows]
            for j, (i, found) in enumerate(rows):
                run = 0
                for n, k in enumerate(reversed(column[max(0, j - window) : j]), start=1):
                    run += k
                    if n >= 2 and run in found:
                        sum_above.add((i, run))
        return cls(sum_of_two, part_of_sum, sum_above)


@lru_cache(maxsize=65536)
def _text_features(text: str) -> tuple[float, ...]:
    """:func:`_shape` of a text, then whether it ends in decimals and shows a currency."""
    digits, alpha, upper = _char_counts(text)
    # in ASCII the currency pattern needs a '$' or three capitals (the other symbols are not
    # ASCII): most texts are answered without a search
    currency = (not text.isascii() or upper >= 3 or "$" in text) and bool(_CURRENCY.search(text))
    return (*_shape(text, digits, alpha, upper), bool(_DECIMALS.search(text)), currency)


@dataclass
class LineArrays:
    """Per-line values base_matrix reads, as arrays (one extra zero row for index -1)."""

    box: np.ndarray
    r_title: np.ndarray
    r_table: np.ndarray
    r_margin: np.ndarray
    page_w: np.ndarray  # by page number (pages not in the document: 1.0)
    page_h: np.ndarray


def _build_line_arrays(doc: DocLines) -> LineArrays:
    regions = [ln.region_class or "" for ln in doc.lines]
    box = np.zeros((len(doc.lines) + 1, 4), dtype=np.float64)
    if doc.lines:
        box[:-1] = [ln.bbox for ln in doc.lines]
    top = max([*doc.page_size, *(ln.page for ln in doc.lines), 0]) + 1
    page_w, page_h = np.ones(top), np.ones(top)
    for number, (w, h) in doc.page_size.items():
        page_w[number], page_h[number] = w, h
    return LineArrays(
        box,
        np.asarray([r in ("title", "header") for r in regions], dtype=bool),
        np.asarray([r == "table" for r in regions], dtype=bool),
        np.asarray([r in ("footer", "header", "reference") for r in regions], dtype=bool),
        page_w,
        page_h,
    )


_DECIMALS = re.compile(r"[.,]\d{2}\)?\s*\D*$")
_CURRENCY = re.compile(r"[$€£¥]|\b[A-Z]{3}\b")


@dataclass
class CandArrays:
    """What the label-similarity columns need of a list of candidates, as arrays (computed
    once per candidate pool; every field of the pool reuses them)."""

    line: np.ndarray  # index of the first line
    last: np.ndarray  # index of the last line
    whole: np.ndarray  # a whole single line (its label similarity is the line's)
    prefix: _Texts  # the text before the span
    own: _Texts  # the text of a part-line span (none for whole lines)
    trimmed: np.ndarray  # indices of the candidates of kind 'trimmed'

    @classmethod
    def of(cls, doc: DocLines, cands: list[Candidate]) -> CandArrays:
        lines = doc.lines
        whole = [c.start == 0 and len(c.lines) == 1 for c in cands]
        return cls(
            line=np.fromiter((c.line for c in cands), dtype=np.int64, count=len(cands)),
            last=np.fromiter((c.lines[-1] for c in cands), dtype=np.int64, count=len(cands)),
            whole=np.asarray(whole, dtype=bool),
            prefix=_Texts.of([lines[c.line].text[: c.start] if c.start else "" for c in cands]),
            own=_Texts.of([c.text if not w else "" for c, w in zip(cands, whole, strict=True)]),
            trimmed=np.asarray([j for j, c in enumerate(cands) if c.kind == "trimmed"], np.int64),
        )

    def __add__(self, other: CandArrays) -> CandArrays:
        return CandArrays(
            np.concatenate([self.line, other.line]),
            np.concatenate([self.last, other.last]),
            np.concatenate([self.whole, other.whole]),
            self.prefix + other.prefix,
            self.own + other.own,
            np.concatenate([self.trimmed, other.trimmed + len(self.line)]),
        )


@dataclass
class _Texts:
    """One text per candidate as label similarity reads them: the distinct cleaned texts
    and, per candidate, its text's index among them (-1: none, or too long for a label)."""

    distinct: list[str]
    index: np.ndarray

    @classmethod
    def of(cls, texts: list[str]) -> _Texts:
        seen: dict[str, int] = {}
        raw: dict[str, int] = {}  # each raw text's index (texts repeat: clean each once)
        index = []
        for t in texts:
            k = raw.get(t)
            if k is None:
                c = _label_text(t) if t else ""
                k = raw[t] = seen.setdefault(c, len(seen)) if c else -1
            index.append(k)
        return cls(list(seen), np.asarray(index, dtype=np.int64))

    def __add__(self, other: _Texts) -> _Texts:
        shift = np.where(other.index >= 0, other.index + len(self.distinct), -1)
        return _Texts(self.distinct + other.distinct, np.concatenate([self.index, shift]))


def _label_text(text: str) -> str:
    """A text as label similarity reads it ('' for one too long to be a label)."""
    text = _clean(text)
    return text if len(text) <= 80 else ""


class FieldFeatures:
    """Feature rows for one field's candidates in one document. ``lists``: an index of the
    schema's fields' phrase lists and this field's list in it (:func:`lists_index`: every
    field's label similarities come from one pass over the document's texts); without it,
    an index of the field's own phrases."""

    def __init__(
        self,
        doc: DocLines,
        spec: FieldSpec,
        phrases: FieldPhrases | None = None,
        lists: tuple[PhraseIndex, int] | None = None,
    ):
        self.doc = doc
        self.spec = spec
        self.fp = phrases or field_phrases(spec)
        # looked up once, not per text
        self._index, self._col = lists if lists is not None else (phrase_index(self.fp.phrases), 0)
        self._line_sim = self._scores(doc.label_texts())
        self.doc_max = max(self._line_sim, default=0.0)

    def _scores(self, cleaned: list[str]) -> list[float]:
        keep = [t for t in cleaned if t]
        it = iter(self._index.column(keep, self._col).tolist())
        return [next(it) if t else 0.0 for t in cleaned]

    def _text_scores(self, texts: _Texts) -> np.ndarray:
        return np.append(self._index.column(texts.distinct, self._col), 0.0)[texts.index]

    def matrix(
        self,
        cands: list[Candidate],
        n_typed: int = 1,
        base: np.ndarray | None = None,
        rule: tuple[str, float, str] | None = None,
        norms: list[str] | None = None,
        arrays: CandArrays | None = None,
        own_base: bool = False,
    ) -> np.ndarray:
        """Feature rows; ``rule``: the rule reader's (normalised value, confidence) for
        the field, when it found one (the model learns how far to trust it); ``norms``:
        the candidates' normalised values, when already known (:func:`normalised`);
        ``arrays``: :meth:`CandArrays.of` the candidates, when already known;
        ``own_base``: ``base`` is this call's to fill in (not shared: no copy is made)."""
        doc, spec = self.doc, self.spec
        if base is None:
            X = base_matrix(doc, cands)
        else:
            X = base if own_base else base.copy()
        if not cands:
            return X
        X[:, _F["f_date"]] = spec.is_date
        X[:, _F["f_number"]] = spec.is_number
        X[:, _F["f_integer"]] = spec.type == "integer"
        X[:, _F["f_string"]] = spec.type == "string" and not spec.is_date
        X[:, _F["f_pattern"]] = bool(spec.pattern)
        X[:, _F["f_enum"]] = bool(spec.enum)
        X[:, _F["field_group_w"]] = self.fp.groups[0][1] if self.fp.groups else 0.0
        role = self.fp.role
        X[:, _F["field_start"]], X[:, _F["field_end"]] = role == "start", role == "end"
        X[:, _F["n_fields_typed"]] = n_typed
        X[:, _F["s_doc_max"]] = self.doc_max
        if rule is not None:
            X[:, _F["rule_conf"]] = rule[1]
            if norms is None:
                norms = normalised(spec, cands)
        a = arrays if arrays is not None else CandArrays.of(doc, cands)
        if rule is not None:
            r0, bare = rule[0], rule[-1]
            agree = np.asarray([n == r0 for n in norms], dtype=bool)
            for j in a.trimmed.tolist():  # a trimmed name agrees with the rule's bare name
                agree[j] = agree[j] or norms[j] == bare
            X[:, _F["rule_agree"]] = agree
        nb = doc.neighbours()
        # each line's similarity, with a 0 at index -1 for 'no such neighbour'
        sim = np.append(np.asarray(self._line_sim, dtype=np.float64), 0.0)
        up = nb.above[a.line]
        prefix = self._text_scores(a.prefix)
        left, above = sim[nb.left[a.line]], sim[up]
        X[:, _F["s_prefix"]] = prefix
        X[:, _F["s_left"]] = left
        X[:, _F["s_above"]] = above
        X[:, _F["s_above2"]] = sim[nb.above[up]]  # above[-1] is -1: no line, 0
        X[:, _F["s_below"]] = sim[nb.below[a.last]]
        X[:, _F["s_header"]] = sim[nb.header[a.line]]
        X[:, _F["s_self"]] = np.where(a.whole, sim[a.line], self._text_scores(a.own))
        # float32 like the matrix the model was trained on
        local = np.maximum(np.maximum(prefix.astype(np.float32), left.astype(np.float32)),
                           above.astype(np.float32))  # fmt: skip
        X[:, _F["s_local_rel"]] = local / np.float32(self.doc_max + 1e-3)
        row_max = np.zeros(nb.n_rows + 1, dtype=np.float64)
        np.maximum.at(row_max, nb.row_of, sim[:-1])
        row_max[nb.n_rows] = 0.0  # lines in no row
        X[:, _F["s_row_max"]] = row_max[nb.row_of[a.line]]
        return X


def normalised(spec: FieldSpec, cands: list[Candidate]) -> list[str]:
    """The candidates' values in their comparable form (the same for every field of a
    candidate pool: it depends on the type only)."""
    from docvlm.evaluate import normalise

    # candidates share values ('12.50' on many lines): each distinct value once, keyed by
    # its type too (1 == 1.0 == True); -0.0 == 0.0 reads '-0.00': zeros are not shared
    done: dict[tuple[type, Any], str] = {}
    out = []
    if spec is not None and not (spec.is_date or spec.is_number):
        # a plain str's normalise() is its compact(): reached without the per-call checks
        for c in cands:
            value = c.value
            if value.__class__ is str:
                norm = done.get((str, value))
                if norm is None:
                    norm = done[(str, value)] = compact(value)
                out.append(norm)
            else:
                out.append(normalise(spec, value))
        return out
    for c in cands:
        value = c.value
        cls = value.__class__
        if (cls is not str and cls is not float and cls is not int) or not value:
            out.append(normalise(spec, value))
            continue
        key = (cls, value)
        norm = done.get(key)
        if norm is None:
            norm = done[key] = normalise(spec, value)
        out.append(norm)
    return out
