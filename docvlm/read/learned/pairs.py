"""A learned key→value linker for forms: candidate text units, pair features, a LightGBM model
exported to ONNX, and a greedy decoding.

Units are cut from a document's lines: every whole line, a line split at its first colon
(the label before it, the value after it), a line cut at its wide word gaps into segments (two
fields side by side, a table's row read as one line: every run of its pieces may be a key or
a value of any other unit), a colon-less line split at each word gap (as 'label value' only),
value blocks (a unit with the lines right under it, left-aligned or centred on it, for
addresses and paragraphs) and key blocks (a label wrapped over two or three lines, a table's
column header). Every unit knows the words it uses: two units conflict when they share one.
A candidate pair is a key unit and a value unit near it: on its row to the right (a little
off its line too), below it, further down its column (a table's header over a cell), or
written just above it (a name over a signature line). Each pair gets general features
(relative position in line heights, overlap, alignment, the texts' shapes, how label-like a
text is, the rank of the pair among the key's and the value's other candidates, overall and in
its direction, how many key-like units lie nearer to the value and value-like ones nearer to
the key, what lies between them) and the model gives P(the value belongs to the key). The
decoding takes the most probable links first; a key may take more values and a value serve
two keys at higher probabilities, and a linked key takes the cells stacked under (or after)
its value while their links stay above a lower threshold. Nothing is keyed on particular
words or field names.

The shipped model lives in ``docvlm/models/pairs`` (``pairs.onnx`` + ``pairs.json``: the
features it was trained with and the decoding thresholds chosen on its training documents).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docvlm.datamodel import Line
from docvlm.errors import ConfigError
from docvlm.lines import union_box
from docvlm.normalize import compact, levenshtein
from docvlm.read.learned.scorer import OnnxModel
from docvlm.read.learned.vocab import all_term_similarity_many
from docvlm.read.rules.context import DocContext
from docvlm.read.rules.items import _BOX, _KEY

EMBEDDED = Path(__file__).resolve().parents[2] / "models" / "pairs"
MODEL_FILE, ROLES_FILE, META_FILE = "pairs.onnx", "roles.onnx", "pairs.json"

_MARK = re.compile(r"[\[\]☐☑☒■□✓✔]|^\s*[xX]\s")

WHOLE, KEY_PART, VALUE_PART, BLOCK, SPLIT_KEY, SPLIT_VALUE, KEY_BLOCK, SEGMENT = range(8)
CUT_GAP = 0.6  # line heights: a word gap this wide may part two fields written on one line
MAX_RUN = 3  # pieces of a line (between its wide gaps) in one segment
MAX_SPLIT_WORDS = 10  # a colon-less line is tried as 'label value' at each word gap
MAX_BLOCK = 6  # lines of a value block
MAX_KEY_BLOCK = 3  # lines of a label wrapped over lines
ABOVE_REACH = 1.5  # line heights, a value written above its label (on a signature line)
MAX_PER_KEY = 24  # value candidates of one key, nearest first
RIGHT_REACH = 40.0  # line heights
BELOW_REACH = 8.0  # line heights, any alignment
COLUMN_REACH = 40.0  # line heights, for a value in the key's column
_REGIONS = {"residual": 0, "text": 1, "title": 2, "figure_caption": 3, "table": 4,
            "list": 5, "figure": 6, "header": 7, "footer": 8}  # fmt: skip


@dataclass
class Unit:
    """A piece of text that may be a key or a value: its lines and its own box."""

    text: str
    bbox: tuple[float, float, float, float]
    lines: list[Line]
    kind: int
    page: int
    ids: frozenset = field(default_factory=frozenset)  # id() of the lines it uses
    shape: list[float] = field(default_factory=list)
    head: int = -1  # a block: the index of the unit it starts with; a split: its other half
    #: the (line, word) tokens it uses (a line whose words do not spell its text: one token)
    toks: frozenset = field(default_factory=frozenset)

    @property
    def cy(self) -> float:
        return (self.bbox[1] + self.bbox[3]) / 2

    def as_line(self) -> Line:
        """The unit as one line (for provenance): the first line with the unit's text/box."""
        first = self.lines[0]
        return first.model_copy(
            update={"text": self.text, "bbox": self.bbox, "conf": min(ln.conf for ln in self.lines)}
        )


def _char_x(line: Line) -> list[float]:
    """An x position for every character of ``line.text`` (from its words where they match)."""
    text = line.text
    xs: list[float] = []
    words = line.words
    if words and " ".join(w.text for w in words) == text:
        for i, w in enumerate(words):
            n = max(len(w.text), 1)
            for c in range(len(w.text)):
                xs.append(w.bbox[0] + (w.bbox[2] - w.bbox[0]) * c / n)
            if i < len(words) - 1:
                xs.append(w.bbox[2])
        return xs
    x0, x1 = line.bbox[0], line.bbox[2]
    n = max(len(text), 1)
    return [x0 + (x1 - x0) * c / n for c in range(len(text))]


def _spelled(line: Line) -> bool:
    """Whether the line's words spell its text (then its parts are cut at word boundaries)."""
    return bool(line.words) and " ".join(w.text for w in line.words) == line.text


def _toks(line: Line, i: int = 0, j: int | None = None) -> frozenset:
    """The words ``i`` to ``j`` of ``line`` as (line, word) tokens; the whole line as one token
    when its words do not spell its text."""
    if not _spelled(line):
        return frozenset([(id(line), -1)])
    j = len(line.words) if j is None else j
    return frozenset((id(line), w) for w in range(i, j))


def _char_toks(line: Line, start: int, end: int) -> frozenset:
    """The tokens of the words of ``line`` that overlap its characters ``start`` to ``end``."""
    if not _spelled(line):
        return frozenset([(id(line), -1)])
    out, at = [], 0
    for i, w in enumerate(line.words):
        if at < end and at + len(w.text) > start:
            out.append((id(line), i))
        at += len(w.text) + 1
    return frozenset(out) or frozenset([(id(line), -1)])


def split_colon(line: Line) -> tuple[Unit, Unit | None] | None:
    """'Label: value' as a key unit and a value unit (None when nothing follows the colon)."""
    m = _KEY.match(line.text)
    if not m or not re.search(r"[^\W\d_]", m.group(1)):
        return None
    xs = _char_x(line)
    x0, y0, x1, y1 = line.bbox
    colon = line.text.index(":", m.start(1) + len(m.group(1)) - 1 if m.group(1) else 0)
    split = xs[min(colon, len(xs) - 1)] if xs else x1
    key = Unit(m.group(1).strip(), (x0, y0, max(split, x0 + 1), y1), [line], KEY_PART,
               line.page, frozenset([id(line)]), toks=_char_toks(line, 0, colon + 1))  # fmt: skip
    rest = m.group(2).strip()
    if not rest:
        return key, None
    start = m.start(2)
    vx = xs[start] if start < len(xs) else split
    value = Unit(rest, (min(vx, x1 - 1), y0, x1, y1), [line], VALUE_PART, line.page,
                 frozenset([id(line)]), toks=_char_toks(line, start, len(line.text)))  # fmt: skip
    return key, value


