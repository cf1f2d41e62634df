"""Joint decoding: the best candidate per field under constraints that hold on any document.

- a span of the page is the value of one field at most (a seller is not also the buyer; the
  net amount is not also the tax), though a number and a text may share one (an amount and
  the currency it is written in);
- amounts that the schema's words make a subtotal, a tax and a total add up (subtotal + tax
  = total), and a tax is less than its total;
- an end date (due date, period or flight end) is not before its start (issue date, period
  or flight start).

Which field plays which role comes from the term groups its words reach (see
:mod:`.vocab`), never from its name. A choice that satisfies a constraint is preferred when
its joint score is close enough to the unconstrained best.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from docvlm.read.learned.features import Candidate
from docvlm.read.learned.vocab import group_role

_TOP = 5
#: values that add up win over likelier ones that do not when their joint probability is
#: at least this share of the likelier ones' (printed arithmetic is strong evidence)
_HOLDS_RATIO = 0.1


@dataclass
class FieldChoice:
    path: str
    cands: list[Candidate]
    probs: np.ndarray
    groups: tuple[tuple[str, float], ...] = ()
    role_of_words: str | None = None  # the field's own words' role (vocab.field_role)

    @property
    def role(self) -> str | None:
        return self.role_of_words or group_role(self.groups)


@dataclass
class Decoded:
    cand: Candidate
    prob: float
    constrained: bool = False  # a constraint this value takes part in holds


def _overlap(a: Candidate, b: Candidate) -> bool:
    """Two candidates that cannot both be taken: they share text and are values of one
    kind. A number and a text may share a span ('$48.68' is the total and says USD)."""
    if _is_number(a.value) != _is_number(b.value):
        return False
    shared = set(a.lines) & set(b.lines)
    if not shared:
        return False
    if len(a.lines) > 1 or len(b.lines) > 1:
        return True
    return a.start < b.end and b.start < a.end


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def decode(fields: list[FieldChoice]) -> dict[str, Decoded]:
    """One candidate (or none) per field."""
    picks = _greedy(fields)
    _arithmetic(fields, picks)
    _date_order(fields, picks)
    _first_occurrences(fields, picks)
    return picks


#: a value printed again (a header repeated on every page) is taken where it first appears
#: when that copy scores within this of the pick: provenance does not flip between pages on
#: a hair's difference of score
_SAME_VALUE_MARGIN = 0.1


def _first_occurrences(fields: list[FieldChoice], picks: dict[str, Decoded]) -> None:
    for fc in fields:
        d = picks.get(fc.path)
        if d is None:
            continue
        others = [p.cand for path, p in picks.items() if path != fc.path]
        best = d.cand
        for k, c in enumerate(fc.cands):
            if (
                c.value == d.cand.value
                and (c.page, c.line) < (best.page, best.line)
                and float(fc.probs[k]) >= d.prob - _SAME_VALUE_MARGIN
                and not any(_overlap(c, o) for o in others)
            ):
                best = c
        if best is not d.cand:
            picks[fc.path] = Decoded(best, d.prob, d.constrained)


def _greedy(fields: list[FieldChoice]) -> dict[str, Decoded]:
    order = []
    for fc in fields:
        for j in np.argsort(-fc.probs)[:50]:
            order.append((float(fc.probs[j]), fc.path, int(j)))
    order.sort(key=lambda x: -x[0])
    by_path = {fc.path: fc for fc in fields}
    picks: dict[str, Decoded] = {}
    used: list[Candidate] = []
    for p, path, j in order:
        if path in picks:
            continue
        cand = by_path[path].cands[j]
        if any(_overlap(cand, u) for u in used):
            continue
        picks[path] = Decoded(cand, p)
        used.append(cand)
    return picks


def _top(fc: FieldChoice) -> list[tuple[float, Candidate]]:
    idx = np.argsort(-fc.probs)[:_TOP]
    return [(float(fc.probs[i]), fc.cands[i]) for i in idx]


def _by_role(fields: list[FieldChoice], role: str) -> FieldChoice | None:
    found = [fc for fc in fields if fc.role == role]
    return found[0] if len(found) == 1 else None


def _arithmetic(fields: list[FieldChoice], picks: dict[str, Decoded]) -> None:
    total, tax, sub = (_by_role(fields, r) for r in ("total", "tax", "subtotal"))
    if total is None or (tax is None and sub is None):
        return
    roles = [fc for fc in (sub, tax, total) if fc is not None]
    current = [picks.get(fc.path) for fc in roles]
    if any(c is None for c in current):
        return
    best_joint = float(np.prod([c.prob for c in current]))
    printed = {c.value for fc in roles for c in fc.cands if _is_number(c.value)}
    chosen = None
    for combo in itertools.product(*(_top(fc) for fc in roles)):
        vals = [c.value for _, c in combo]
        if not all(isinstance(v, (int, float)) for v in vals):
            continue
        if len(combo) == 3:
            ok = abs(vals[0] + vals[1] - vals[2]) < 0.011 and vals[1] < vals[2]
        elif sub is None:
            # no subtotal field: the tax and the total hold when the page prints the net
            # amount they differ by (net + tax = total; a tax of 0 leaves the total as net)
            ok = 0 <= vals[0] < vals[1] and _printed(printed, vals[1] - vals[0])
        else:
            ok = 0 < vals[0] < vals[1]
        if not ok:
            continue
        joint = float(np.prod([p for p, _ in combo]))
        if joint >= _HOLDS_RATIO * best_joint and (chosen is None or joint > chosen[0]):
            chosen = (joint, combo)
    if chosen is None:
        return
    for fc, (p, cand) in zip(roles, chosen[1], strict=True):
        picks[fc.path] = Decoded(cand, p, constrained=True)


def _printed(values: set, x: float) -> bool:
    return any(abs(v - x) < 0.011 for v in values)


def _date_order(fields: list[FieldChoice], picks: dict[str, Decoded]) -> None:
    start, end = _by_role(fields, "start"), _by_role(fields, "end")
    if start is None or end is None or start.path not in picks or end.path not in picks:
        return
    s, e = picks[start.path], picks[end.path]
    if str(s.cand.value) <= str(e.cand.value):
        s.constrained = e.constrained = True
        return
    best = None
    for (ps, cs), (pe, ce) in itertools.product(_top(start), _top(end)):
        if str(cs.value) <= str(ce.value) and not _overlap(cs, ce):
            if best is None or ps * pe > best[0]:
                best = (ps * pe, ps, cs, pe, ce)
    if best is not None and best[0] >= 0.25 * s.prob * e.prob:
        picks[start.path] = Decoded(best[2], best[1], True)
        picks[end.path] = Decoded(best[4], best[3], True)
