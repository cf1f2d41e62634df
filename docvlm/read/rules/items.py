"""Arrays of objects: item tables (header row, column alignment, continued across pages)
and key/value pairs of forms."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from docvlm.datamodel import FieldValue, Line, Word
from docvlm.normalize import fold, is_amount_text, parse_amount, parse_date
from docvlm.read.rules.context import DocContext, Row, value_from_lines
from docvlm.read.rules.labels import labels_for, match_label
from docvlm.schema import ArraySpec, FieldSpec

COLUMN_LABELS: dict[str, tuple[str, ...]] = {
    "description": ("description", "item", "items", "item description", "product", "article",
                    "service", "services", "details", "particulars", "beschreibung", "bezeichnung",
                    "artikel", "leistung", "artikelbezeichnung", "designation", "libelle",
                    "produit", "descripcion", "concepto"),
    "quantity": ("qty", "quantity", "qte", "quantite", "menge", "anzahl", "anz", "units",
                 "unit", "hours", "hrs", "stk", "cantidad", "cant", "pcs"),
    "unit_price": ("unit price", "price", "rate", "unit cost", "price per unit", "each",
                   "einzelpreis", "preis", "e preis", "stuckpreis", "prix unitaire", "prix",
                   "pu", "p u", "prix u", "precio", "precio unitario", "u price"),
    "amount": ("amount", "total", "line total", "net amount", "value", "betrag", "gesamt",
               "gesamtpreis", "summe", "montant", "montant ht", "total ht", "importe", "sum"),
}  # fmt: skip
_COLUMN_TRIGGERS = {
    "description": ("description", "desc", "item", "name", "product", "service", "text"),
    "quantity": ("quantity", "qty", "count", "units"),
    "unit_price": ("unit price", "price", "rate", "unit cost"),
    "amount": ("amount", "total", "line total", "sum", "value"),
}
_GENERIC_STOP = ("subtotal", "sub total", "total", "summe", "zwischensumme", "gesamt",
                 "total ht", "total ttc", "net", "tax", "vat", "mwst", "tva", "amount due",
                 "balance due", "grand total", "montant ht")  # fmt: skip


def _column_phrases(spec: FieldSpec) -> tuple[str, ...]:
    phrases = list(labels_for(spec).phrases)
    words = fold(spec.name.replace("_", " ")) + " " + fold(spec.title or "")
    for key, triggers in _COLUMN_TRIGGERS.items():
        if any(f" {t} " in f" {words} " for t in triggers):
            phrases.extend(COLUMN_LABELS[key])
            break
    return tuple(dict.fromkeys(p for p in phrases if p))


@dataclass
class Column:
    field: FieldSpec | None
    x0: float
    x1: float

    @property
    def center(self) -> float:
        return (self.x0 + self.x1) / 2


# Columns that are not item fields but share words with them ('Item code' is not 'Item').
_OTHER_COLUMNS = ("item code", "item no", "item number", "item #", "art nr", "artikelnummer",
                  "artikel nr", "sku", "code", "pos", "position", "no", "nr", "ref", "reference",
                  "tax", "vat", "mwst", "tva", "ust", "tax code", "disc", "discount", "rabatt",
                  "remise", "unit", "einh", "einheit", "unite")  # fmt: skip


def _tokens(text: str) -> list[str]:
    return fold(text).split()


@functools.lru_cache(maxsize=1024)
def _phrase_tokens(
    phrases: tuple[str, ...],
) -> tuple[dict[str, list[tuple[int, list[str]]]], int]:
    """``phrases`` as (rank, tokens) lists by their first token, and the most tokens."""
    by_first: dict[str, list[tuple[int, list[str]]]] = {}
    for rank, phrase in enumerate(phrases):
        pt = phrase.split()
        if pt:
            by_first.setdefault(pt[0], []).append((rank, pt))
    return by_first, max((len(p.split()) for p in phrases), default=0)


_OTHER_TOKENS = _phrase_tokens(_OTHER_COLUMNS)


def _header(
    row: Row, specs: list[FieldSpec], phrases: dict[str, tuple[str, ...]]
) -> list[Column] | None:
    """Columns of ``row`` if it is a table header (at least two item fields named).

    The row is read word by word, so one segment may hold several column names
    ('Pos. Beschreibung', 'Qty Unit Price'); at each word the longest matching name wins,
    then the field's most canonical name.
    """
    words: list[tuple[int, Word]] = []
    for n, ln in enumerate(row.lines):
        for w in ln.words or [Word(text=ln.text, bbox=ln.bbox)]:
            words.append((n, w))
    toks = [_tokens(w.text) for _, w in words]
    total = sum(len(t) for t in toks)
    if not total:
        return None
    names = [(spec, _phrase_tokens(phrases[spec.name])) for spec in specs]
    # a field is named at a word only by a name starting with that word's first token: a
    # row where fewer than two fields have such a name is no header (most rows)
    firsts = {t[0] for t in toks if t}
    if sum(not firsts.isdisjoint(by_first) for _, (by_first, _) in names) < 2:
        return None
    longest = max([n for _, (_, n) in names] + [_OTHER_TOKENS[1]])
    cells: list[tuple[FieldSpec | None, int, int]] = []  # field, first word, last word
    named: set[str] = set()
    covered = 0
    i = 0
    while i < len(words):
        flat: list[str] = []  # the tokens from word i on, as many as the longest name has
        for ts in toks[i:]:
            flat.extend(ts)
            if len(flat) >= longest:
                break
        best: tuple[int, int, FieldSpec | None] | None = None  # tokens, -rank, field
        first = flat[0] if flat else None
        for spec, (by_first, _) in names:
            if spec.name in named:
                continue
            for rank, pt in by_first.get(first, ()):
                if flat[: len(pt)] == pt and (best is None or (len(pt), -rank) > best[:2]):
                    best = (len(pt), -rank, spec)
        starts_segment = i == 0 or words[i - 1][0] != words[i][0]
        for _, pt in _OTHER_TOKENS[0].get(first, ()) if starts_segment else ():
            if flat[: len(pt)] == pt and (best is None or len(pt) > best[0]):
                best = (len(pt), 0, None)
        if best is None:
            # an unnamed word: part of the cell before it when in the same segment
            if cells and words[cells[-1][2]][0] == words[i][0]:
                cells[-1] = (cells[-1][0], cells[-1][1], i)
            else:
                cells.append((None, i, i))
            i += 1
            continue
        need, j = best[0], i
        while need > 0 and j < len(words):
            need -= len(toks[j])
            j += 1
        covered += best[0]
        cells.append((best[2], i, j - 1))
        if best[2] is not None:
            named.add(best[2].name)
        i = j
    if len(named) < 2 or covered < 0.5 * total:
        return None
    return [
        Column(
            field,
            min(w.bbox[0] for _, w in words[a : b + 1]),
            max(w.bbox[2] for _, w in words[a : b + 1]),
        )
        for field, a, b in cells
    ]


def _assign(line: Line, columns: list[Column]) -> Column:
    def score(col: Column) -> float:
        overlap = min(line.bbox[2], col.x1) - max(line.bbox[0], col.x0)
        if overlap > 0:
            return 1e6 + overlap
        return -abs((line.bbox[0] + line.bbox[2]) / 2 - col.center)

    return max(columns, key=score)


_WITH_UNIT = re.compile(r"\s*(-?\d+(?:[.,]\d+)?)\s*[^\W\d_]{1,6}\.?\s*")


def _value(spec: FieldSpec, text: str, ctx: DocContext):
    text = text.strip()
    if spec.is_number:
        if not is_amount_text(text):
            m = _WITH_UNIT.fullmatch(text)
            if not m:
                return None
            text = m.group(1)  # '2 Stk.', '3.5 h', '10 pcs'
        v = parse_amount(text, ctx.decimal_comma)
        if v is not None and spec.type == "integer":
            return int(v) if float(v).is_integer() else None
        return v
    if spec.is_date:
        return parse_date(text, ctx.dayfirst)
    return text or None


def read_array(
    arr: ArraySpec, ctx: DocContext, stop: tuple[str, ...], reader: str
) -> list[FieldValue]:
    """Candidates ``<array>/<i>/<field>`` for every row of the array's table in the document."""
    if arr.is_key_value:
        return read_pairs(arr, ctx, reader)
    specs = list(arr.items)
    phrases = {s.name: _column_phrases(s) for s in specs}
    stop_phrases = tuple(dict.fromkeys((*stop, *_GENERIC_STOP)))
    text_specs = [s for s in specs if s.type == "string" and not s.is_date]
    out: list[FieldValue] = []
    columns: list[Column] | None = None
    index = -1
    last_row_bottom: float | None = None
    current: dict[str, FieldValue] = {}
    page = None
    for row in ctx.rows:
        if row.page != page:
            page, last_row_bottom = row.page, None
        header = _header(row, specs, phrases)
        if header:
            columns = header
            last_row_bottom = row.bottom
            continue
        if columns is None:
            continue
        first = fold(row.lines[0].text)
        assigned = [_assign(ln, columns) for ln in row.lines]
        if any(first == p or first.startswith(p + " ") for p in stop_phrases) or any(
            match_label(ln.text, stop_phrases) and len(fold(ln.text)) < 30
            for ln, col in zip(row.lines, assigned, strict=True)
            if col.field is None or col.field in text_specs
        ):
            columns = None  # the table ended (totals follow)
            continue
        if last_row_bottom is not None and row.top - last_row_bottom > 4 * ctx.line_height:
            if not any(col.field and col.field.is_number for col in assigned):
                continue
        cells: dict[str, list[Line]] = {}
        for ln, col in zip(row.lines, assigned, strict=True):
            if col.field is not None:
                cells.setdefault(col.field.name, []).append(ln)
        values: dict[str, tuple[object, list[Line]]] = {}
        for spec in specs:
            lines = cells.get(spec.name)
            if not lines:
                continue
            v = _value(spec, " ".join(ln.text for ln in lines), ctx)
            if v is not None:
                values[spec.name] = (v, lines)
        numbers = [n for n, (v, _) in values.items() if isinstance(v, (int, float))]
        texts = [n for n in values if n not in numbers]
        if numbers and (texts or len(numbers) >= 2):
            index += 1
            current = {}
            for name, (v, lines) in values.items():
                fv = _field_value(arr.path, index, name, v, lines, reader)
                current[name] = fv
                out.append(fv)
            last_row_bottom = row.bottom
        elif texts and not numbers and current and index >= 0 and last_row_bottom is not None:
            if row.top - last_row_bottom < 1.6 * ctx.line_height:
                # a wrapped description continues the row above
                for name in texts:
                    prev = current.get(name)
                    if prev is not None and isinstance(prev.value, str):
                        prev.value = f"{prev.value} {values[name][0]}"
                        prev.raw = f"{prev.raw}\n{values[name][0]}"
                last_row_bottom = row.bottom
    return out