def _shape(u: Unit, lh: float, page_w: float, page_h: float, term: float) -> list[float]:
    """The unit's own features (``term``: how much its text reads like a business label)."""
    t = u.text
    chars = t.replace(" ", "")
    n = max(len(chars), 1)
    letters = [c for c in chars if c.isalpha()]
    src = u.lines[0].text.rstrip()
    return [
        float(u.kind),
        float(len(u.lines)),
        float(len(t)),
        float(len(t.split())),
        sum(c.isdigit() for c in chars) / n,
        len(letters) / n,
        (sum(c.isupper() for c in letters) / len(letters)) if letters else 0.0,
        float(t.rstrip().endswith(":") or (u.kind == KEY_PART)),
        float(src.endswith(":")),
        float(bool(_MARK.search(t))),
        float(t.rstrip().endswith("?")),
        float(bool(t[:1].isupper())),
        sum(not c.isalnum() for c in chars) / n,
        term,
        (u.bbox[2] - u.bbox[0]) / lh,
        (u.bbox[3] - u.bbox[1]) / lh,
        u.bbox[0] / max(page_w, 1.0),
        u.bbox[1] / max(page_h, 1.0),
        min(ln.conf for ln in u.lines),
        float(_REGIONS.get(u.lines[0].region_class, 9)),
        float(":" in t),
    ]


SHAPE = ("kind", "n_lines", "chars", "words", "digit_ratio", "alpha_ratio", "upper_ratio",
         "colon_label", "line_ends_colon", "has_mark", "question_mark", "capitalised",
         "punct_ratio", "term_similarity", "width", "height", "x_page", "y_page", "conf",
         "region", "has_colon")  # fmt: skip
RELATION = ("dx", "dy", "dcx", "dx0", "dcy", "x_overlap", "y_overlap", "same_row", "same_line",
            "direction", "distance", "rank_of_value", "rank_of_key", "n_values", "n_keys",
            "between", "between_colon", "value_starts_key", "x1_align", "rank_of_value_dir",
            "rank_of_key_dir", "n_values_dir", "n_keys_dir")  # fmt: skip
BASE = tuple(f"k_{n}" for n in SHAPE) + tuple(f"v_{n}" for n in SHAPE) + RELATION
ROLE_COLUMNS = (
    "k_p_key",
    "k_p_value",
    "v_p_key",
    "v_p_value",
    "nearer_values",
    "nearer_keys",
    "nearer_values_dir",
    "nearer_keys_dir",
)
NEIGHBOURS = ("right_gap", "right_colon", "right_alpha", "left_gap", "left_colon", "below_gap",
              "below_dx0", "below_colon", "above_gap", "above_colon", "row_lines")  # fmt: skip
ROLE_FEATURES = SHAPE + NEIGHBOURS
FEATURES = (BASE + ROLE_COLUMNS + tuple(f"k_{n}" for n in NEIGHBOURS)
            + tuple(f"v_{n}" for n in NEIGHBOURS))  # fmt: skip


@dataclass
class Candidates:
    units: list[Unit]
    keys: list[int]  # unit indices that may be keys
    pairs: list[tuple[int, int]]  # (key unit, value unit)
    X: np.ndarray  # BASE features of every pair (the role columns are added by with_roles)
    line_height: float
    R: np.ndarray  # ROLE_FEATURES of every unit
    #: the distance of every pair and its groups: the pairs of its key, of its value, of its
    #: key in its direction, of its value in its direction (for the role-aware ranks)
    dist: np.ndarray = field(default_factory=lambda: np.zeros(0))
    groups: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), int))


def units_of(ctx: DocContext) -> tuple[list[Unit], list[int]]:
    """Units of every line in reading order; the indices of those that may be keys."""
    units: list[Unit] = []
    keys: list[int] = []
    value_starts: list[int] = []
    lh = ctx.line_height
    for ln in ctx.lines:
        whole = Unit(
            ln.text.strip(),
            tuple(ln.bbox),
            [ln],
            WHOLE,
            ln.page,
            frozenset([id(ln)]),
            toks=_toks(ln),
        )
        if not whole.text:
            continue
        sp = split_colon(ln)
        if sp is not None and (sp[1] is not None):
            keys.append(len(units))
            units.append(sp[0])
            value_starts.append(len(units))
            units.append(sp[1])
        elif sp is not None:  # 'Label:' alone: the whole line is the key
            keys.append(len(units))
            units.append(whole)
            continue
        else:
            keys.append(len(units))
            value_starts.append(len(units))
            units.append(whole)
            continue
        units.append(whole)  # the whole 'Label: value' line may be a key or a value too
        keys.append(len(units) - 1)
    # a line cut at its wide word gaps: every run of its pieces (fields side by side on a line,
    # a table's row read as one line) may be a key or a value of any other unit
    for ln in ctx.lines:
        for i, j in _runs(ln, lh):
            ws = ln.words[i:j]
            keys.append(len(units))
            units.append(Unit(" ".join(w.text for w in ws),
                              (ws[0].bbox[0], ln.bbox[1], ws[-1].bbox[2], ln.bbox[3]), [ln],
                              SEGMENT, ln.page, frozenset([id(ln)]), toks=_toks(ln, i, j)))  # fmt: skip
    # a colon-less line as 'label value', split at each gap between its words
    for ln in ctx.lines:
        words = ln.words
        if (":" in ln.text or not 2 <= len(words) <= MAX_SPLIT_WORDS
                or " ".join(w.text for w in words) != ln.text):  # fmt: skip
            continue
        for i in range(1, len(words)):
            kt = " ".join(w.text for w in words[:i])
            vt = " ".join(w.text for w in words[i:])
            if not re.search(r"[^\W\d_]", kt):
                continue
            kb = (ln.bbox[0], ln.bbox[1], words[i - 1].bbox[2], ln.bbox[3])
            vb = (words[i].bbox[0], ln.bbox[1], ln.bbox[2], ln.bbox[3])
            ids = frozenset([id(ln)])
            n = len(units)
            units.append(Unit(kt, kb, [ln], SPLIT_KEY, ln.page, ids, head=n + 1,
                              toks=_toks(ln, 0, i)))  # fmt: skip
            units.append(Unit(vt, vb, [ln], SPLIT_VALUE, ln.page, ids, head=n,
                              toks=_toks(ln, i)))  # fmt: skip
            keys.append(n)
    # value blocks: a value start with the left-aligned lines right under it
    tops = {id(r): r.top for r in ctx.rows}
    for start_index in value_starts:
        start = units[start_index]
        block = [start.lines[0]]
        x0 = start.bbox[0]
        bottom = start.bbox[3]
        used = {id(start.lines[0])}
        toks = set(start.toks)
        row = ctx.row(start.lines[0])
        rows = _rows_under(ctx, tops, row, 0.5 * lh)
        boxes = [start.bbox]
        cx = (start.bbox[0] + start.bbox[2]) / 2
        for r in rows:
            if tops[id(r)] - bottom > 0.9 * lh:
                break
            nxt = [
                ln
                for ln in r.lines
                if id(ln) not in used
                and (
                    abs(ln.bbox[0] - x0) <= 1.2 * lh
                    or abs((ln.bbox[0] + ln.bbox[2]) / 2 - cx) <= 1.5 * lh
                )
            ]
            if not nxt:
                if any(min(ln.bbox[2], start.bbox[2]) - max(ln.bbox[0], x0) > 0 for ln in r.lines):
                    break  # something else sits under the block
                continue
            ln = nxt[0]
            block.append(ln)
            used.add(id(ln))
            toks |= _toks(ln)
            boxes.append(tuple(ln.bbox))
            bottom = ln.bbox[3]
            text = " ".join([start.text] + [b.text.strip() for b in block[1:]])
            box = union_box(boxes)
            units.append(
                Unit(
                    text,
                    box,
                    list(block),
                    BLOCK,
                    start.page,
                    frozenset(used),
                    head=start_index,
                    toks=frozenset(toks),
                )
            )
            if len(block) >= MAX_BLOCK:
                break
    _key_blocks(ctx, units, keys, tops)
    return units, keys


