"""Answer schemas: the JSON Schema a VLM answer must follow, and the question it answers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import BBox
from docvlm.engines.vlm.base import Completion, Conversation
from docvlm.errors import ReaderError
from docvlm.schema import field_keys, schema_node

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.schema import ArraySpec, FieldSpec, SchemaSpec


@dataclass
class Query:
    """One question to a VLM: an image (region crop or page), the fields asked, the schema."""

    page: int
    region_index: int | None  # None: the whole page
    region_class: str
    bbox: BBox
    fields: list[FieldSpec]
    arrays: list[ArraySpec]
    image: Image.Image
    hint: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    grammar: dict[str, Any] = field(default_factory=dict)
    conversation: Conversation = field(default_factory=list)


@dataclass
class Answer:
    """What a query finally gave: the coerced answer, the raw text, and what failed."""

    query: Query
    data: dict[str, Any] | None = None
    raw: str = ""
    completion: Completion | None = None
    invalid: dict[str, str] = field(default_factory=dict)  # JSON pointer -> validator message
    error: ReaderError | None = None  # the whole query failed


def leaf_schema(spec: FieldSpec, node: dict[str, Any] | None = None) -> dict[str, Any]:
    """A field's JSON Schema in an answer: its type made nullable (null = not on the image)."""
    out: dict[str, Any] = {"type": [spec.type, "null"]}
    if spec.title:
        out["title"] = spec.title
    if spec.description:
        out["description"] = spec.description
    if spec.format and spec.type == "string":
        out["format"] = spec.format
    if spec.pattern:
        out["pattern"] = spec.pattern
    if spec.enum:
        out["enum"] = [*spec.enum, *([] if None in spec.enum else [None])]
    for key in (
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
    ):
        if node and key in node and node.get("type") != "array":
            out[key] = node[key]
    return out


def answer_schema(
    spec: SchemaSpec, fields: Iterable[FieldSpec], arrays: Iterable[ArraySpec]
) -> dict[str, Any]:
    """The JSON Schema of one answer: the asked fields (nested as in ``spec``), all keys
    required, no others, every leaf nullable."""
    root: dict[str, Any] = {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }

    def slot(keys: tuple[str, ...]) -> dict[str, Any]:
        obj = root
        for depth, key in enumerate(keys[:-1]):
            if key not in obj["properties"]:
                src = schema_node(spec.schema, keys[: depth + 1])
                child: dict[str, Any] = {
                    "type": "object",
                    "properties": {},
                    "required": [],
                    "additionalProperties": False,
                }
                for k in ("title", "description"):
                    if src.get(k):
                        child[k] = src[k]
                obj["properties"][key] = child
                obj["required"].append(key)
            obj = obj["properties"][key]
        return obj

    for f in fields:
        keys = field_keys(f.path)
        obj = slot(keys)
        obj["properties"][keys[-1]] = leaf_schema(f, schema_node(spec.schema, keys))
        obj["required"].append(keys[-1])
    for arr in arrays:
        keys = field_keys(arr.path)
        obj = slot(keys)
        items_src = schema_node(spec.schema, keys).get("items") or {}
        item: dict[str, Any] = {
            "type": "object",
            "properties": {
                f.name: leaf_schema(f, (items_src.get("properties") or {}).get(f.name))
                for f in arr.items
            },
            "required": [f.name for f in arr.items],
            "additionalProperties": False,
        }
        node: dict[str, Any] = {"type": ["array", "null"], "items": item}
        if arr.title:
            node["title"] = arr.title
        if arr.description:
            node["description"] = arr.description
        obj["properties"][keys[-1]] = node
        obj["required"].append(keys[-1])
    return root


def bounded_schema(schema: dict[str, Any], max_string: int, max_items: int) -> dict[str, Any]:
    """A copy of an answer schema with length bounds for the decoding grammar.

    Free strings get ``maxLength``, numbers a range and at most six decimals, arrays
    ``maxItems``, so one runaway value cannot eat the token budget. Only the grammar gets
    these; answers are validated against the unbounded schema.
    """

    def walk(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) if k in ("items",) else v for k, v in node.items()}
        if "properties" in node:
            out["properties"] = {k: walk(v) for k, v in node["properties"].items()}
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "string" in types and not {"enum", "format", "maxLength"} & node.keys():
            out["maxLength"] = max_string
        if "number" in types and "multipleOf" not in node:
            out["multipleOf"] = 1e-6
        if ("number" in types or "integer" in types) and not {"minimum", "maximum"} & node.keys():
            out["minimum"], out["maximum"] = -1e15, 1e15
        if "array" in types and "maxItems" not in node:
            out["maxItems"] = max_items
        return out

    return walk(schema)


def length_problems(bounded: dict[str, Any], data: Any) -> list[tuple[str, str]]:
    """``(JSON pointer, message)`` for each string longer than its ``maxLength`` and each
    array longer than its ``maxItems`` in a :func:`bounded_schema` (the field's own bound,
    else the reader's ``max_string``/``max_items``). Servers that ignore the grammar can
    return a page of text for a 20-character field; such a value is rejected, not kept."""
    from docvlm.schema import pointer

    out: list[tuple[str, str]] = []

    def walk(node: Any, value: Any, path: list[Any]) -> None:
        if not isinstance(node, dict):
            return
        if isinstance(value, str) and isinstance(node.get("maxLength"), int):
            if len(value) > node["maxLength"]:
                out.append(
                    (
                        pointer(path),
                        f"is {len(value)} characters long, more than the field's bound of "
                        f"{node['maxLength']}",
                    )
                )
        elif isinstance(value, dict):
            for key, child in (node.get("properties") or {}).items():
                if key in value:
                    walk(child, value[key], [*path, key])
        elif isinstance(value, list):
            most = node.get("maxItems")
            if isinstance(most, int) and len(value) > most:
                out.append((pointer(path), f"has {len(value)} items, more than {most}"))
            for i, item in enumerate(value[: most if isinstance(most, int) else None]):
                walk(node.get("items") or {}, item, [*path, i])
        for alt in node.get("anyOf") or ():
            if isinstance(alt, dict) and alt.get("type") in ("string", "array", "object"):
                walk(alt, value, path)

    walk(bounded, data, [])
    return out
