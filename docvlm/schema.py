"""Turn a JSON Schema into the flat list of fields the readers look for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from docvlm.errors import SchemaError

_VENDOR = "x-docvlm"


@dataclass(frozen=True)
class FieldSpec:
    """One scalar field of a schema.

    ``path`` uses dots for nested objects (``seller.name``); fields of array items carry
    ``array`` (the array property's path) and ``path`` is relative to the item.
    """

    path: str
    name: str
    type: str  # string | number | integer | boolean
    format: str | None = None
    title: str | None = None
    description: str | None = None
    pattern: str | None = None
    enum: tuple[Any, ...] | None = None
    examples: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()  # vendor hint: extra label phrases
    array: str | None = None
    required: bool = False

    @property
    def is_date(self) -> bool:
        return self.type == "string" and self.format in ("date", "date-time")

    @property
    def is_number(self) -> bool:
        return self.type in ("number", "integer")


@dataclass(frozen=True)
class ArraySpec:
    """An array-of-objects property (a table: line items, key/value pairs)."""

    path: str
    title: str | None
    description: str | None
    items: tuple[FieldSpec, ...]

    @property
    def is_key_value(self) -> bool:
        names = {f.name for f in self.items}
        return names == {"key", "value"}


@dataclass
class SchemaSpec:
    """A loaded JSON Schema with its fields flattened."""

    name: str
    schema: dict[str, Any]
    fields: list[FieldSpec] = field(default_factory=list)
    arrays: list[ArraySpec] = field(default_factory=list)
    path: str | None = None

    @property
    def columns(self) -> list[str]:
        """Record-table columns for the scalar fields, in schema order."""
        return [f.path for f in self.fields]

    def field(self, path: str) -> FieldSpec:
        for f in self.fields:
            if f.path == path:
                return f
        raise KeyError(path)

    def to_json(self) -> str:
        return json.dumps(self.schema)


def schema_name(path: str | Path) -> str:
    """``invoice.schema.json`` → ``invoice``; ``my.json`` → ``my``."""
    name = Path(path).name
    for suffix in (".schema.json", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _type_of(node: dict[str, Any]) -> str:
    t = node.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t is None:
        if "enum" in node:
            return "string"
        if "properties" in node:
            return "object"
        return "string"
    return str(t)


def _field(
    path: str, name: str, node: dict[str, Any], array: str | None, required: bool
) -> FieldSpec:
    vendor = node.get(_VENDOR) or {}
    enum = node.get("enum")
    return FieldSpec(
        path=path,
        name=name,
        type=_type_of(node),
        format=node.get("format"),
        title=node.get("title"),
        description=node.get("description"),
        pattern=node.get("pattern"),
        enum=tuple(enum) if enum else None,
        examples=tuple(node.get("examples") or ()),
        labels=tuple(vendor.get("labels") or ()),
        array=array,
        required=required,
    )


def _walk(node: dict[str, Any], prefix: str, spec: SchemaSpec, required: set[str]) -> None:
    for name, child in (node.get("properties") or {}).items():
        if not isinstance(child, dict):
            raise SchemaError(f"{spec.path}: property {prefix}{name!r} is not an object")
        path = f"{prefix}{name}"
        kind = _type_of(child)
        if kind == "object":
            _walk(child, path + ".", spec, set(child.get("required") or ()))
        elif kind == "array":
            items = child.get("items") or {}
            if _type_of(items) == "object":
                req = set(items.get("required") or ())
                item_fields = tuple(
                    _field(n, n, c, path, n in req)
                    for n, c in (items.get("properties") or {}).items()
                    if _type_of(c) not in ("object", "array")
                )
                spec.arrays.append(
                    ArraySpec(path, child.get("title"), child.get("description"), item_fields)
                )
            # arrays of scalars are kept as one joined column
            else:
                spec.fields.append(
                    _field(path, name, {**child, "type": "string"}, None, name in required)
                )
        else:
            spec.fields.append(_field(path, name, child, None, name in required))


def load_schema(path: str | Path) -> SchemaSpec:
    """Load and check a JSON Schema file (Draft 2020-12) and flatten its fields."""

    p = Path(path)
    try:
        schema = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SchemaError(f"schema file not found: {p}") from exc
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{p}: not a readable JSON file ({exc})") from exc
    return schema_from_dict(schema, schema_name(p), str(p))


def schema_from_dict(schema: dict[str, Any], name: str, path: str | None = None) -> SchemaSpec:
    """Flatten an in-memory JSON Schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError as JsError

    if not isinstance(schema, dict):
        raise SchemaError(f"{path or name}: a JSON Schema must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except JsError as exc:
        raise SchemaError(f"{path or name}: invalid JSON Schema: {exc.message}") from exc
    if _type_of(schema) != "object" or not schema.get("properties"):
        raise SchemaError(f"{path or name}: the schema must describe an object with properties")
    spec = SchemaSpec(name=name, schema=schema, path=path)
    _walk(schema, "", spec, set(schema.get("required") or ()))
    check_names(spec)
    for f in spec.fields:
        if f.pattern:
            try:
                re.compile(f.pattern)
            except re.error as exc:
                raise SchemaError(f"{path or name}: bad pattern for {f.path}: {exc}") from exc
    return spec


# -- names that become files and columns ----------------------------------------------------

#: tables every run writes next to the schema's own (a schema must not replace them)
RESERVED_TABLES = ("errors", "provenance")
#: the record table's contract columns, and a child table's
RECORD_COLUMNS = ("doc_id", "source", "status")
ITEM_COLUMNS = ("doc_id", "item_index")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def _unsafe(name: str) -> str | None:
    """Why ``name`` cannot name a file or column part, or None."""
    if not name or not name.strip():
        return "is empty"
    if _UNSAFE.search(name):
        return "holds a path separator or a control character"
    if name in (".", "..") or name.startswith(".."):
        return "is '.' or starts with '..'"
    return None


def check_names(spec: SchemaSpec) -> None:
    """Refuse names that would write outside ``--out``, replace the errors or provenance
    table, or give two values one column.

    Raises:
        SchemaError: With the offending name and what to change.
    """
    where = spec.path or spec.name
    problem = _unsafe(spec.name)
    if problem:
        raise SchemaError(f"{where}: schema name {spec.name!r} {problem}; rename the file")
    if spec.name.lower() in RESERVED_TABLES:
        raise SchemaError(
            f"{where}: a schema named {spec.name!r} would replace the {spec.name.lower()} "
            "table every run writes; rename the schema file"
        )
    for path in [*spec.columns, *(a.path for a in spec.arrays)]:
        for part in path.split("."):
            problem = _unsafe(part)
            if problem:
                raise SchemaError(f"{where}: property name {part!r} in {path!r} {problem}")
    seen: dict[str, str] = {}
    for column in spec.columns:
        if column in RECORD_COLUMNS:
            raise SchemaError(
                f"{where}: property {column!r} collides with the record table's own "
                f"{column!r} column; rename the property"
            )
        if column in seen:
            raise SchemaError(
                f"{where}: properties {seen[column]!r} and {column!r} would both be column "
                f"{column!r} (a property named with a dot and a nested object); rename one"
            )
        seen[column] = column
    tables = {f"{spec.name}__{a.path}" for a in spec.arrays}
    for arr in spec.arrays:
        if arr.path in seen:
            raise SchemaError(f"{where}: {arr.path!r} is both a column and a child table")
        for item in arr.items:
            problem = _unsafe(item.name)
            if problem:
                raise SchemaError(f"{where}: property name {item.name!r} in {arr.path} {problem}")
            if item.name in ITEM_COLUMNS:
                raise SchemaError(
                    f"{where}: item property {arr.path}.{item.name} collides with the child "
                    f"table's own {item.name!r} column; rename the property"
                )
    if len(tables) != len(spec.arrays):
        raise SchemaError(f"{where}: two array properties would write the same child table")


# -- paths, pointers and validation: the one place for each ----------------------------------


def field_keys(path: str) -> tuple[str, ...]:
    """Object keys of a field path: ``seller.name`` → ``("seller", "name")``."""
    return tuple(path.split("."))


def schema_node(schema: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The sub-schema at nested object ``keys`` (``{}`` when a key is not declared)."""
    node: dict[str, Any] = schema
    for key in keys:
        node = (node.get("properties") or {}).get(key) or {}
    return node


def pointer(parts: Any) -> str:
    """JSON pointer (RFC 6901) of a sequence of keys and indices."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def field_pointer(path: str) -> str:
    """JSON pointer of a field path: ``seller.name`` → ``/seller/name``,
    ``line_items/2/amount`` → ``/line_items/2/amount``."""
    head, *rest = path.split("/")
    return pointer(head.split(".") + rest)


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validator(schema: dict[str, Any]) -> Any:
    """A Draft 2020-12 validator with format checks for ``schema`` (built once per schema)."""
    return _validator(json.dumps(schema, sort_keys=True))


def schema_problems(schema: dict[str, Any], data: Any) -> list[tuple[str, str]]:
    """``(JSON pointer, message)`` for each violation of ``schema`` by ``data``."""
    return [
        (pointer(err.absolute_path), err.message) for err in validator(schema).iter_errors(data)
    ]