def _rows_under(ctx: DocContext, tops: dict, row, margin: float) -> list:
    """The rows of ``row``'s page whose top (``tops``: by row id) lies more than ``margin`` under
    its top."""
    top = tops[id(row)] + margin
    return [r for r in ctx.rows if r.page == row.page and tops[id(r)] > top]


def _runs(line: Line, lh: float) -> list[tuple[int, int]]:
    """The word ranges of the runs of up to MAX_RUN pieces of ``line`` cut at its word gaps
    of at least CUT_GAP line heights (none when it has no such gap)."""
    ws = line.words
    if len(ws) < 2 or not _spelled(line):
        return []
    cuts = [i for i in range(1, len(ws)) if ws[i].bbox[0] - ws[i - 1].bbox[2] >= CUT_GAP * lh]
    if not cuts:
        return []
    bounds = [0, *cuts, len(ws)]
    n = len(bounds) - 1
    return [(bounds[a], bounds[b]) for a in range(n) for b in range(a + 1, min(a + MAX_RUN, n) + 1)
            if (a, b) != (0, n)]  # fmt: skip


def _label_like(text: str) -> bool:
    """A short text of mostly letters (a label's line), by its shape only."""
    chars = text.replace(" ", "")
    letters = sum(c.isalpha() for c in chars)
    return 1 <= len(text.split()) <= 8 and letters >= 2 and letters >= 0.5 * len(chars)


def _key_blocks(ctx: DocContext, units: list[Unit], keys: list[int], tops: dict) -> None:
    """A label wrapped over lines: a label-like line with the label-like lines right under it,
    left-aligned or centred on it (a table's column header of two or three lines), as a key."""
    lh = ctx.line_height
    for start_index in list(keys):
        start = units[start_index]
        if start.kind != WHOLE or start.text.rstrip().endswith(":") or not _label_like(start.text):
            continue
        first = start.lines[0]
        block, used = [first], {id(first)}
        x0, cx = first.bbox[0], (first.bbox[0] + first.bbox[2]) / 2
        bottom = first.bbox[3]
        row = ctx.row(first)
        for r in _rows_under(ctx, tops, row, 0.5 * lh):
            if tops[id(r)] - bottom > 0.6 * lh:
                break
            nxt = [ln for ln in r.lines if id(ln) not in used and ":" not in ln.text[:-1]
                   and (abs(ln.bbox[0] - x0) <= 1.2 * lh
                        or abs((ln.bbox[0] + ln.bbox[2]) / 2 - cx) <= 1.5 * lh)]  # fmt: skip
            if not nxt or not _label_like(nxt[0].text):
                break
            ln = nxt[0]
            block.append(ln)
            used.add(id(ln))
            bottom = ln.bbox[3]
            box = union_box([b.bbox for b in block])
            text = " ".join(b.text.strip() for b in block)
            keys.append(len(units))
            units.append(Unit(text, box, list(block), KEY_BLOCK, start.page, frozenset(used),
                              head=start_index, toks=frozenset().union(*map(_toks, block))))  # fmt: skip
            if len(block) >= MAX_KEY_BLOCK or ln.text.rstrip().endswith(":"):
                break


def _gap(a: float, b: float, c: float, d: float) -> float:
    """Distance between intervals [a, b] and [c, d] (0 when they overlap)."""
    return max(0.0, c - b, a - d)


