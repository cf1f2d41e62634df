"""Which schema field is which EN 16931 term: semantic matching, or the schema's own pin.

A field is matched by its own words (:func:`docvlm.read.fieldmatch.match_fields`); the vendor
keyword ``"x-docvlm": {"en16931": "BT-112"}`` pins a field to a term, and ``"en16931": false``
keeps a field off the XML (it is read from the page). Pins on an array of objects name the
line group (``"BG-25"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from docvlm.einvoice.terms import BY_ID, LINE_GROUP, TERMS, Term
from docvlm.errors import SchemaError
from docvlm.read.fieldmatch import FieldMatch, field_words, match_fields, score
from docvlm.schema import ArraySpec, FieldSpec, SchemaSpec

_VENDOR = "x-docvlm"
_KEY = "en16931"
ARRAY_THRESHOLD = 0.45


@dataclass
class SchemaMapping:
    """Field paths to terms: scalar fields to header terms, arrays to BG-25 lines."""

    fields: dict[str, FieldMatch] = field(default_factory=dict)
    arrays: dict[str, dict[str, FieldMatch]] = field(default_factory=dict)

    def describe(self) -> dict[str, str]:
        """``{field path: term id}``, array items as ``array[].name``."""
        out = {p: m.concept for p, m in self.fields.items()}
        for arr, items in self.arrays.items():
            out.update({f"{arr}[].{n}": m.concept for n, m in items.items()})
        return out


def compatible(spec: FieldSpec, term: Term) -> float:
    """A factor for a field/term pair by type: 0 where the value could not fill the field."""
    numeric = term.kind in ("amount", "quantity", "percent", "count")
    if spec.type == "boolean":
        return 0.0
    if spec.is_number:
        if not numeric:
            return 0.0
        return 0.9 if spec.type == "integer" and term.kind in ("amount", "percent") else 1.0
    if spec.is_date:
        return 1.0 if term.kind == "date" else 0.0
    if spec.enum:
        return 1.0 if term.kind == "code" else 0.5
    if term.kind == "date":
        return 0.9
    return 0.7 if numeric else 1.0


def _node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for key in path.split("."):
        node = (node.get("properties") or {}).get(key) or {}
    return node


def _pin(node: dict[str, Any], where: str) -> tuple[bool, str | None]:
    """(pinned?, term id or None for 'never from the XML')."""
    vendor = node.get(_VENDOR)
    if not isinstance(vendor, dict) or _KEY not in vendor:
        return False, None
    value = vendor[_KEY]
    if value in (False, None, "", "none"):
        return True, None
    m = re.fullmatch(r"\s*(B[TG])[-\s]?(\d+)(\.count)?\s*", str(value), re.IGNORECASE)
    tid = f"{m.group(1).upper()}-{m.group(2)}{m.group(3) or ''}" if m else str(value)
    if tid not in BY_ID and tid != LINE_GROUP.id:
        known = ", ".join(t.id for t in TERMS)
        raise SchemaError(
            f"{where}: x-docvlm.en16931 {value!r} is not a term docvlm reads; known: {known}"
        )
    return True, tid


def _context(schema: dict[str, Any], path: str) -> list[str]:
    """Name, title and description of each object above ``path``, nearest first."""
    parts = path.split(".")
    out: list[str] = []
    for depth in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:depth])
        node = _node(schema, parent)
        out.extend(x for x in (parts[depth - 1], node.get("title"), node.get("description")) if x)
    return out


def _array_matches(
    schema: SchemaSpec, arr: ArraySpec, line_terms: list[Term]
) -> dict[str, FieldMatch]:
    node = _node(schema.schema, arr.path)
    pinned, tid = _pin(node, f"{schema.name}: {arr.path}")
    if pinned and tid is None:
        return {}
    items_node = (node.get("items") or {}).get("properties") or {}
    pins: dict[str, str | None] = {}
    for spec in arr.items:
        p, t = _pin(items_node.get(spec.name) or {}, f"{schema.name}: {arr.path}[].{spec.name}")
        if p:
            if t is not None and BY_ID[t].level != "line":
                raise SchemaError(
                    f"{schema.name}: {arr.path}[].{spec.name}: {t} is no invoice-line term"
                )
            pins[spec.name] = t
    if not pinned:
        pseudo = FieldSpec(path=arr.path, name=arr.path.rsplit(".", 1)[-1], type="array",
                           title=arr.title, description=arr.description)  # fmt: skip
        group = score(field_words(pseudo, _context(schema.schema, arr.path)), LINE_GROUP)
        if group < ARRAY_THRESHOLD:
            return {}
    elif tid != LINE_GROUP.id:
        raise SchemaError(
            f"{schema.name}: {arr.path}: an array maps to BG-25 (invoice lines), not {tid}"
        )
    ctx = [arr.path.rsplit(".", 1)[-1], arr.title or ""]
    items = list(arr.items)  # item fields have path == name
    return match_fields(
        items, line_terms, context={s.path: ctx for s in items}, compatible=compatible, pins=pins
    )


def map_schema(schema: SchemaSpec, threshold: float = 0.5) -> SchemaMapping:
    """The terms of ``schema``'s fields.

    Raises:
        SchemaError: A pin names an unknown term, or a term of the wrong level.
    """
    header = [t for t in TERMS if t.level == "header"]
    line_terms = [t for t in TERMS if t.level == "line"]
    pins: dict[str, str | None] = {}
    for spec in schema.fields:
        p, t = _pin(_node(schema.schema, spec.path), f"{schema.name}: {spec.path}")
        if p:
            if t is not None and (t == LINE_GROUP.id or BY_ID[t].level != "header"):
                raise SchemaError(f"{schema.name}: {spec.path}: {t} is an invoice-line term")
            pins[spec.path] = t
    mapping = SchemaMapping()
    mapping.fields = match_fields(
        schema.fields,
        header,
        context={s.path: _context(schema.schema, s.path) for s in schema.fields},
        compatible=compatible,
        pins=pins,
        threshold=threshold,
    )
    for arr in schema.arrays:
        items = _array_matches(schema, arr, line_terms)
        if items:
            mapping.arrays[arr.path] = items
    return mapping


__all__ = ["SchemaMapping", "compatible", "map_schema"]
