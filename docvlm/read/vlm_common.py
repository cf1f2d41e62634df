"""What the VLM readers share: plan a question per region, prompt, validate-then-re-ask, merge.

The flow for one document (:class:`VlmReader.read`):

1. **Per page, per region.** Each detected region is asked only for the schema fields that are
   plausible there (by region class: tables for line items and amounts, text-like regions for
   the scalar fields; figures skipped; by the region's OCR text when known: no number or date
   field for a region without digits) and still missing (a field found on page 1 is not asked
   on page 2). A page's questions go to the engine in one batch. A page without detected
   regions is asked as a whole.
2. **Whole-page fallback.** Fields still missing are asked of whole pages, a few pages a batch.
3. **Validate, then re-ask.** Every answer is coerced (ISO dates, plain numbers) and checked
   against the question's JSON Schema; a failing answer is sent back with the validator's
   messages, at most ``options.reask`` times; then the failing fields become explicit
   ``VlmAnswerError`` items carrying the last raw answer, the valid ones are kept.
4. **Merge.** One candidate per scalar field, the most confident; array items of all table
   regions in reading order. Provenance: page, the region's box and class, the reader, the
   model's answer text for the field, and a confidence (mean token probability of the value
   when the engine reports token probabilities, else the reader's documented constant).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import BBox, ErrorItem, FieldValue, Page
from docvlm.engines.vlm.base import (
    Completion,
    Conversation,
    EngineStats,
    VlmAnswerError,
    VlmEngine,
)
from docvlm.errors import DocvlmError, ReaderError
from docvlm.read.base import DocumentContent, Reader, ReadResult

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.extraction.schema import ArraySpec, FieldSpec, SchemaSpec

logger = logging.getLogger(__name__)

# Region classes (detector labels, lower-case) by what a VLM is asked there.
TABLE_LABELS = frozenset({"table", "table_body", "tables"})
SKIP_LABELS = frozenset(
    {
        "figure", "image", "picture", "chart", "formula", "formula_number", "equation",
        "seal", "header_image", "footer_image", "algorithm", "barcode", "qr_code",
    }
)  # fmt: skip
PAGE_CLASS = "page"  # region_class of whole-page answers

_HINT_CHARS = 1500
_MIN_REGION_PX = 8


def region_kind(label: str) -> str:
    """``"table"``, ``"skip"`` or ``"text"`` for a detector label."""
    name = label.lower().strip()
    if name in TABLE_LABELS:
        return "table"
    if name in SKIP_LABELS:
        return "skip"
    return "text"


def pointer(path: str) -> str:
    """JSON pointer of a field path: ``seller.name`` → ``/seller/name``,
    ``line_items/2/amount`` → ``/line_items/2/amount``."""
    head, *rest = path.split("/")
    parts = head.split(".") + rest
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _keys(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _node(schema: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    node: dict[str, Any] = schema
    for key in keys:
        node = (node.get("properties") or {}).get(key) or {}
    return node


# -- answer schemas ----------------------------------------------------------------------------


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
                src = _node(spec.schema, keys[: depth + 1])
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
        keys = _keys(f.path)
        obj = slot(keys)
        obj["properties"][keys[-1]] = leaf_schema(f, _node(spec.schema, keys))
        obj["required"].append(keys[-1])
    for arr in arrays:
        keys = _keys(arr.path)
        obj = slot(keys)
        items_src = _node(spec.schema, keys).get("items") or {}
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


# -- answers: parse, coerce, validate ----------------------------------------------------------


def _json_start(text: str) -> int:
    """Offset of the answer's JSON object (models sometimes wrap it in prose or fences)."""
    i = text.find("{")
    return 0 if i < 0 else i


def parse_answer(text: str) -> tuple[Any, int]:
    """The first JSON value in ``text`` and its offset.

    Raises:
        ValueError: No JSON object in the text.
    """
    start = _json_start(text)
    value, _ = json.JSONDecoder().raw_decode(text, start)
    return value, start