def _field_value(
    array: str, index: int, name: str, value, lines: list[Line], reader: str
) -> FieldValue:
    return value_from_lines(f"{array}/{index}/{name}", value, lines, reader, 0.85)


_KEY = re.compile(r"^\s*([^:]{1,60}?)\s*:\s*(.*)$")
_BOX = re.compile(r"^\s*(?:\[\s*[xXvV✓✔]?\s*\]|[☐☑☒■□])\s*")  # checkbox marks


def _is_label(text: str) -> bool:
    """A printed label without a colon: a few words, mostly letters."""
    if ":" in text:
        return False
    words = text.split()
    letters = sum(c.isalpha() for c in text)
    return 1 <= len(words) <= 5 and letters >= 3 and letters >= 0.7 * len(text.replace(" ", ""))


def read_pairs(arr: ArraySpec, ctx: DocContext, reader: str) -> list[FieldValue]:
    """Key/value pairs of a form: the learned key→value linker's links
    (:mod:`docvlm.read.learned.pairs`), or the rules' when no pair model ships.

    Each link gives ``<array>/<i>/key`` and ``<array>/<i>/value`` with the page and box of the
    key's and the value's own text (a label split at its colon keeps the part before it, a
    value of several lines the union of their boxes); checkbox marks before a value are
    dropped. Links come in reading order of their keys.
    """
    from docvlm.read.learned.pairs import clean_value, shipped

    model = shipped()
    if model is None:
        return read_pairs_rules(arr, ctx, reader)
    links = model.links(ctx)
    order = {id(ln): n for n, ln in enumerate(ctx.lines)}
    links.sort(key=lambda lk: (order.get(id(lk.key.lines[0]), 0), lk.key.bbox[0],
                               order.get(id(lk.value.lines[0]), 0), lk.value.bbox[1]))  # fmt: skip
    out: list[FieldValue] = []
    used: set[int] = set()
    for index, lk in enumerate(links):
        value = clean_value(lk.value.text)
        if not value or not lk.key.text.strip():
            continue
        used.update(lk.key.ids | lk.value.ids)
        conf = round(0.5 + 0.45 * lk.p, 4)
        out.append(value_from_lines(f"{arr.path}/{index}/key", lk.key.text.strip(),
                                    [lk.key.as_line()], reader, conf))  # fmt: skip
        out.append(value_from_lines(f"{arr.path}/{index}/value", value,
                                    [lk.value.as_line()], reader, conf))  # fmt: skip
    index = len(links)
    for key_line, value_line in _colon_labels(ctx, used) if _COLON_FALLBACK else ():
        key = _KEY.match(key_line.text).group(1).strip()
        out.append(_field_value(arr.path, index, "key", key, [key_line], reader))
        out.append(_field_value(arr.path, index, "value", clean_value(value_line.text),
                                [value_line], reader))  # fmt: skip
        index += 1
    return out