def _search(units: list[Unit], keys: list[int], members: list[int], lh: float) -> list:
    """The (key, value, direction, distance) candidates of one page's units, vectorised: a
    value on the key's row to the right (0: after its own colon, 1: another segment), below it
    (2: near, 3: further down its column) or written just above it (4)."""
    on_page = set(members)
    page_keys = [k for k in keys if k in on_page]
    idx = np.asarray(members)
    us = [units[i] for i in members]
    box = np.asarray([u.bbox for u in us], float).reshape(-1, 4)
    first = np.asarray([u.lines[0].bbox for u in us], float).reshape(-1, 4)
    kind = np.asarray([u.kind for u in us])
    line_no: dict[int, int] = {}
    for u in us:
        for i in u.ids:
            line_no.setdefault(i, len(line_no))
    inc = np.zeros((len(us), max(len(line_no), 1)), bool)
    for r, u in enumerate(us):
        inc[r, [line_no[i] for i in u.ids]] = True
    first_line = np.asarray([id(u.lines[0]) for u in us])
    allowed = ~np.isin(kind, (SPLIT_KEY, SPLIT_VALUE, KEY_BLOCK))
    after_colon = np.isin(kind, (VALUE_PART, BLOCK))
    vx0, vy0, vx1, vy1 = box.T
    fy0, fy1 = first[:, 1].copy(), first[:, 3].copy()
    pos = {u: r for r, u in enumerate(members)}
    out: list[tuple[int, int, int, float]] = []
    for k in page_keys:
        ku = units[k]
        kx0, ky0, kx1, ky1 = ku.bbox
        if ku.kind == SPLIT_KEY:
            out.append((k, ku.head, 0, max(units[ku.head].bbox[0] - kx1, 0.0) / lh))
            continue
        r = pos[k]
        shares = (inc & inc[r]).any(axis=1)  # on a line of the key: do they share a word?
        for j in np.nonzero(shares)[0].tolist():
            if not (us[j].toks & ku.toks):
                shares[j] = False
        same_line = (
            (ku.kind == KEY_PART) & (first_line == id(ku.lines[0])) & after_colon & (vx0 >= kx1 - 1)
        )
        ok = allowed & (~shares | same_line)
        ok[r] = False
        y0 = np.where(same_line, ky0, vy0)
        f0 = np.where(same_line, ky0, fy0)
        yov = np.minimum(ky1, fy1) - np.maximum(ky0, f0)
        last = ku.lines[-1].bbox
        kcy = (ky0 + ky1) / 2 if ku.kind == KEY_BLOCK else (last[1] + last[3]) / 2
        fcy = (f0 + fy1) / 2
        right = same_line | (
            (yov > 0.25 * np.minimum(ky1 - ky0, fy1 - f0)) & (vx0 >= kx1 - 0.5 * lh)
        )
        right_ok = right & ((vx0 - kx1) <= RIGHT_REACH * lh)
        below = ~right & ((y0 >= ky0 + 0.5 * lh) | ((fcy - kcy >= 0.35 * lh) & (y0 > ky0)))
        dy = (y0 - ky1) / lh
        xgap = np.maximum(0.0, np.maximum(vx0 - kx1, kx0 - vx1)) / lh
        near = below & (dy <= BELOW_REACH) & (vx1 > kx0 - 4 * lh) & (vx0 < kx1 + 12 * lh)
        column = below & ~near & (dy <= COLUMN_REACH) & (xgap == 0)
        above = (~right & ~below & (kind != BLOCK) & (kcy - fcy >= 0.35 * lh)
                 & (vy1 <= ky1) & ((ky0 - vy1) <= ABOVE_REACH * lh)
                 & (np.minimum(kx1, vx1) - np.maximum(kx0, vx0) > 0))  # fmt: skip
        direction = np.select([right & same_line, right, near, column, above], [0, 1, 2, 3, 4], -1)
        ok &= np.where(right, right_ok, near | column | above)
        dist = np.select(
            [right, near | column],
            [np.maximum(vx0 - kx1, 0.0) / lh, np.hypot(np.maximum(dy, 0.0), xgap)],
            np.maximum(ky0 - vy1, 0.0) / lh + 0.5,
        )
        sel = np.nonzero(ok)[0]
        if not len(sel):
            continue
        vs = idx[sel]
        order = np.lexsort((direction[sel], vs, dist[sel]))
        sel, vs = sel[order], vs[order]
        single = kind[sel] != BLOCK
        heads = set(vs[single][:MAX_PER_KEY].tolist())
        for j, v in zip(sel.tolist(), vs.tolist(), strict=True):
            if (v in heads) if kind[j] != BLOCK else (units[v].head in heads):
                out.append((k, v, int(direction[j]), float(dist[j])))
    return out


def candidates(ctx: DocContext) -> Candidates:
    """Every candidate (key, value) pair of a document with its feature rows."""
    units, keys = units_of(ctx)
    lh = max(ctx.line_height, 1.0)
    sizes = {p.number: (float(p.width or 1), float(p.height or 1)) for p in ctx.pages}
    # the label likeness of every unit's text in one pass (the costly part of their shapes)
    terms = all_term_similarity_many([u.text if len(u.text) <= 60 else "" for u in units])
    for u, term in zip(units, terms, strict=True):
        w, h = sizes.get(u.page, (1000.0, 1000.0))
        u.shape = _shape(u, lh, w, h, term)
    by_page: dict[int, list[int]] = {}
    for i, u in enumerate(units):
        by_page.setdefault(u.page, []).append(i)
    raw: list[tuple[int, int, int, float]] = []  # key, value, direction, distance
    for members in by_page.values():
        raw.extend(_search(units, keys, members, lh))
    line_boxes: dict[int, list] = {}
    for u in units:
        if u.kind == WHOLE:
            line_boxes.setdefault(u.page, []).append((u.bbox, u.text))
    X, pairs, groups, dist = _relations(ctx, units, raw, line_boxes, lh)
    return Candidates(units, keys, pairs, X, lh, _role_rows(units, line_boxes, lh), dist, groups)


