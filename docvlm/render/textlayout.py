"""Layout regions of a born-digital PDF page from its text layer, without rendering it.

The layout detector needs the page's pixels (a render at the run's DPI plus ~50-70 ms of
model time a page); a page with a text layer already says where its text blocks are.
Regions like the detector's are derived from what PyMuPDF has at hand:

- ``text`` / ``title``: one region per text block of ``page.get_text("words")`` (its block
  and line numbers); a block of at most two lines noticeably taller than the page's usual
  line is a ``title``;
- ``table``: three or more horizontal rulings (lines, thin rectangles or shaded bars from
  ``page.get_cdrawings()``) stacked with a shared horizontal extent.

Pages whose images cover much of them (a scan behind a thin text layer, a photo with text)
still go through the detector; :attr:`TextLayout.image_share` says how much they cover.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from docvlm.datamodel import Region
from docvlm.lines import union_box

#: a block of at most this many lines, this much taller than the median line, is a title
_TITLE_LINES = 2
_TITLE_RATIO = 1.3
#: a horizontal ruling: at most this thick (points; a filled bar such as a table's shaded
#: header row at most ``_BAR_THICK``), at least this long
_RULE_THICK = 2.5
_BAR_THICK = 24.0
_RULE_MIN_LEN = 60.0
#: rulings of one table: each gap at most this (points), sharing this much of the wider one
_RULE_MAX_GAP = 80.0
_RULE_OVERLAP = 0.8
_TABLE_RULES = 3
#: a text block mostly inside a table (this share of its area) belongs to the table
_INSIDE = 0.6


@dataclass
class TextLayout:
    """What the text layer says about a page's layout, boxes in page-image pixels."""

    regions: list[Region] = field(default_factory=list)
    image_share: float = 0.0  #: share of the page area covered by images (0..1)


def text_layout(pdf_page: Any, raw_words: list[tuple], scale: float) -> TextLayout:
    """Regions of ``pdf_page`` from its ``get_text("words")`` tuples and its drawings.

    ``scale`` is page-image pixels per PDF point (the words' boxes are scaled the same way).
    """
    tables = [_scaled(b, scale) for b in _ruled_tables(pdf_page)]
    regions = [Region(label="table", bbox=b, score=1.0) for b in tables]
    for label, box in _blocks(raw_words):
        box = _scaled(box, scale)
        if any(_inside(box, t) >= _INSIDE for t in tables):
            continue
        regions.append(Region(label=label, bbox=box, score=1.0))
    return TextLayout(regions=regions, image_share=image_share(pdf_page))


def image_share(pdf_page: Any) -> float:
    """Share of the page covered by its images (overlaps counted once per image)."""
    if not pdf_page.get_images(full=False):  # no image resources: nothing is drawn
        return 0.0
    page = pdf_page.rect
    area = max(float(page.width * page.height), 1.0)
    covered = 0.0
    for info in pdf_page.get_image_info():
        x0, y0, x1, y1 = info["bbox"]
        w = min(x1, page.x1) - max(x0, page.x0)
        h = min(y1, page.y1) - max(y0, page.y0)
        if w > 0 and h > 0:
            covered += w * h
    return min(1.0, covered / area)


def _blocks(raw_words: list[tuple]) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(label, box in points) of each text block, in the text layer's block order."""
    blocks: dict[int, list[tuple]] = {}
    for w in raw_words:
        if len(w) >= 8 and str(w[4]).strip():
            blocks.setdefault(int(w[5]), []).append(w)
    if not blocks:
        return []
    line_heights: dict[int, list[float]] = {}
    all_heights: list[float] = []
    for b, words in blocks.items():
        lines: dict[int, list[tuple]] = {}
        for w in words:
            lines.setdefault(int(w[6]), []).append(w)
        heights = [max(w[3] for w in ln) - min(w[1] for w in ln) for ln in lines.values()]
        line_heights[b] = heights
        all_heights.extend(heights)
    typical = statistics.median(all_heights)
    out = []
    for b, words in blocks.items():
        heights = line_heights[b]
        title = len(heights) <= _TITLE_LINES and min(heights) >= _TITLE_RATIO * typical
        box = union_box([(w[0], w[1], w[2], w[3]) for w in words])
        out.append(("title" if title else "text", box))
    return out


def _ruled_tables(pdf_page: Any) -> list[tuple[float, float, float, float]]:
    """Boxes (points) of tables drawn with horizontal rulings."""
    rules = []
    for drawing in pdf_page.get_cdrawings():
        x0, y0, x1, y1 = drawing["rect"]
        thick = _BAR_THICK if "f" in str(drawing.get("type", "")) else _RULE_THICK
        if y1 - y0 <= thick and x1 - x0 >= _RULE_MIN_LEN:
            rules.append((x0, y0, x1, y1))
    rules.sort(key=lambda r: r[1])
    groups: list[list[tuple]] = []
    for rule in rules:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and rule[1] - last[3] <= _RULE_MAX_GAP
            and _h_overlap(rule, last) >= _RULE_OVERLAP
        ):
            groups[-1].append(rule)
        else:
            groups.append([rule])
    return [union_box(g) for g in groups if len(g) >= _TABLE_RULES]


def _h_overlap(a: tuple, b: tuple) -> float:
    inter = min(a[2], b[2]) - max(a[0], b[0])
    return max(0.0, inter) / max(a[2] - a[0], b[2] - b[0], 1e-6)


def _inside(box: tuple, outer: tuple) -> float:
    """Share of ``box``'s area inside ``outer``."""
    w = min(box[2], outer[2]) - max(box[0], outer[0])
    h = min(box[3], outer[3]) - max(box[1], outer[1])
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    return max(0.0, w) * max(0.0, h) / area


def _scaled(box: tuple, scale: float) -> tuple[float, float, float, float]:
    return (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
