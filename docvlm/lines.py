"""Words to lines: rows by vertical overlap, split into segments at column gaps."""

from __future__ import annotations

import bisect
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
    boxes = [key(it) for it in items]
    tallest = max((b[3] - b[1] for b in boxes), default=0.0)
    # rows by the top of their last box: only rows whose last box can overlap a box
    # vertically (top within ``tallest`` above it) are looked at, not every row of the page
    tops: list[tuple[float, int]] = []
    for n in sorted(range(len(items)), key=lambda k: (boxes[k][0], boxes[k][1])):
        box = boxes[n]
        best, best_overlap = -1, 0.5
        lo = bisect.bisect_left(tops, (box[1] - tallest, -1))
        hi = bisect.bisect_right(tops, (box[3], len(rows)))
        for _top, r in tops[lo:hi]:
            last = key(rows[r][-1])
            if last[2] - 0.6 * (last[3] - last[1]) > box[0]:
                continue  # the row already reaches past this box's start
            overlap = _v_overlap(last, box)
            # the first row (in creation order) with the largest overlap wins
            if overlap > best_overlap or (overlap == best_overlap and 0 <= r < best):
                best, best_overlap = r, overlap
        if best < 0:
            rows.append([items[n]])
            bisect.insort(tops, (box[1], len(rows) - 1))
        else:
            old = key(rows[best][-1])[1]
            tops.pop(bisect.bisect_left(tops, (old, best)))
            rows[best].append(items[n])
            bisect.insort(tops, (box[1], best))
    rows.sort(key=lambda r: ((key(r[0])[1] + key(r[0])[3]) / 2, key(r[0])[0]))
    return rows


def build_lines(words: list[Word], page: int, gap_factor: float = 1.0) -> list[Line]:
    """Segments of words: same row, and no gap wider than ``gap_factor`` × text height (nor
    a visible one between two blocks of a PDF's text layer).

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
            if (
                gap > gap_factor * max(h, 0.6 * median_h)
                or w.origin != prev.origin
                # words of two text-layer blocks with more than a letter's space between
                # them are two units (table cells, a label and the next column's text)
                or (w.block != prev.block and min(w.block, prev.block) >= 0 and gap > 0.1 * h)
            ):
                lines.append(_make_line(segment, page))
                segment = [w]
            else:
                segment.append(w)
        lines.append(_make_line(segment, page))
    return lines


def _make_line(words: list[Word], page: int) -> Line:
    # built from validated Words: constructed without validating them all again
    return Line.model_construct(
        text=" ".join(w.text for w in words),
        bbox=union_box([w.bbox for w in words]),
        words=words,
        conf=min(w.conf for w in words),
        page=page,
    )


def assign_regions(lines: list[Line], regions: list[Region]) -> None:
    """Tag each line with the detected region holding most of it; others stay 'residual'."""
    if not lines or not regions:
        return
    import numpy as np

    lb = np.array([ln.bbox for ln in lines], dtype=np.float64)
    rb = np.array([r.bbox for r in regions], dtype=np.float64)
    # intersection area of every line with every region: lines × regions
    w = np.minimum(lb[:, None, 2], rb[None, :, 2]) - np.maximum(lb[:, None, 0], rb[None, :, 0])
    h = np.minimum(lb[:, None, 3], rb[None, :, 3]) - np.maximum(lb[:, None, 1], rb[None, :, 1])
    inter = np.clip(w, 0.0, None) * np.clip(h, 0.0, None)
    best = inter.argmax(axis=1)  # the first region of the largest overlap
    best_area = inter[np.arange(len(lines)), best]
    area = np.maximum((lb[:, 2] - lb[:, 0]) * (lb[:, 3] - lb[:, 1]), 1e-6)
    for line, i, a, full in zip(lines, best.tolist(), best_area.tolist(), area.tolist(),
                                strict=True):  # fmt: skip
        if a > 0 and a / full >= 0.5:
            line.region_class = regions[i].label
            line.region_index = i