def _ranks(groups: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's rank by distance in its group (ties by order) and its group's size."""
    order = np.lexsort((np.arange(len(dist)), dist, groups))
    g = groups[order]
    start = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0)) if len(g) else g
    rank = np.empty(len(g))
    rank[order] = np.arange(len(g)) - first
    size = np.bincount(groups, minlength=int(groups.max()) + 1 if len(groups) else 0)[groups]
    return rank, size.astype(float)


def _relations(ctx: DocContext, units: list[Unit], raw: list, line_boxes: dict, lh: float):
    """The BASE feature rows of the candidate pairs, their (key, value) units, rank groups and
    distances."""
    n = len(raw)
    if not n:
        return (np.zeros((0, len(BASE)), np.float32), [], np.zeros((0, 4), int), np.zeros(0))
    k = np.fromiter((r[0] for r in raw), int, n)
    v = np.fromiter((r[1] for r in raw), int, n)
    d = np.fromiter((r[2] for r in raw), int, n)
    dist = np.fromiter((r[3] for r in raw), float, n)
    groups = np.zeros((n, 4), int)
    ids: dict[tuple, int] = {}
    for i, (kk, vv, dd) in enumerate(zip(k.tolist(), v.tolist(), np.where(d == 3, 2, d).tolist(),
                                         strict=True)):  # fmt: skip
        groups[i] = (ids.setdefault(("k", kk), len(ids)), ids.setdefault(("v", vv), len(ids)),
                     ids.setdefault(("k", kk, dd), len(ids)), ids.setdefault(("v", vv, dd), len(ids)))  # fmt: skip
    rank_v, n_v = _ranks(groups[:, 0], dist)  # the value among the key's candidates
    rank_k, n_k = _ranks(groups[:, 1], dist)  # the key among the value's
    # the same in the pair's own direction (a table cell: the nearest header above it)
    rank_vd, n_vd = _ranks(groups[:, 2], dist)
    rank_kd, n_kd = _ranks(groups[:, 3], dist)
    ub = np.asarray([u.bbox for u in units], float).reshape(-1, 4)
    fb = np.asarray([u.bbox if u.kind == VALUE_PART else u.lines[0].bbox for u in units],
                    float).reshape(-1, 4)  # fmt: skip
    shape = np.asarray([u.shape for u in units], float).reshape(len(units), len(SHAPE))
    row_of = np.asarray([id(ctx.row(u.lines[0])) for u in units])
    K, V, F = ub[k], ub[v], fb[v]
    kw, kh = np.maximum(K[:, 2] - K[:, 0], 1.0), np.maximum(K[:, 3] - K[:, 1], 1.0)
    vw, vh = np.maximum(V[:, 2] - V[:, 0], 1.0), np.maximum(F[:, 3] - F[:, 1], 1.0)
    xov = (np.minimum(K[:, 2], V[:, 2]) - np.maximum(K[:, 0], V[:, 0])) / np.minimum(kw, vw)
    yov = (np.minimum(K[:, 3], F[:, 3]) - np.maximum(K[:, 1], F[:, 1])) / np.minimum(kh, vh)
    between, between_colon = _between(units, raw, line_boxes)
    rel = np.stack([
        (V[:, 0] - K[:, 2]) / lh,
        (V[:, 1] - K[:, 3]) / lh,
        ((V[:, 0] + V[:, 2]) - (K[:, 0] + K[:, 2])) / 2 / lh,
        (V[:, 0] - K[:, 0]) / lh,
        ((F[:, 1] + F[:, 3]) - (K[:, 1] + K[:, 3])) / 2 / lh,
        xov,
        yov,
        (row_of[k] == row_of[v]).astype(float),
        (d == 0).astype(float),
        d.astype(float),
        dist,
        rank_v,
        rank_k,
        n_v,
        n_k,
        between,
        between_colon,
        ((shape[v, 7] > 0) | (shape[v, 8] > 0)).astype(float),
        (V[:, 2] - K[:, 2]) / lh,
        rank_vd,
        rank_kd,
        n_vd,
        n_kd,
    ], axis=1)  # fmt: skip
    X = np.concatenate([shape[k], shape[v], rel], axis=1).astype(np.float32)
    return X, list(zip(k.tolist(), v.tolist(), strict=True)), groups, dist


def _between(units: list[Unit], raw: list, line_boxes: dict) -> tuple[np.ndarray, np.ndarray]:
    """The lines strictly between every pair's key and value (on the row between them, or
    under the key above the value, across both their widths), and those ending with a colon."""
    between = np.zeros(len(raw))
    colon = np.zeros(len(raw))
    if not raw:
        return between, colon
    k = np.fromiter((r[0] for r in raw), int, len(raw))
    v = np.fromiter((r[1] for r in raw), int, len(raw))
    d = np.fromiter((r[2] for r in raw), int, len(raw))
    ub = np.asarray([u.bbox for u in units], float).reshape(-1, 4)
    page = np.asarray([u.page for u in units])
    kb, vb = ub[k], ub[v]
    for pg, lines in line_boxes.items():
        lb = np.asarray([b for b, _ in lines], float).reshape(-1, 4)
        lc = np.asarray([t.rstrip().endswith(":") for _, t in lines], float)
        on = np.nonzero((page[k] == pg) & np.isin(d, (1, 2, 3)))[0]
        for chunk in range(0, len(on), 2048):
            n = on[chunk : chunk + 2048]
            K, V = kb[n][:, None, :], vb[n][:, None, :]
            L = lb[None, :, :]
            kh = np.maximum(K[..., 3] - K[..., 1], 1.0)
            row = (
                (L[..., 0] >= K[..., 2] - 1)
                & (L[..., 2] <= V[..., 0] + 1)
                & (np.minimum(L[..., 3], K[..., 3]) - np.maximum(L[..., 1], K[..., 1]) > 0.4 * kh)
            )
            lo, hi = np.minimum(K[..., 0], V[..., 0]), np.maximum(K[..., 2], V[..., 2])
            col = (
                (L[..., 1] >= K[..., 3] - 1)
                & (L[..., 3] <= V[..., 1] + 1)
                & (L[..., 2] > lo)
                & (L[..., 0] < hi)
            )
            hit = np.where((d[n] == 1)[:, None], row, col)
            between[n] = hit.sum(axis=1)
            colon[n] = (hit * lc[None, :]).sum(axis=1)
    return between, colon


def _nearer(groups: np.ndarray, dist: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """For every pair: the sum of ``weight`` over the pairs of its group that are nearer."""
    order = np.lexsort((dist, groups))
    w = weight[order]
    csum = np.cumsum(w) - w  # the sum before each, over all groups
    g = groups[order]
    start = np.r_[True, g[1:] != g[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    out = np.empty(len(g))
    out[order] = csum - csum[first]
    return out


def _role_rows(units: list[Unit], line_boxes: dict, lh: float) -> np.ndarray:
    """Each unit's shape and what surrounds it: the nearest line on its right and left, below
    and above it (gaps in line heights, whether it is a colon label)."""
    far = 99.0
    out = np.zeros((len(units), len(ROLE_FEATURES)), np.float32)
    if not units:
        return out
    out[:, : len(SHAPE)] = np.asarray([u.shape for u in units], np.float32)
    page = np.asarray([u.page for u in units])
    for pg in np.unique(page):
        rows = np.nonzero(page == pg)[0]
        lines = line_boxes.get(int(pg), ())
        res = np.tile(
            np.array([far, 0, 0, far, 0, far, 0, 0, far, 0, 0], np.float32), (len(rows), 1)
        )
        if lines:
            U = np.asarray([units[i].bbox for i in rows], float)[:, None, :]
            L = np.asarray([b for b, _ in lines], float)[None, :, :]
            colon = np.asarray([t.rstrip().endswith(":") for _, t in lines], float)
            letters = np.asarray([sum(c.isalpha() for c in t) / max(len(t), 1) for _, t in lines])
            x0, y0, x1, y1 = (U[..., i] for i in range(4))
            l0, t0, l1, t1 = (L[..., i] for i in range(4))
            h = np.maximum(y1 - y0, 1.0)
            own = (l0 >= x0 - 1) & (l1 <= x1 + 1) & (t0 >= y0 - 1) & (t1 <= y1 + 1)
            on_row = ~own & (np.minimum(y1, t1) - np.maximum(y0, t0) > 0.4 * np.minimum(h, t1 - t0))
            res[:, 10] = on_row.sum(axis=1)
            is_right = on_row & (l0 >= x1 - 2)
            is_left = on_row & ~is_right & (l1 <= x0 + 2)
            other = ~own & ~on_row & (np.minimum(x1, l1) - np.maximum(x0, l0) > 0)
            is_below = other & (t0 >= y1 - 0.5 * h)
            is_above = other & ~is_below & (t1 <= y0 + 0.5 * h)
            for mask, gap, col, extra in ((is_right, (l0 - x1) / lh, 0, "right"),
                                          (is_left, (x0 - l1) / lh, 3, "left"),
                                          (is_below, (t0 - y1) / lh, 5, "below"),
                                          (is_above, (y0 - t1) / lh, 8, "above")):  # fmt: skip
                g = np.where(mask, gap, np.inf)
                j = np.argmin(g, axis=1)
                r = np.nonzero(g[np.arange(len(rows)), j] < far)[0]
                j = j[r]
                res[r, col] = g[r, j]
                if extra == "right":
                    res[r, 1], res[r, 2] = colon[j], letters[j]
                elif extra == "below":
                    res[r, 6], res[r, 7] = ((l0 - x0) / lh)[r, j], colon[j]
                else:
                    res[r, col + 1] = colon[j]
        out[rows, len(SHAPE) :] = res
    return out


def with_roles(cands: Candidates, roles: np.ndarray) -> np.ndarray:
    """The pair features with the role probabilities (P(key), P(value) of every unit) of the
    key and the value added."""
    if not cands.pairs:
        return np.zeros((0, len(FEATURES)), np.float32)
    k = np.fromiter((a for a, _ in cands.pairs), int, len(cands.pairs))
    v = np.fromiter((b for _, b in cands.pairs), int, len(cands.pairs))
    pk, pv = roles[k, 0].astype(float), roles[v, 1].astype(float)
    g, dist = cands.groups, cands.dist
    extra = np.stack([roles[k, 0], roles[k, 1], roles[v, 0], roles[v, 1],
                      _nearer(g[:, 0], dist, pv),  # value-like units nearer to the key
                      _nearer(g[:, 1], dist, pk),  # key-like units nearer to the value
                      _nearer(g[:, 2], dist, pv), _nearer(g[:, 3], dist, pk)], axis=1)  # fmt: skip
    around = len(SHAPE)  # the neighbour columns of the role rows
    return np.concatenate(
        [cands.X, extra.astype(np.float32), cands.R[k, around:], cands.R[v, around:]], axis=1
    )


def role_labels(cands: Candidates, truth: list[dict]) -> np.ndarray:
    """0: neither, 1: a unit whose text is a truth key, 2: one whose text is a truth value."""
    keys = {compact(t.get("key") or "") for t in truth}
    values = {compact(t.get("value") or "") for t in truth}
    out = np.zeros(len(cands.units), dtype=int)
    for i, u in enumerate(cands.units):
        if compact(u.text) in keys:
            out[i] = 1
        elif compact(clean_value(u.text)) in values:
            out[i] = 2
    return out


@dataclass
class Link:
    key: Unit
    value: Unit
    p: float


def decode(
    cands: Candidates,
    probs: np.ndarray,
    threshold: float,
    second: float = 1.1,
    share: float = 1.1,
    chain: float = 1.1,
) -> list[Link]:
    """Greedy links, most probable first: a word is in a key or in a value, a key takes one value
    (more only at probability ``second``: a table's column header), a value serves one key
    (another only at probability ``share``, and as the same unit: a table cell under its
    column header and right of its row label). Then a key linked to a value below it (or
    right of it on its row) also takes the values stacked right under that value (or after it
    on the row), one after the other, while their link has probability ``chain``: the cells of
    a table's column under its header (of a row after its label)."""
    key_toks: set = set()  # the words used by keys
    taken: dict[int, int] = {}  # key unit -> values taken
    served: dict[int, int] = {}  # value unit -> keys served
    key_of: dict = {}  # a word -> the key unit using it
    value_of: dict = {}  # a word -> the value unit using it
    out: list[Link] = []
    linked: list[int] = []  # the candidate index of every link

    def take(n: int, p: float, chained: bool = False) -> bool:
        k, v = cands.pairs[n]
        ku, vu = cands.units[k], cands.units[v]
        shared = ku.toks & vu.toks  # a word split at its colon
        if (vu.toks - shared) & key_toks or (ku.toks - shared) & value_of.keys():
            return False
        if any(key_of.get(i, k) != k for i in ku.toks):
            return False
        if any(value_of.get(i, v) != v for i in vu.toks):
            return False
        if served.get(v, 0) >= 1 and p < share:
            return False
        if not chained and taken.get(k, 0) >= 1 and p < second:
            return False
        taken[k] = taken.get(k, 0) + 1
        served[v] = served.get(v, 0) + 1
        key_toks.update(ku.toks)
        for i in ku.toks:
            key_of[i] = k
        for i in vu.toks:
            value_of[i] = v
        out.append(Link(ku, vu, p))
        linked.append(n)
        return True

    for n in np.argsort(-probs, kind="stable"):
        p = float(probs[n])
        if p < threshold:
            break
        take(int(n), p)
    if chain <= 1.0 and linked:
        _chain(cands, probs, chain, list(linked), take)
    return out


def _chain(cands: Candidates, probs: np.ndarray, chain: float, seeds: list[int], take) -> None:
    """Extend each link down its value's column (or along its value's row): the key's nearest
    candidate value right under (after) the last one taken, while ``take`` accepts it."""
    direction = cands.X[:, BASE.index("direction")]
    lh = cands.line_height
    by_key: dict[int, list[int]] = {}
    for n, (k, _v) in enumerate(cands.pairs):
        by_key.setdefault(k, []).append(n)
    done: set[int] = set(seeds)
    for n0 in seeds:
        k, v = cands.pairs[n0]
        d0 = direction[n0]
        if d0 not in (1, 2, 3):
            continue
        prev = cands.units[v]
        while True:
            best, where = None, math.inf
            for n in by_key[k]:
                w = cands.units[cands.pairs[n][1]]
                if n in done or w.kind == BLOCK or w.page != prev.page:
                    continue
                if d0 == 1:  # along the row
                    if direction[n] != 1 or w.bbox[0] < prev.bbox[2] - 2:
                        continue
                    at = w.bbox[0]
                else:  # down the column
                    if (direction[n] not in (2, 3) or w.bbox[1] < prev.bbox[3] - 0.25 * lh
                            or min(w.bbox[2], prev.bbox[2]) - max(w.bbox[0], prev.bbox[0]) <= 0):  # fmt: skip
                        continue
                    at = w.bbox[1]
                if at < where:
                    best, where = n, at
            if best is None or float(probs[best]) < chain:
                break
            w = cands.units[cands.pairs[best][1]]
            if d0 != 1 and w.bbox[1] - prev.bbox[3] > 1.5 * lh:
                break
            done.add(best)
            if not take(best, float(probs[best]), chained=True):
                break
            prev = w


def clean_value(text: str) -> str:
    return _BOX.sub("", text).strip()


class PairModel:
    """The role and link models of a folder (default: the shipped one), loaded once."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else EMBEDDED
        model, roles, meta = (self.folder / MODEL_FILE, self.folder / ROLES_FILE,
                              self.folder / META_FILE)  # fmt: skip
        if not (model.is_file() and roles.is_file() and meta.is_file()):
            raise ConfigError(
                f"{self.folder}: not a pair model (needs {MODEL_FILE}, {ROLES_FILE}, {META_FILE})"
            )
        self.meta = json.loads(meta.read_text(encoding="utf-8"))
        if (tuple(self.meta.get("features", ())) != FEATURES
                or tuple(self.meta.get("role_features", ())) != ROLE_FEATURES):  # fmt: skip
            raise ConfigError(f"{self.folder}: the pair model was trained with other features")
        self.threshold = float(self.meta.get("threshold", 0.5))
        self.second = float(self.meta.get("second", 1.1))
        self.share = float(self.meta.get("share", 1.1))
        self.chain = float(self.meta.get("chain", 1.1))
        self._links = OnnxModel(model, "the pair model")
        self._roles = OnnxModel(roles, "the pair model")

    def roles(self, cands: Candidates) -> np.ndarray:
        """P(key), P(value) of every unit."""
        return self._roles.run(cands.R, 3)[:, 1:3]

    def predict(self, cands: Candidates) -> np.ndarray:
        """P(link) of every candidate pair."""
        return self._links.positive(with_roles(cands, self.roles(cands)))

    def links(self, ctx: DocContext) -> list[Link]:
        cands = candidates(ctx)
        return decode(
            cands, self.predict(cands), self.threshold, self.second, self.share, self.chain
        )


_SHIPPED: PairModel | None = None


def shipped() -> PairModel | None:
    """The shipped pair model, loaded once (None when the package has none)."""
    global _SHIPPED
    if _SHIPPED is None and (EMBEDDED / MODEL_FILE).is_file():
        _SHIPPED = PairModel()
    return _SHIPPED


# --- training -------------------------------------------------------------------------------


def pair_labels(cands: Candidates, truth: list[dict]) -> np.ndarray:
    """1 for a candidate whose key and value texts equal a truth pair's (as scoring compares)."""
    want = {(compact(t.get("key") or ""), compact(t.get("value") or "")) for t in truth}
    return np.array(
        [(compact(cands.units[k].text), compact(clean_value(cands.units[v].text))) in want
         for k, v in cands.pairs], dtype=bool,
    )  # fmt: skip


def _close(a: str, b: str, ratio: float = 0.75) -> bool:
    if a == b:
        return True
    if not a or not b or abs(len(a) - len(b)) > (1 - ratio) * max(len(a), len(b)):
        return False
    return 1 - levenshtein(a, b) / max(len(a), len(b)) >= ratio


def near_misses(cands: Candidates, truth: list[dict]) -> np.ndarray:
    """Candidates whose key and value texts are close to, but not exactly, a truth pair's (the
    OCR misread a character): right links the model should not learn to reject."""
    keys = [compact(t.get("key") or "") for t in truth]
    values = [compact(t.get("value") or "") for t in truth]
    as_key: dict[int, set[int]] = {}
    as_value: dict[int, set[int]] = {}
    for i, u in enumerate(cands.units):
        text = compact(u.text)
        clean = compact(clean_value(u.text))
        as_key[i] = {n for n, key in enumerate(keys) if _close(text, key)}
        as_value[i] = {n for n, value in enumerate(values) if _close(clean, value)}
    return np.array([bool(as_key[k] & as_value[v]) for k, v in cands.pairs], dtype=bool)


def off_truth(cands: Candidates, truth: list[dict]) -> np.ndarray:
    """Candidates whose texts equal a truth pair's but whose key or value lies off that pair's
    boxes (``key_box``/``value_box`` of truth pairs that have them): the same words elsewhere on
    the page (a second 'Date:', a '$' of another line), not a link to learn."""
    boxes: dict[tuple[str, str], list] = {}
    for t in truth:
        if t.get("key_box") and t.get("value_box"):
            pair = (compact(t.get("key") or ""), compact(t.get("value") or ""))
            boxes.setdefault(pair, []).append((t["key_box"], t["value_box"]))
    out = np.zeros(len(cands.pairs), dtype=bool)
    if not boxes:
        return out

    def on(a, b) -> bool:
        return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])

    for n, (k, v) in enumerate(cands.pairs):
        ku, vu = cands.units[k], cands.units[v]
        where = boxes.get((compact(ku.text), compact(clean_value(vu.text))))
        if where and not any(on(ku.bbox, kb) and on(vu.bbox, vb) for kb, vb in where):
            out[n] = True
    return out


