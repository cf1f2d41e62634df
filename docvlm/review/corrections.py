"""Corrections made in the review: typed, schema-checked, logged to ``OUT/corrections.parquet``,
applied to the records and exported as label JSON files (the dev-set format).

The log is append-only: one row per action, the latest action on a (document, field) wins.
Actions: ``correct`` (a new value), ``confirm`` (the value read is right), ``absent`` (the
document has no such value). Values are stored as JSON text (``"EUR"``, ``1390.99``, ``null``)
so a string ``"123"`` and a number ``123`` stay apart.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docvlm.errors import DocvlmError
from docvlm.schema import FieldSpec, SchemaSpec, schema_node

logger = logging.getLogger(__name__)

CORRECTIONS_FILE = "corrections.parquet"
COLUMNS = ["doc_id", "source", "field", "action", "old_value", "new_value", "reviewer",
           "corrected_at"]  # fmt: skip
ACTIONS = ("correct", "confirm", "absent")


class CorrectionError(DocvlmError):
    """A correction that was refused (unknown field, wrong type, schema violation)."""


@dataclass(frozen=True)
class FieldTarget:
    """A field path of a document and where it is in the schema."""

    path: str  # total | seller.name | line_items/3/amount
    spec: FieldSpec
    node: dict[str, Any]  # the field's own sub-schema
    array: str | None = None
    index: int | None = None


def field_target(schema: SchemaSpec, path: str) -> FieldTarget:
    """Resolve a field path against the schema.

    Raises:
        CorrectionError: the schema has no such field.
    """
    head, *rest = path.split("/")
    if not rest:
        for f in schema.fields:
            if f.path == path:
                return FieldTarget(path, f, schema_node(schema.schema, tuple(head.split("."))))
    elif len(rest) == 2 and rest[0].isdigit():
        for arr in schema.arrays:
            if arr.path != head:
                continue
            for f in arr.items:
                if f.name == rest[1]:
                    items = schema_node(schema.schema, tuple(head.split("."))).get("items") or {}
                    node = (items.get("properties") or {}).get(f.name) or {}
                    return FieldTarget(path, f, node, arr.path, int(rest[0]))
    raise CorrectionError(f"{path!r} is not a field of schema {schema.name!r}")


def parse_value(target: FieldTarget, text: str) -> Any:
    """The typed value of what the reviewer typed, checked against the field's sub-schema.

    Raises:
        CorrectionError: the text is not of the field's type or violates the schema; the
            message says what is expected.
    """
    from docvlm.schema import validator

    raw = text.strip() if isinstance(text, str) else text
    if raw == "" or raw is None:
        raise CorrectionError("empty value: type the value, or mark the field absent")
    kind = target.spec.type
    value: Any
    if kind == "number":
        try:
            value = (
                float(raw)
                if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", str(raw))
                else None
            )
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            raise CorrectionError(
                f"{target.path}: {raw!r} is not a number (digits with a '.' decimal point, "
                "e.g. 1234.56)"
            )
    elif kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", str(raw)):
            raise CorrectionError(f"{target.path}: {raw!r} is not a whole number (e.g. 42)")
        value = int(raw)
    elif kind == "boolean":
        if str(raw).lower() not in ("true", "false"):
            raise CorrectionError(f"{target.path}: {raw!r} is not true or false")
        value = str(raw).lower() == "true"
    else:
        value = str(raw)
    node = {k: v for k, v in target.node.items() if k not in ("title", "description", "examples")}
    problems = [e.message for e in validator(node).iter_errors(value)]
    if problems:
        hint = " (a date is written YYYY-MM-DD)" if target.spec.is_date else ""
        raise CorrectionError(f"{target.path}: {'; '.join(problems)}{hint}")
    return value


def encode(value: Any) -> str | None:
    """A value as the log stores it (JSON text; ``None`` stays ``None``)."""
    return None if value is None else json.dumps(value, ensure_ascii=False)


def decode(text: Any) -> Any:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


class CorrectionLog:
    """``OUT/corrections.parquet``: read, append (rewritten atomically on every append)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / CORRECTIONS_FILE
        self._lock = threading.Lock()

    def rows(self) -> list[dict[str, Any]]:
        """Every logged action, oldest first."""
        if not self.path.exists():
            return []
        import pandas as pd

        df = pd.read_parquet(self.path)
        return [
            {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")
        ]

    def latest(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest action per (doc_id, field)."""
        return {(r["doc_id"], r["field"]): r for r in self.rows()}

    def append(self, row: dict[str, Any]) -> dict[str, Any]:
        """Log one action; returns the stored row."""
        import pandas as pd

        from docvlm.tables import write_table

        stored = {k: row.get(k) for k in COLUMNS}
        with self._lock:
            df = pd.DataFrame([*self.rows(), stored], columns=COLUMNS).astype("string")
            write_table(df, self.path)
        logger.info(
            "event=correction doc_id=%s field=%s action=%s", row["doc_id"], row["field"],
            row["action"],
        )  # fmt: skip
        return stored


def make_correction(
    schema: SchemaSpec,
    doc_id: str,
    source: str,
    field: str,
    action: str,
    old_value: Any,
    text: str | None,
    reviewer: str,
) -> dict[str, Any]:
    """A log row for one reviewer action, after checking it against the schema.

    ``old_value`` is the value the page showed (typed); ``confirm`` checks that it satisfies
    the schema, ``correct`` parses and checks ``text``.

    Raises:
        CorrectionError: unknown action or field, wrong type, schema violation.
    """
    if action not in ACTIONS:
        raise CorrectionError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    target = field_target(schema, field)
    if action == "correct":
        new = parse_value(target, text if text is not None else "")
    elif action == "confirm":
        if old_value is None:
            raise CorrectionError(f"{field}: nothing to confirm; type the value or mark it absent")
        new = parse_value(
            target, old_value if isinstance(old_value, str) else json.dumps(old_value)
        )
    else:
        new = None
    return {
        "doc_id": doc_id,
        "source": source,
        "field": field,
        "action": action,
        "old_value": encode(old_value),
        "new_value": encode(new),
        "reviewer": reviewer,
        "corrected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# -- labels: the records with corrections applied -----------------------------------------


def _set(label: dict[str, Any], path: str, value: Any) -> None:
    head, *rest = path.split("/")
    keys = head.split(".")
    node = label
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return
    if not rest:
        node[keys[-1]] = value
        return
    items = node.setdefault(keys[-1], [])
    if not isinstance(items, list) or len(rest) != 2 or not rest[0].isdigit():
        return
    index = int(rest[0])
    while len(items) <= index:
        items.append({})
    items[index][rest[1]] = value


def document_label(values: dict[str, Any], corrections: list[dict[str, Any]]) -> dict[str, Any]:
    """One document's label: its values (flat paths, see
    :func:`docvlm.review.output.document_values`) with the corrections applied, nested as in
    the dev sets (``{"seller": {"name": ...}, "line_items": [{...}]}``).

    Values never read and never corrected are left out (unknown, not scored); a field marked
    absent is ``null`` (truth: the document has no such value).
    """
    flat = {k: v for k, v in values.items() if v is not None}
    for c in corrections:
        flat[c["field"]] = decode(c["new_value"]) if c["action"] != "absent" else None
    label: dict[str, Any] = {}
    for path, value in flat.items():
        _set(label, path, value)
    return label


def labels(out_dir: str | Path, table: str | None = None) -> dict[str, dict[str, Any]]:
    """``<source file stem>`` → label, for every document that has corrections.

    Raises:
        ConfigError: no output tables in ``out_dir``.
    """
    from docvlm.review.output import document_values, load_output

    log = CorrectionLog(out_dir)
    latest = log.latest()
    if not latest:
        return {}
    tables = load_output(out_dir, table)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for (doc_id, _field), row in latest.items():
        by_doc.setdefault(doc_id, []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for record in tables.records.to_dict("records"):
        doc_id = str(record["doc_id"])
        if doc_id not in by_doc:
            continue
        stem = Path(str(record["source"])).stem
        if stem in out:
            logger.warning("two documents named %s: the label of %s wins", stem, record["source"])
        out[stem] = document_label(document_values(tables, doc_id, record), by_doc[doc_id])
    return out


def export_labels(out_dir: str | Path, dest: str | Path, table: str | None = None) -> list[Path]:
    """Write one ``<source file stem>.json`` per corrected document into ``dest``."""
    from docvlm.ops.dataset import atomic_text

    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, label in sorted(labels(out_dir, table).items()):
        path = folder / f"{stem}.json"
        atomic_text(path, json.dumps(label, ensure_ascii=False, indent=2) + "\n")
        written.append(path)
    return written