def leaf_spans(text: str, start: int = 0) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Character span of every leaf value of the JSON document at ``text[start:]``,
    keyed by its path (object keys and array indices)."""
    decoder = json.JSONDecoder()
    spans: dict[tuple[Any, ...], tuple[int, int]] = {}

    def ws(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, path: tuple[Any, ...]) -> int:
        i = ws(i)
        ch = text[i]
        if ch == "{":
            i = ws(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key, i = decoder.raw_decode(text, ws(i))
                i = ws(i) + 1  # ':'
                i = ws(value(i, (*path, key)))
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1  # '}'
        if ch == "[":
            i = ws(i + 1)
            if text[i] == "]":
                return i + 1
            n = 0
            while True:
                i = ws(value(i, (*path, n)))
                n += 1
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1  # ']'
        _, end = decoder.raw_decode(text, i)
        spans[path] = (i, end)
        return end

    try:
        value(start, ())
    except (ValueError, IndexError):
        pass
    return spans


def span_confidence(
    text: str, span: tuple[int, int], token_bytes: list[bytes], token_probs: list[float]
) -> float:
    """Mean probability of the tokens that overlap ``text[span[0]:span[1]]``."""
    b0 = len(text[: span[0]].encode("utf-8"))
    b1 = len(text[: span[1]].encode("utf-8"))
    pos, probs = 0, []
    for piece, prob in zip(token_bytes, token_probs, strict=False):
        end = pos + len(piece)
        if end > b0 and pos < b1 and piece:
            probs.append(prob)
        pos = end
        if pos >= b1:
            break
    return float(sum(probs) / len(probs)) if probs else 0.0


def _get(data: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def coerce_value(spec: FieldSpec, value: Any) -> Any:
    """Bring a model's value to the field's type (ISO dates, plain numbers); None for blanks.

    Values that cannot be brought are returned unchanged so the validator reports them.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in ("null", "none", "n/a"):
            return None
    else:
        text = None
    if spec.is_date and text is not None:
        try:
            from docvlm.extraction.normalize import parse_date
        except ImportError:  # pragma: no cover - normaliser always present in the package
            return text
        return parse_date(text) or text
    if spec.is_number:
        number: Any = value
        if text is not None:
            from docvlm.extraction.normalize import parse_amount

            parsed = parse_amount(text)
            number = parsed if parsed is not None else text
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if spec.type == "integer":
                return int(number) if float(number).is_integer() else number
            return float(number)
        return number
    if spec.type == "boolean" and text is not None:
        low = text.lower()
        if low in ("true", "yes"):
            return True
        if low in ("false", "no"):
            return False
        return text
    if spec.type == "string":
        if text is None:
            return value if isinstance(value, (dict, list, bool)) else str(value)
        if spec.enum:
            for option in spec.enum:
                if isinstance(option, str) and option.lower() == text.lower():
                    return option
        return text
    return value


def _raw_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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
class Outcome:
    """What a query finally gave: the coerced answer, the raw text, and what failed."""

    query: Query
    data: dict[str, Any] | None = None
    raw: str = ""
    completion: Completion | None = None
    invalid: dict[str, str] = field(default_factory=dict)  # JSON pointer -> validator message
    error: ReaderError | None = None  # the whole query failed