def predicted_pairs(links: list[Link]) -> list[tuple[str, str]]:
    return [(compact(lk.key.text), compact(clean_value(lk.value.text))) for lk in links]


def f1_counts(links: list[Link], truth: list[dict]) -> tuple[int, int, int]:
    """(matched, predicted, truth) like the dev-set evaluation counts them."""
    from collections import Counter

    left = Counter(predicted_pairs(links))
    t = [(compact(x.get("key") or ""), compact(x.get("value") or "")) for x in truth]
    matched = 0
    for pair in t:
        if left[pair] > 0:
            left[pair] -= 1
            matched += 1
    return matched, len(links), len(t)


def _fit(X: np.ndarray, y: np.ndarray, rounds: int, seed: int, objective: str = "binary"):
    import lightgbm as lgb

    # the link model: more leaves (its positives are a few patterns among many candidates)
    leaves, child = (31, 20) if objective == "binary" else (15, 10)
    clf = lgb.LGBMClassifier(
        objective=objective, n_estimators=rounds, learning_rate=0.05, num_leaves=leaves,
        min_child_samples=child, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
        reg_lambda=1.0, random_state=seed, n_jobs=1, num_threads=1, verbose=-1,
    )  # fmt: skip
    clf.fit(X, y.astype(int))
    return clf