#: after the linker, a lone 'Label:' takes the left-aligned line right under it (FUNSD has few
#: of those: neutral there, but a plain form's 'Address:' above the address needs it)
_COLON_FALLBACK = True


def _colon_labels(ctx: DocContext, used: set[int]) -> list[tuple[Line, Line]]:
    """A 'Label:' line the linker left alone, alone on its row, with the free segment directly
    below it, left-aligned with it (an address under 'Address:')."""
    out = []
    for line in ctx.lines:
        m = _KEY.match(line.text)
        if (
            id(line) in used
            or not m
            or m.group(2).strip()
            or not re.search(r"[^\W\d_]", m.group(1))
        ):
            continue
        if len(ctx.row(line).lines) > 1:
            continue
        nxt = next(
            (ln for ln in ctx.below(line, max_rows=1, max_gap=1.0) if id(ln) not in used), None
        )
        if nxt is None or abs(nxt.bbox[0] - line.bbox[0]) > ctx.line_height:
            continue
        if _KEY.match(nxt.text) or nxt.text.rstrip().endswith(":"):
            continue
        if _BOX.sub("", nxt.text).strip():
            used.update((id(line), id(nxt)))
            out.append((line, nxt))
    return out


def read_pairs_rules(arr: ArraySpec, ctx: DocContext, reader: str) -> list[FieldValue]:
    """Key/value pairs of a form, in two passes: 'Label: value' or a colon label with its value
    to the right or directly below; then a label without colon (a few words of letters) with
    the segment beside it on its row ('Date   9/3/92').

    Checkbox marks before a value are dropped; a value that is itself a label is not taken.
    """
    out: list[FieldValue] = []
    index = -1
    used: set[int] = set()

    def emit(key: str, value: str, key_line: Line, value_line: Line | None) -> None:
        nonlocal index
        value = _BOX.sub("", value).strip()
        index += 1
        out.append(_field_value(arr.path, index, "key", key, [key_line], reader))
        if value and value_line is not None:
            out.append(_field_value(arr.path, index, "value", value, [value_line], reader))

    for line in ctx.lines:
        if id(line) in used:
            continue
        m = _KEY.match(line.text)
        if not m or not re.search(r"[^\W\d_]", m.group(1)):
            continue
        used.add(id(line))
        key, value = m.group(1).strip(), m.group(2).strip()
        if value:
            emit(key, "" if value.endswith(":") else value, line, line)  # not 'Name: Date:'
            continue
        right = ctx.right_of(line)
        nxt = next((ln for ln in right if id(ln) not in used), None)
        if not right:
            nxt = next(
                (ln for ln in ctx.below(line, max_rows=1, max_gap=1.5) if id(ln) not in used), None
            )
        if nxt is not None and not _KEY.match(nxt.text) and not nxt.text.rstrip().endswith(":"):
            used.add(id(nxt))
            emit(key, nxt.text.strip(), line, nxt)
        else:
            emit(key, "", line, None)
    for line in ctx.lines:
        right = ctx.right_of(line)
        if (id(line) in used or not right or id(right[0]) in used or not _is_label(line.text)
                or _KEY.match(right[0].text)
                or right[0].bbox[0] - line.bbox[2] > 8 * ctx.line_height):  # fmt: skip
            continue
        used.update((id(line), id(right[0])))
        emit(line.text.strip(), right[0].text.strip(), line, right[0])
    return out