def normalise(query: Query, data: Any) -> dict[str, Any] | None:
    """Coerce an answer in place: asked keys filled with None when omitted, others dropped."""
    if not isinstance(data, dict):
        return None

    def fix_obj(obj: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        props = node.get("properties") or {}
        return {k: obj.get(k) for k in props}  # unknown keys dropped, omitted keys -> None

    def parent_of(keys: list[str]) -> dict[str, Any]:
        # walk (and repair) the nested objects above a field
        parent = out
        for depth, key in enumerate(keys[:-1]):
            node = _node(query.schema, keys[: depth + 1])
            child = parent.get(key)
            parent[key] = fix_obj(child, node) if isinstance(child, dict) else fix_obj({}, node)
            parent = parent[key]
        return parent

    out = fix_obj(data, query.schema)
    for f in query.fields:
        keys = _keys(f.path)
        parent = parent_of(keys)
        parent[keys[-1]] = coerce_value(f, parent.get(keys[-1]))
    for arr in query.arrays:
        keys = _keys(arr.path)
        parent = parent_of(keys)
        items = parent.get(keys[-1])
        if isinstance(items, dict):  # a single item instead of a list
            items = [items]
        if isinstance(items, list):
            fixed = []
            for item in items:
                if not isinstance(item, dict):
                    fixed.append(item)
                    continue
                fixed.append({f.name: coerce_value(f, item.get(f.name)) for f in arr.items})
            items = fixed
        parent[keys[-1]] = items
    return out


def validate(schema: dict[str, Any], data: Any) -> list[tuple[str, str]]:
    """``(JSON pointer, message)`` for each violation of ``schema`` (formats checked)."""
    from jsonschema import Draft202012Validator, FormatChecker

    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    out = []
    for err in validator.iter_errors(data):
        ptr = "/" + "/".join(str(p) for p in err.absolute_path) if err.absolute_path else ""
        out.append((ptr, err.message))
    return out


# -- prompts -----------------------------------------------------------------------------------


def _describe(f: FieldSpec, name: str) -> str:
    kind = "date (YYYY-MM-DD)" if f.is_date else f.type
    text = f"- `{name}` ({f.title + ', ' if f.title else ''}{kind})"
    if f.description:
        text += f": {f.description}"
    if f.enum:
        text += f" One of: {', '.join(map(str, f.enum))}."
    if f.examples:
        text += f" Examples: {', '.join(map(str, f.examples[:3]))}."
    return text


def build_prompt(query: Query, doc_title: str | None = None) -> str:
    """The instruction for one query: where to look, which fields, the rules, the schema."""
    where = (
        f"page {query.page} of a document"
        if query.region_index is None
        else f"a '{query.region_class}' region cropped from page {query.page} of a document"
    )
    lines = [f"The image shows {where}{f' ({doc_title})' if doc_title else ''}."]
    lines.append("Extract these fields:")
    for f in query.fields:
        lines.append(_describe(f, f.path))
    for arr in query.arrays:
        head = f"- `{arr.path}` ({arr.title + ', ' if arr.title else ''}list)"
        if arr.description:
            head += f": {arr.description}"
        lines.append(head + " One entry per row, each with:")
        lines.extend("  " + _describe(f, f.name) for f in arr.items)
    lines.append(
        "Answer with one JSON object that matches the JSON Schema below and nothing else. "
        "Use null for a field that is not shown in this image; do not guess. Copy text as "
        "printed. Write dates as YYYY-MM-DD and numbers as plain JSON numbers (no currency "
        "symbols, no thousands separators, '.' as the decimal point)."
    )
    if query.hint:
        lines.append("Text recognised in this image (it may contain errors):")
        lines.append(query.hint)
    lines.append("JSON Schema:")
    lines.append(json.dumps(query.schema, ensure_ascii=False))
    return "\n".join(lines)


def reask_prompt(problems: list[tuple[str, str]], parsed: bool, finished: bool) -> str:
    """The follow-up turn after an answer the validator rejected."""
    if not parsed:
        head = "Your answer was not a JSON object."
        if not finished:
            head = "Your answer was cut off before the JSON object was complete; answer shorter."
    else:
        head = "Your answer does not match the JSON Schema:"
    body = "\n".join(f"- {ptr or '(root)'}: {msg}" for ptr, msg in problems[:20])
    return (
        f"{head}\n{body}\nAnswer again with the corrected JSON object only; "
        "use null for values you cannot read."
    ).replace("\n\n", "\n")


# -- images ------------------------------------------------------------------------------------


def crop_region(
    image: Image.Image,
    bbox: BBox,
    page: Page,
    edge: int,
    square: bool = False,
    max_upscale: float = 4.0,
) -> Image.Image:
    """A region's crop (with a small margin), upscaled so its long side reaches ``edge``.

    ``bbox`` is in page pixels (``page.width`` x ``page.height``); the image may have another
    size. ``square`` pads to a square (for processors that centre-crop).
    """
    sx = image.width / page.width if page.width else 1.0
    sy = image.height / page.height if page.height else 1.0
    x0, y0, x1, y1 = bbox[0] * sx, bbox[1] * sy, bbox[2] * sx, bbox[3] * sy
    margin = max(4.0, 0.02 * max(x1 - x0, y1 - y0))
    box = (
        max(0, math.floor(x0 - margin)),
        max(0, math.floor(y0 - margin)),
        min(image.width, math.ceil(x1 + margin)),
        min(image.height, math.ceil(y1 + margin)),
    )
    crop = image.crop(box)
    if crop.mode != "RGB":
        crop = crop.convert("RGB")
    longest = max(crop.size)
    if 0 < longest < edge:
        scale = min(edge / longest, max_upscale)
        if scale > 1.05:
            from PIL import Image as PILImage

            crop = crop.resize(
                (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                PILImage.Resampling.LANCZOS,
            )
    return pad_square(crop) if square else crop


def pad_square(image: Image.Image) -> Image.Image:
    """``image`` centred on a white square."""
    from PIL import Image as PILImage

    side = max(image.size)
    if image.width == image.height:
        return image
    canvas = PILImage.new("RGB", (side, side), "white")
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


# -- the reader --------------------------------------------------------------------------------


def _plausible(f: FieldSpec, kind: str, text: str | None) -> bool:
    if kind == "table" and not f.is_number:
        return False
    if text is not None and (f.is_number or f.is_date):
        return any(ch.isdigit() for ch in text)
    return True


class VlmReader(Reader):
    """Base of the VLM readers: the stage logic; subclasses provide the engine.

    Attributes:
        default_confidence: Confidence of a value when the engine reports no token
            probabilities.
        max_string: Longest free string the decoding grammar allows.
        max_items: Most array items the decoding grammar allows.
        fallback_pages: Pages per batch in the whole-page fallback.
    """

    name = "vlm"
    default_confidence: float = 0.8
    max_string: int = 300
    max_items: int = 100
    fallback_pages: int = 4

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.engine: VlmEngine | None = None

    def _make_engine(self) -> VlmEngine:  # pragma: no cover - abstract in spirit
        raise NotImplementedError

    def initialize(self) -> None:
        """Create (or fetch the cached) engine."""
        self.engine = self._make_engine()

    # -- planning

    @staticmethod
    def targets(
        schema: SchemaSpec, wanted: list[str] | None, prior: list[FieldValue] | None
    ) -> tuple[list[FieldSpec], list[ArraySpec]]:
        """Fields and arrays to ask for: ``wanted`` (field or array paths), else all that
        ``prior`` has no value for."""
        if wanted is None:
            have = {v.path for v in prior or [] if v.value is not None}
            fields = [f for f in schema.fields if f.path not in have]
            arrays = [a for a in schema.arrays if not any(p.startswith(a.path + "/") for p in have)]
        else:
            want = set(wanted)
            fields = [f for f in schema.fields if f.path in want]
            arrays = [
                a
                for a in schema.arrays
                if a.path in want or any(w.startswith(a.path + "/") for w in want)
            ]
        return fields, arrays

    def _query(
        self,
        spec: SchemaSpec,
        page: Page,
        image: Image.Image,
        region_index: int | None,
        fields: list[FieldSpec],
        arrays: list[ArraySpec],
        hint: str,
    ) -> Query:
        engine = self.engine
        square = bool(getattr(engine, "pad_to_square", False))
        if region_index is None:
            bbox: BBox = (0.0, 0.0, float(page.width), float(page.height))
            crop = pad_square(image.convert("RGB")) if square else image
            region_class = PAGE_CLASS
        else:
            region = page.regions[region_index]
            bbox = region.bbox
            crop = crop_region(image, bbox, page, engine.preferred_edge, square)
            region_class = region.label
        query = Query(
            page=page.number,
            region_index=region_index,
            region_class=region_class,
            bbox=bbox,
            fields=fields,
            arrays=arrays,
            image=crop,
            hint=hint[:_HINT_CHARS],
        )
        query.schema = answer_schema(spec, fields, arrays)
        query.grammar = bounded_schema(query.schema, self.max_string, self.max_items)
        title = spec.schema.get("title") if isinstance(spec.schema.get("title"), str) else None
        query.conversation = [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": crop},
                    {"type": "text", "text": build_prompt(query, title)},
                ],
            }
        ]
        return query

    def plan_page(
        self,
        spec: SchemaSpec,
        page: Page,
        image: Image.Image,
        fields: list[FieldSpec],
        arrays: list[ArraySpec],
    ) -> list[Query]:
        """The questions for one page: one per useful region, or the whole page."""
        if not page.regions:
            if not fields and not arrays:
                return []
            hint = "\n".join(line.text for line in page.lines)
            return [self._query(spec, page, image, None, fields, arrays, hint)]
        texts: dict[int, list[str]] = {}
        for line in page.lines:
            texts.setdefault(line.region_index, []).append(line.text)
        queries = []
        for index, region in enumerate(page.regions):
            kind = region_kind(region.label)
            x0, y0, x1, y1 = region.bbox
            if kind == "skip" or x1 - x0 < _MIN_REGION_PX or y1 - y0 < _MIN_REGION_PX:
                continue
            text = "\n".join(texts[index]) if index in texts else None
            fs = [f for f in fields if _plausible(f, kind, text)]
            arrs = arrays if kind == "table" else []
            if fs or arrs:
                queries.append(self._query(spec, page, image, index, fs, arrs, text or ""))
        return queries

    # -- asking

    def ask(self, queries: list[Query], stats: EngineStats) -> list[Outcome]:
        """Send the queries (one batch), validate, re-ask the failing ones (bounded)."""
        engine = self.engine
        outcomes: list[Outcome | None] = [None] * len(queries)
        conversations = [list(q.conversation) for q in queries]
        pending = list(range(len(queries)))
        attempt = 0
        while pending:
            attempt += 1
            completions = engine.complete(
                [conversations[i] for i in pending],
                [queries[i].grammar if engine.constrained else queries[i].schema for i in pending],
                self.options.max_new_tokens,
                stats,
            )
            retry = []
            for i, completion in zip(pending, completions, strict=True):
                query = queries[i]
                if completion.error is not None:
                    outcomes[i] = Outcome(query, completion=completion, error=completion.error)
                    continue
                try:
                    parsed, _ = parse_answer(completion.text)
                    data = normalise(query, parsed)
                except ValueError:
                    data = None
                problems = (
                    validate(query.schema, data)
                    if data is not None
                    else [("", "the answer is not a JSON object")]
                )
                if not problems:
                    outcomes[i] = Outcome(query, data, completion.text, completion)
                    continue
                if attempt > self.options.reask:
                    message = f"answer still invalid after {attempt} attempts: " + "; ".join(
                        f"{p or '(root)'}: {m}" for p, m in problems[:5]
                    )
                    err = VlmAnswerError(
                        message, attempt, completion.text, [m for _, m in problems]
                    )
                    if data is None:
                        outcomes[i] = Outcome(query, None, completion.text, completion, error=err)
                    else:
                        outcomes[i] = Outcome(
                            query, data, completion.text, completion, invalid=dict(problems)
                        )
                    continue
                logger.info(
                    "VLM answer for page %d %s failed validation (%s); re-asking",
                    query.page,
                    query.region_class,
                    problems[0][1][:120],
                )
                conversations[i] = [
                    *conversations[i],
                    {"role": "assistant", "content": [{"type": "text", "text": completion.text}]},
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "text",
                                "text": reask_prompt(
                                    problems, data is not None, completion.finished
                                ),
                            }
                        ],
                    },
                ]
                retry.append(i)
            pending = retry
        return [o for o in outcomes if o is not None]

    # -- merging

    def _confidence(self, outcome: Outcome, keys: tuple[Any, ...], spans: dict) -> float:
        c = outcome.completion
        if c is None or not c.token_probs or not c.token_bytes or keys not in spans:
            return self.default_confidence
        return span_confidence(c.text, spans[keys], c.token_bytes, c.token_probs)

    def _field_value(
        self, outcome: Outcome, path: str, value: Any, raw: Any, keys: tuple[Any, ...], spans: dict
    ) -> FieldValue:
        q = outcome.query
        return FieldValue(
            path=path,
            value=value,
            raw=_raw_text(raw),
            page=q.page,
            bbox=q.bbox,
            region_class=q.region_class,
            reader=self.name,
            confidence=round(self._confidence(outcome, keys, spans), 4),
        )

    def harvest(
        self,
        outcome: Outcome,
        best: dict[str, FieldValue],
        items: dict[str, list[list[dict[str, FieldValue]]]],
        errors: list[ErrorItem],
    ) -> None:
        """Fold one outcome into the best candidates, the array parts and the errors."""
        q = outcome.query
        if outcome.error is not None:
            kind = type(outcome.error).__name__
            detail = str(outcome.error)
            if isinstance(outcome.error, VlmAnswerError):
                detail += f" | last answer: {outcome.error.last_raw[:500]}"
            where = f"page {q.page} {q.region_class}"
            for path in [f.path for f in q.fields] + [a.path for a in q.arrays]:
                errors.append(
                    ErrorItem(
                        stage="read",
                        error_type=kind,
                        message=f"{self.name} reader, {where}: {detail}",
                        path=pointer(path),
                    )
                )
            return
        data = outcome.data or {}
        raw_data: Any = None
        spans: dict = {}
        try:
            raw_data, start = parse_answer(outcome.raw)
            spans = leaf_spans(outcome.raw, start)
        except ValueError:
            pass
        invalid = outcome.invalid
        last_raw = outcome.raw[:500]

        def rejected(ptr: str) -> str | None:
            for bad, msg in invalid.items():
                if ptr == bad or ptr.startswith(bad + "/") or (bad and bad.startswith(ptr + "/")):
                    return msg
            return None

        for f in q.fields:
            keys = _keys(f.path)
            value = _get(data, keys)
            msg = rejected(pointer(f.path))
            if msg is not None:
                errors.append(
                    ErrorItem(
                        stage="read",
                        error_type="VlmAnswerError",
                        message=f"{self.name} reader, page {q.page} {q.region_class}: {msg} "
                        f"| last answer: {last_raw}",
                        path=pointer(f.path),
                    )
                )
                continue
            if value is None:
                continue
            fv = self._field_value(outcome, f.path, value, _get(raw_data, keys), keys, spans)
            old = best.get(f.path)
            if old is None or fv.confidence > old.confidence:
                best[f.path] = fv
        for arr in q.arrays:
            keys = _keys(arr.path)
            rows = _get(data, keys)
            if not isinstance(rows, list):
                continue
            part = []
            for n, row in enumerate(rows):
                if not isinstance(row, dict):
                    continue
                entry = {}
                for f in arr.items:
                    ptr = pointer(f"{arr.path}/{n}/{f.name}")
                    msg = rejected(ptr)
                    if msg is not None:
                        errors.append(
                            ErrorItem(
                                stage="read",
                                error_type="VlmAnswerError",
                                message=f"{self.name} reader, page {q.page} {q.region_class}: "
                                f"{msg} | last answer: {last_raw}",
                                path=ptr,
                            )
                        )
                        continue
                    value = row.get(f.name)
                    if value is None:
                        continue
                    k = (*keys, n, f.name)
                    entry[f.name] = self._field_value(
                        outcome, f"{arr.path}/{n}/{f.name}", value, _get(raw_data, k), k, spans
                    )
                if entry:
                    part.append(entry)
            if part:
                items.setdefault(arr.path, []).append(part)

    # -- the whole read

    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        """Ask the VLM for the wanted fields, region by region, then whole pages."""
        self.ensure_ready()
        stats = EngineStats()
        fields, arrays = self.targets(schema, wanted, prior)
        best: dict[str, FieldValue] = {}
        items: dict[str, list[list[dict[str, FieldValue]]]] = {}
        errors: list[ErrorItem] = []
        if not fields and not arrays:
            return ReadResult()
        images: dict[int, Image.Image] = {}

        def page_image(page: Page) -> Image.Image | None:
            if page.number not in images:
                try:
                    images[page.number] = doc.image(page.number)
                except (DocvlmError, OSError, ValueError) as exc:
                    errors.append(
                        ErrorItem(
                            stage="read",
                            error_type=type(exc).__name__,
                            message=f"{self.name} reader: page {page.number} image: {exc}",
                        )
                    )
                    return None
            return images[page.number]

        # 1. per page, per region
        for page in doc.pages:
            missing = [f for f in fields if f.path not in best]
            if not missing and not arrays:
                break
            image = page_image(page)
            if image is None:
                continue
            queries = self.plan_page(schema, page, image, missing, arrays)
            for outcome in self.ask(queries, stats) if queries else []:
                self.harvest(outcome, best, items, errors)
            if len(images) > 2:  # keep memory flat on long documents
                images.pop(min(images))

        # 2. whole-page fallback for what the regions did not give
        region_pages = [p for p in doc.pages if p.regions]
        for start in range(0, len(region_pages), self.fallback_pages):
            missing = [f for f in fields if f.path not in best]
            missing_arrays = [a for a in arrays if a.path not in items]
            if not missing and not missing_arrays:
                break
            queries = []
            for page in region_pages[start : start + self.fallback_pages]:
                image = page_image(page)
                if image is None:
                    continue
                hint = "\n".join(line.text for line in page.lines)
                queries.append(
                    self._query(schema, page, image, None, missing, missing_arrays, hint)
                )
            for outcome in self.ask(queries, stats) if queries else []:
                self.harvest(outcome, best, items, errors)

        values = sorted(best.values(), key=lambda v: [f.path for f in schema.fields].index(v.path))
        for arr in arrays:
            index = 0
            for part in items.get(arr.path, []):
                for entry in part:
                    for name, fv in entry.items():
                        values.append(fv.model_copy(update={"path": f"{arr.path}/{index}/{name}"}))
                    index += 1
        result = ReadResult(values=values, errors=_dedupe(errors), calls=stats.calls)
        logger.debug(
            "%s reader: %s: %d values, %d errors, %d calls",
            self.name,
            doc.doc_id[:12],
            len(values),
            len(result.errors),
            result.calls,
        )
        return result


def _dedupe(errors: list[ErrorItem]) -> list[ErrorItem]:
    seen, out = set(), []
    for e in errors:
        key = (e.path, e.error_type, e.message)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