def _fit_roles(R: np.ndarray, y: np.ndarray, rounds: int, seed: int):
    # every class present, so the model always gives three columns
    R = np.concatenate([R, np.zeros((3, R.shape[1]), R.dtype)])
    y = np.concatenate([y, [0, 1, 2]])
    return _fit(R, y, rounds, seed, "multiclass")


def _oof_roles(data: list, fold_of: np.ndarray, rounds: int, seed: int) -> list[np.ndarray]:
    """Out-of-fold role probabilities of every training document's units."""
    out: list[np.ndarray] = [np.zeros((len(d[1].units), 2), np.float32) for d in data]
    for f in sorted(set(fold_of.tolist())):
        fit = [d for i, d in enumerate(data) if fold_of[i] != f]
        clf = _fit_roles(np.concatenate([d[1].R for d in fit]),
                         np.concatenate([d[3] for d in fit]), rounds, seed)  # fmt: skip
        for i, d in enumerate(data):
            if fold_of[i] == f and len(d[1].R):
                out[i] = clf.predict_proba(d[1].R)[:, 1:3]
    return out


def _pooled_f1(folds: list, *args: float) -> float:
    m = p = t = 0
    for cands, probs, truth in folds:
        a, b, c = f1_counts(decode(cands, probs, *args), truth)
        m, p, t = m + a, p + b, t + c
    prec, rec = (m / p if p else 0.0), (m / t if t else 0.0)
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def _best_threshold(
    folds: list[tuple[Candidates, np.ndarray, list[dict]]],
) -> tuple[float, float, float, float, float]:
    """The (threshold, second-value, shared-value, chain thresholds, F1) of the best pair F1
    over scored documents: the first three on a grid, then the chain threshold."""
    best = (0.5, 1.1, 1.1, 1.1, -1.0)
    for thr in (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5):
        for second in (thr, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.1):
            for share in (thr, 0.1, 0.2, 0.3, 0.5, 0.7, 1.1):
                if second < thr or share < thr:
                    continue
                f1 = _pooled_f1(folds, thr, second, share)
                if f1 > best[4]:
                    best = (thr, second, share, 1.1, f1)
    thr, second, share = best[:3]
    for chain in (0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002):
        if chain < thr:
            f1 = _pooled_f1(folds, thr, second, share, chain)
            if f1 > best[4]:
                best = (thr, second, share, chain, f1)
    return best


