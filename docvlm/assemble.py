"""Merge field candidates into one record per document: the best candidate per field wins."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from docvlm.datamodel import FieldValue
from docvlm.schema import SchemaSpec


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict."""
    parts = path.split(".")
    node = record
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def assemble(
    candidates: list[FieldValue], schema: SchemaSpec
) -> tuple[dict[str, Any], list[FieldValue]]:
    """The record (nested like the schema) and the chosen values (its provenance).

    Scalars: highest confidence wins (first seen on ties). Arrays: the reader whose rows are
    most complete and confident supplies all rows, so rows from two readers are never mixed.
    """
    record: dict[str, Any] = {}
    chosen: list[FieldValue] = []
    best: dict[str, FieldValue] = {}
    arrays: dict[str, list[FieldValue]] = defaultdict(list)
    array_paths = {a.path for a in schema.arrays}
    for cand in candidates:
        if cand.value is None:
            continue
        head = cand.path.split("/", 1)[0]
        if "/" in cand.path and head in array_paths:
            arrays[head].append(cand)
        elif cand.path not in best or cand.confidence > best[cand.path].confidence:
            best[cand.path] = cand
    for spec in schema.fields:
        if spec.path in best:
            set_path(record, spec.path, best[spec.path].value)
            chosen.append(best[spec.path])
    for arr in schema.arrays:
        items = arrays.get(arr.path)
        if not items:
            continue
        by_reader: dict[str, list[FieldValue]] = defaultdict(list)
        for cand in items:
            by_reader[cand.reader].append(cand)
        winner = max(by_reader.values(), key=lambda vs: sum(v.confidence for v in vs))
        rows: dict[int, dict[str, Any]] = {}
        for cand in winner:
            _, idx, name = cand.path.split("/", 2)
            rows.setdefault(int(idx), {})[name] = cand.value
        ordered = [rows[i] for i in sorted(rows)]
        renumber = {old: new for new, old in enumerate(sorted(rows))}
        for cand in winner:
            _, idx, name = cand.path.split("/", 2)
            chosen.append(
                cand.model_copy(update={"path": f"{arr.path}/{renumber[int(idx)]}/{name}"})
            )
        set_path(record, arr.path, ordered)
    return record, chosen
