"""Region planning: which questions to ask of a page — one per useful layout region, with
only the fields plausible there — and the image each question shows."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from docvlm.datamodel import BBox, Page
from docvlm.read.vlm.answer import Query, answer_schema, bounded_schema
from docvlm.read.vlm.prompts import build_prompt

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.engines.vlm.base import VlmEngine
    from docvlm.schema import ArraySpec, FieldSpec, SchemaSpec

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


def plausible(f: FieldSpec, kind: str, text: str | None) -> bool:
    if kind == "table" and not f.is_number:
        return False
    if text is not None and (f.is_number or f.is_date):
        return any(ch.isdigit() for ch in text)
    return True


def make_query(
    engine: VlmEngine,
    spec: SchemaSpec,
    page: Page,
    image: Image.Image,
    region_index: int | None,
    fields: list[FieldSpec],
    arrays: list[ArraySpec],
    hint: str,
    max_string: int,
    max_items: int,
) -> Query:
    """The question about one region (``region_index``) or the whole page (None)."""
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
    query.grammar = bounded_schema(query.schema, max_string, max_items)
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
    engine: VlmEngine,
    spec: SchemaSpec,
    page: Page,
    image: Image.Image,
    fields: list[FieldSpec],
    arrays: list[ArraySpec],
    max_string: int,
    max_items: int,
) -> list[Query]:
    """The questions for one page: one per useful region, or the whole page."""
    if not page.regions:
        if not fields and not arrays:
            return []
        hint = "\n".join(line.text for line in page.lines)
        return [
            make_query(engine, spec, page, image, None, fields, arrays, hint, max_string, max_items)
        ]
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
        fs = [f for f in fields if plausible(f, kind, text)]
        arrs = arrays if kind == "table" else []
        if fs or arrs:
            queries.append(
                make_query(
                    engine, spec, page, image, index, fs, arrs, text or "", max_string, max_items
                )
            )
    return queries