def train_pairs(
    docs: list[tuple[str, DocContext, list[dict]]],
    out_dir: str | Path,
    *,
    rounds: int = 300,
    folds: int = 4,
    seed: int = 0,
    skip_near: bool = True,
    repeats: int = 3,
) -> dict:
    """Fit the role and link models on ``(name, context, truth pairs)`` documents and write
    ``out_dir/{pairs,roles}.onnx`` and ``pairs.json``. The decoding thresholds are the ones with
    the best pair F1 over ``folds``-fold cross-validation of the same documents, pooled over
    ``repeats`` shuffles of the folds (each document scored by models that did not see it).
    Candidates only a misread character away from a truth pair are left out of training
    (``skip_near``). Returns a report."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    data = []
    for name, ctx, truth in docs:
        cands = candidates(ctx)
        y = pair_labels(cands, truth)
        keep = ~(near_misses(cands, truth) & ~y) if skip_near else np.ones(len(y), bool)
        keep &= ~off_truth(cands, truth)
        data.append((name, cands, y, role_labels(cands, truth), truth, keep))
    y_all = np.concatenate([d[2] for d in data]) if data else np.zeros(0, bool)
    if not y_all.any():
        raise ConfigError("no candidate pair of the training documents matches its label")
    reach = sum(len({(compact(c.units[k].text), compact(clean_value(c.units[v].text)))
                     for (k, v), yy in zip(c.pairs, y, strict=True) if yy})
                for _, c, y, *_ in data)  # fmt: skip
    n_truth = sum(len(d[4]) for d in data)
    n_near = int(sum((~d[5]).sum() for d in data))
    folds = max(2, min(folds, len(data)))
    # the link model learns from role probabilities of models that did not see the document;
    # the decoding thresholds are chosen on out-of-fold scores pooled over ``repeats``
    # shuffles of the folds (one shuffle's choice swings with a few documents)
    scored = []
    rng = np.random.default_rng(seed)
    for r in range(max(1, repeats)):
        perm = np.arange(len(data)) if r == 0 else rng.permutation(len(data))
        fold_of = np.empty(len(data), int)
        fold_of[perm] = np.arange(len(data)) % folds
        roles = _oof_roles(data, fold_of, rounds, seed)
        Xs = [with_roles(d[1], ro) for d, ro in zip(data, roles, strict=True)]
        if r == 0:
            X_final = Xs
        for f in range(folds):
            fit = [i for i in range(len(data)) if fold_of[i] != f]
            yf = np.concatenate([data[i][2][data[i][5]] for i in fit])
            if not yf.any() or yf.all():
                continue
            clf = _fit(np.concatenate([Xs[i][data[i][5]] for i in fit]), yf, rounds, seed)
            for i in range(len(data)):
                if fold_of[i] == f:
                    probs = clf.predict_proba(Xs[i])[:, 1] if len(Xs[i]) else np.zeros(0)
                    scored.append((data[i][1], probs, data[i][4]))
    threshold, second, share, chain, cv_f1 = (_best_threshold(scored) if scored
                                              else (0.5, 1.1, 1.1, 1.1, float("nan")))  # fmt: skip
    Xs = X_final
    role_clf = _fit_roles(np.concatenate([d[1].R for d in data]),
                          np.concatenate([d[3] for d in data]), rounds, seed)  # fmt: skip
    keep_all = np.concatenate([d[5] for d in data])
    clf = _fit(np.concatenate(Xs)[keep_all], y_all[keep_all], rounds, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for model, width, name in ((clf, len(FEATURES), MODEL_FILE),
                               (role_clf, len(ROLE_FEATURES), ROLES_FILE)):  # fmt: skip
        onx = convert_lightgbm(
            model, initial_types=[("features", FloatTensorType([None, width]))], zipmap=False
        )
        (out / name).write_bytes(onx.SerializeToString())
    meta = {
        "features": list(FEATURES),
        "role_features": list(ROLE_FEATURES),
        "threshold": threshold,
        "second": second,
        "share": share,
        "chain": chain,
        "cv_f1": round(cv_f1, 4),
        "cv_repeats": max(1, repeats),
        "documents": len(data),
        "examples": int(len(y_all)),
        "positives": int(y_all.sum()),
        "truth_pairs": n_truth,
        "reachable_pairs": reach,
        "near_misses_left_out": n_near,
        "rounds": rounds,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta
