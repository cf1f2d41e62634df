"""A learned key→value linker for forms: candidate text units, pair features, a LightGBM model
exported to ONNX, and a greedy one-to-one decoding.

Units are cut from a document's lines: every whole line, a line split at its first colon
(the label before it, the value after it) and value blocks (a unit with the left-aligned
lines right under it, for addresses and paragraphs). A candidate pair is a key unit and a
value unit near it: on its row to the right, below it, or further down its column (a table's
header over a cell). Each pair gets general features (relative position in line heights,
overlap, alignment, the texts' shapes, how label-like a text is, the rank of the pair among
the key's and the value's other candidates, what lies between them) and the model gives
P(the value belongs to the key). Nothing is keyed on particular words or field names.

The shipped model lives in ``docvlm/models/pairs`` (``pairs.onnx`` + ``pairs.json``: the
features it was trained with and the decoding threshold chosen on its training documents).
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
from docvlm.normalize import compact, levenshtein
from docvlm.read.learned.scorer import OnnxModel
from docvlm.read.learned.vocab import all_term_similarity
from docvlm.read.rules.context import DocContext
from docvlm.read.rules.items import _BOX, _KEY

EMBEDDED = Path(__file__).resolve().parents[2] / "models" / "pairs"
MODEL_FILE, ROLES_FILE, META_FILE = "pairs.onnx", "roles.onnx", "pairs.json"

_MARK = re.compile(r"[\[\]☐☑☒■□✓✔]|^\s*[xX]\s")

WHOLE, KEY_PART, VALUE_PART, BLOCK, SPLIT_KEY, SPLIT_VALUE = 0, 1, 2, 3, 4, 5
MAX_SPLIT_WORDS = 10  # a colon-less line is tried as 'label value' at each word gap
MAX_BLOCK = 6  # lines of a value block
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
               line.page, frozenset([id(line)]))  # fmt: skip
    rest = m.group(2).strip()
    if not rest:
        return key, None
    start = m.start(2)
    vx = xs[start] if start < len(xs) else split
    value = Unit(rest, (min(vx, x1 - 1), y0, x1, y1), [line], VALUE_PART, line.page,
                 frozenset([id(line)]))  # fmt: skip
    return key, value


def _shape(u: Unit, lh: float, page_w: float, page_h: float) -> list[float]:
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
        all_term_similarity(t) if len(t) <= 60 else 0.0,
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
            "between", "between_colon", "value_starts_key", "x1_align")  # fmt: skip
BASE = tuple(f"k_{n}" for n in SHAPE) + tuple(f"v_{n}" for n in SHAPE) + RELATION
ROLE_COLUMNS = ("k_p_key", "k_p_value", "v_p_key", "v_p_value")
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


def units_of(ctx: DocContext) -> tuple[list[Unit], list[int]]:
    """Units of every line in reading order; the indices of those that may be keys."""
    units: list[Unit] = []
    keys: list[int] = []
    value_starts: list[int] = []
    lh = ctx.line_height
    for ln in ctx.lines:
        whole = Unit(ln.text.strip(), tuple(ln.bbox), [ln], WHOLE, ln.page, frozenset([id(ln)]))
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
            units.append(Unit(kt, kb, [ln], SPLIT_KEY, ln.page, ids, head=n + 1))
            units.append(Unit(vt, vb, [ln], SPLIT_VALUE, ln.page, ids, head=n))
            keys.append(n)
    # value blocks: a value start with the left-aligned lines right under it
    for start_index in value_starts:
        start = units[start_index]
        block = [start.lines[0]]
        x0 = start.bbox[0]
        bottom = start.bbox[3]
        used = {id(start.lines[0])}
        row = ctx.row(start.lines[0])
        rows = [r for r in ctx.rows if r.page == row.page and r.top > row.top + 0.5 * lh]
        boxes = [start.bbox]
        for r in rows:
            if r.top - bottom > 0.9 * lh:
                break
            nxt = [ln for ln in r.lines if abs(ln.bbox[0] - x0) <= 1.2 * lh and id(ln) not in used]
            if not nxt:
                if any(min(ln.bbox[2], start.bbox[2]) - max(ln.bbox[0], x0) > 0 for ln in r.lines):
                    break  # something else sits under the block
                continue
            ln = nxt[0]
            block.append(ln)
            used.add(id(ln))
            boxes.append(tuple(ln.bbox))
            bottom = ln.bbox[3]
            text = " ".join([start.text] + [b.text.strip() for b in block[1:]])
            box = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                   max(b[2] for b in boxes), max(b[3] for b in boxes))  # fmt: skip
            units.append(
                Unit(text, box, list(block), BLOCK, start.page, frozenset(used), head=start_index)
            )
            if len(block) >= MAX_BLOCK:
                break
    return units, keys


def _gap(a: float, b: float, c: float, d: float) -> float:
    """Distance between intervals [a, b] and [c, d] (0 when they overlap)."""
    return max(0.0, c - b, a - d)


def candidates(ctx: DocContext) -> Candidates:
    """Every candidate (key, value) pair of a document with its feature rows."""
    units, keys = units_of(ctx)
    lh = max(ctx.line_height, 1.0)
    sizes = {p.number: (float(p.width or 1), float(p.height or 1)) for p in ctx.pages}
    for u in units:
        w, h = sizes.get(u.page, (1000.0, 1000.0))
        u.shape = _shape(u, lh, w, h)
    by_page: dict[int, list[int]] = {}
    for i, u in enumerate(units):
        by_page.setdefault(u.page, []).append(i)
    raw: list[tuple[int, int, int, float]] = []  # key, value, direction, distance
    for k in keys:
        ku = units[k]
        kx0, ky0, kx1, ky1 = ku.bbox
        if ku.kind == SPLIT_KEY:
            raw.append((k, ku.head, 0, max(units[ku.head].bbox[0] - kx1, 0.0) / lh))
            continue
        found = []
        for v in by_page[ku.page]:
            vu = units[v]
            if v == k or vu.kind in (SPLIT_KEY, SPLIT_VALUE):
                continue
            same_line = False
            if vu.ids & ku.ids:
                # only the value after the key's own colon may share its line
                if not (ku.kind == KEY_PART and vu.lines[0] is ku.lines[0] and vu.kind in (VALUE_PART, BLOCK)
                        and vu.bbox[0] >= kx1 - 1):  # fmt: skip
                    continue
                same_line = True
            vx0, vy0, vx1, vy1 = vu.bbox
            fy0, fy1 = vu.lines[0].bbox[1], vu.lines[0].bbox[3]
            if same_line:
                vy0, fy0 = ky0, ky0
            yov = min(ky1, fy1) - max(ky0, fy0)
            if same_line or (yov > 0.4 * min(ky1 - ky0, fy1 - fy0) and vx0 >= kx1 - 0.5 * lh):
                if (vx0 - kx1) > RIGHT_REACH * lh:
                    continue
                direction = 0 if same_line else 1
                dist = max(vx0 - kx1, 0.0) / lh
            elif vy0 >= ky0 + 0.5 * lh:
                dy = (vy0 - ky1) / lh
                xgap = _gap(kx0, kx1, vx0, vx1) / lh
                if dy <= BELOW_REACH and vx1 > kx0 - 4 * lh and vx0 < kx1 + 12 * lh:
                    direction = 2
                elif dy <= COLUMN_REACH and xgap == 0:
                    direction = 3
                else:
                    continue
                dist = math.hypot(max(dy, 0.0), xgap)
            else:
                continue
            found.append((dist, v, direction))
        found.sort()
        singles = [f for f in found if units[f[1]].kind != BLOCK][:MAX_PER_KEY]
        heads = {v for _, v, _ in singles}
        for dist, v, direction in found:
            if units[v].kind != BLOCK or units[v].head in heads:
                if units[v].kind != BLOCK and v not in heads:
                    continue
                raw.append((k, v, direction, dist))
    # ranks: of the value among the key's candidates, of the key among the value's
    by_key: dict[int, list[tuple[float, int]]] = {}
    by_value: dict[int, list[tuple[float, int]]] = {}
    for n, (k, v, _d, dist) in enumerate(raw):
        by_key.setdefault(k, []).append((dist, n))
        by_value.setdefault(v, []).append((dist, n))
    rank_v = np.zeros(len(raw))
    rank_k = np.zeros(len(raw))
    for lst in by_key.values():
        for r, (_, n) in enumerate(sorted(lst)):
            rank_v[n] = r
    for lst in by_value.values():
        for r, (_, n) in enumerate(sorted(lst)):
            rank_k[n] = r
    line_boxes = {}
    for u in units:
        if u.kind == WHOLE:
            line_boxes.setdefault(u.page, []).append((u.bbox, u.text))
    rows = []
    pairs = []
    for n, (k, v, direction, dist) in enumerate(raw):
        ku, vu = units[k], units[v]
        kx0, ky0, kx1, ky1 = ku.bbox
        vx0, vy0, vx1, vy1 = vu.bbox
        fb = vu.lines[0].bbox if vu.kind != VALUE_PART else vu.bbox
        kw, kh = max(kx1 - kx0, 1.0), max(ky1 - ky0, 1.0)
        vw, vh = max(vx1 - vx0, 1.0), max(fb[3] - fb[1], 1.0)
        xov = (min(kx1, vx1) - max(kx0, vx0)) / min(kw, vw)
        yov = (min(ky1, fb[3]) - max(ky0, fb[1])) / min(kh, vh)
        # lines strictly between key and value
        between = between_colon = 0
        if direction in (1,):
            for box, text in line_boxes[ku.page]:
                if (
                    box[0] >= kx1 - 1
                    and box[2] <= vx0 + 1
                    and min(box[3], ky1) - max(box[1], ky0) > 0.4 * kh
                ):
                    between += 1
                    between_colon += text.rstrip().endswith(":")
        elif direction in (2, 3):
            lo, hi = min(kx0, vx0), max(kx1, vx1)
            for box, text in line_boxes[ku.page]:
                if box[1] >= ky1 - 1 and box[3] <= vy0 + 1 and box[2] > lo and box[0] < hi:
                    between += 1
                    between_colon += text.rstrip().endswith(":")
        rel = [
            (vx0 - kx1) / lh,
            (vy0 - ky1) / lh,
            ((vx0 + vx1) - (kx0 + kx1)) / 2 / lh,
            (vx0 - kx0) / lh,
            ((fb[1] + fb[3]) - (ky0 + ky1)) / 2 / lh,
            xov,
            yov,
            float(ctx.row(ku.lines[0]) is ctx.row(vu.lines[0])),
            float(direction == 0),
            float(direction),
            dist,
            rank_v[n],
            rank_k[n],
            float(len(by_key[k])),
            float(len(by_value[v])),
            float(between),
            float(between_colon),
            float(units[v].shape[7] > 0 or units[v].shape[8] > 0),
            (vx1 - kx1) / lh,
        ]
        rows.append(ku.shape + vu.shape + rel)
        pairs.append((k, v))
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(BASE))
    return Candidates(units, keys, pairs, X, lh, _role_rows(units, line_boxes, lh))


def _role_rows(units: list[Unit], line_boxes: dict, lh: float) -> np.ndarray:
    """Each unit's shape and what surrounds it: the nearest line on its right and left, below
    and above it (gaps in line heights, whether it is a colon label)."""
    out = []
    far = 99.0
    for u in units:
        x0, y0, x1, y1 = u.bbox
        h = max(y1 - y0, 1.0)
        right = left = below = above = (far, 0.0, 0.0, 0.0)
        row = 0
        for box, text in line_boxes.get(u.page, ()):
            if box[0] >= x0 - 1 and box[2] <= x1 + 1 and box[1] >= y0 - 1 and box[3] <= y1 + 1:
                continue  # the unit's own line
            colon = float(text.rstrip().endswith(":"))
            yov = min(y1, box[3]) - max(y0, box[1])
            if yov > 0.4 * min(h, box[3] - box[1]):
                row += 1
                if box[0] >= x1 - 2 and (box[0] - x1) / lh < right[0]:
                    letters = sum(c.isalpha() for c in text) / max(len(text), 1)
                    right = ((box[0] - x1) / lh, colon, letters, 0.0)
                elif box[2] <= x0 + 2 and (x0 - box[2]) / lh < left[0]:
                    left = ((x0 - box[2]) / lh, colon, 0.0, 0.0)
                continue
            if min(x1, box[2]) - max(x0, box[0]) <= 0:
                continue
            if box[1] >= y1 - 0.5 * h and (box[1] - y1) / lh < below[0]:
                below = ((box[1] - y1) / lh, (box[0] - x0) / lh, colon, 0.0)
            elif box[3] <= y0 + 0.5 * h and (y0 - box[3]) / lh < above[0]:
                above = ((y0 - box[3]) / lh, colon, 0.0, 0.0)
        out.append(u.shape + [right[0], right[1], right[2], left[0], left[1], below[0],
                              below[1], below[2], above[0], above[1], float(row)])  # fmt: skip
    return np.asarray(out, dtype=np.float32).reshape(len(units), len(ROLE_FEATURES))


def with_roles(cands: Candidates, roles: np.ndarray) -> np.ndarray:
    """The pair features with the role probabilities (P(key), P(value) of every unit) of the
    key and the value added."""
    if not cands.pairs:
        return np.zeros((0, len(FEATURES)), np.float32)
    k = np.fromiter((a for a, _ in cands.pairs), int, len(cands.pairs))
    v = np.fromiter((b for _, b in cands.pairs), int, len(cands.pairs))
    extra = np.stack([roles[k, 0], roles[k, 1], roles[v, 0], roles[v, 1]], axis=1)
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
    cands: Candidates, probs: np.ndarray, threshold: float, second: float = 1.1
) -> list[Link]:
    """Greedy one-to-one links, most probable first: a line is a key or a value, each value's
    lines serve once, a key takes one value (a second only at probability ``second``)."""
    order = np.argsort(-probs, kind="stable")
    key_lines: set[int] = set()
    value_lines: set[int] = set()
    taken: dict[int, int] = {}  # key unit -> values taken
    key_of_line: dict[int, int] = {}  # line id -> the key unit using it
    out: list[Link] = []
    for n in order:
        p = float(probs[n])
        if p < threshold:
            break
        k, v = cands.pairs[n]
        ku, vu = cands.units[k], cands.units[v]
        shared = ku.ids & vu.ids  # a line split at its colon
        if vu.ids & value_lines or (vu.ids - shared) & key_lines or ku.ids & value_lines:
            continue
        if any(key_of_line.get(i, k) != k for i in ku.ids):
            continue
        if taken.get(k, 0) >= 1 and p < second:
            continue
        taken[k] = taken.get(k, 0) + 1
        key_lines |= ku.ids
        for i in ku.ids:
            key_of_line[i] = k
        value_lines |= vu.ids
        out.append(Link(ku, vu, p))
    return out


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
        return decode(cands, self.predict(cands), self.threshold, self.second)


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

    clf = lgb.LGBMClassifier(
        objective=objective, n_estimators=rounds, learning_rate=0.05, num_leaves=15,
        min_child_samples=10, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
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


def _best_threshold(
    folds: list[tuple[Candidates, np.ndarray, list[dict]]],
) -> tuple[float, float, float]:
    """The (threshold, second-value threshold) of the best pair F1 over scored documents."""
    best = (0.5, 1.1, -1.0)
    for thr in (0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5):
        for second in (thr, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.1):
            if second < thr:
                continue
            m = p = t = 0
            for cands, probs, truth in folds:
                a, b, c = f1_counts(decode(cands, probs, thr, second), truth)
                m, p, t = m + a, p + b, t + c
            prec, rec = (m / p if p else 0.0), (m / t if t else 0.0)
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            if f1 > best[2]:
                best = (thr, second, f1)
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
    threshold, second, cv_f1 = _best_threshold(scored) if scored else (0.5, 1.1, float("nan"))
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
