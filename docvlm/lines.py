"""Words to lines: rows by vertical overlap, split into segments at column gaps."""

from __future__ import annotations

import statistics

from docvlm.datamodel import BBox, Line, Region, Word


def union_box(boxes: list[BBox]) -> BBox:
    """The smallest box holding every box of ``boxes``."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _v_overlap(a: BBox, b: BBox) -> float:
    inter = min(a[3], b[3]) - max(a[1], b[1])
    return inter / max(min(a[3] - a[1], b[3] - b[1]), 1e-6)


def group_rows(items: list, key=lambda x: x.bbox) -> list[list]:
    """Group boxes into visual rows (sorted top to bottom, each row left to right).

    Boxes are chained left to right: a box joins the row whose rightmost box ends before it
    starts and overlaps it vertically by more than half, so a row follows a skewed scan's
    slope instead of a fixed horizontal band.
    """
    rows: list[list] = []
    for item in sorted(items, key=lambda it: (key(it)[0], key(it)[1])):
        box = key(item)
        best, best_overlap = None, 0.5
        for row in rows:
            last = key(row[-1])
            if last[2] - 0.6 * (last[3] - last[1]) > box[0]:
                continue  # the row already reaches past this box's start
            overlap = _v_overlap(last, box)
            if overlap > best_overlap:
                best, best_overlap = row, overlap
        if best is None:
            rows.append([item])
        else:
            best.append(item)
    rows.sort(key=lambda r: ((key(r[0])[1] + key(r[0])[3]) / 2, key(r[0])[0]))
    return rows


def build_lines(words: list[Word], page: int, gap_factor: float = 1.0) -> list[Line]:
    """Segments of words: same row, and no gap wider than ``gap_factor`` × text height.

    PDF text layers and the OCR engine both return single words with their boxes.
    """
    if not words:
        return []
    heights = [w.bbox[3] - w.bbox[1] for w in words]
    median_h = statistics.median(heights) or 1.0
    lines: list[Line] = []
    for row in group_rows(words):
        segment: list[Word] = [row[0]]
        for w in row[1:]:
            prev = segment[-1]
            gap = w.bbox[0] - prev.bbox[2]
            h = min(prev.bbox[3] - prev.bbox[1], w.bbox[3] - w.bbox[1]) or median_h
            if gap > gap_factor * max(h, 0.6 * median_h) or w.origin != prev.origin:
                lines.append(_make_line(segment, page))
                segment = [w]
            else:
                segment.append(w)
        lines.append(_make_line(segment, page))
    return lines


def _make_line(words: list[Word], page: int) -> Line:
    return Line(
        text=" ".join(w.text for w in words),
        bbox=union_box([w.bbox for w in words]),
        words=words,
        conf=min(w.conf for w in words),
        page=page,
    )


def assign_regions(lines: list[Line], regions: list[Region]) -> None:
    """Tag each line with the detected region holding most of it; others stay 'residual'."""
    for line in lines:
        best, best_area = -1, 0.0
        lx0, ly0, lx1, ly1 = line.bbox
        area = max((lx1 - lx0) * (ly1 - ly0), 1e-6)
        for i, r in enumerate(regions):
            rx0, ry0, rx1, ry1 = r.bbox
            inter = max(0.0, min(lx1, rx1) - max(lx0, rx0)) * max(
                0.0, min(ly1, ry1) - max(ly0, ry0)
            )
            if inter > best_area:
                best, best_area = i, inter
        if best >= 0 and best_area / area >= 0.5:
            line.region_class = regions[best].label
            line.region_index = best
