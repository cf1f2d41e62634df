"""A document's text laid out for reading: lines, rows and document-wide conventions."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from docvlm.datamodel import FieldValue, Line, Page
from docvlm.lines import group_rows
from docvlm.normalize import find_currency

T = TypeVar("T")

#: the 50 US states, DC and the territories, as the postal service abbreviates them
_US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI"
).split()
#: a US postal address's last line ("Seattle, WA 98101", "CA 91739-1234")
_US_ADDRESS = re.compile(rf"\b(?:{'|'.join(_US_STATES)})\.?\s+\d{{5}}(?:-\d{{4}})?\b")
#: a North American phone number as it is written there: "(415) 379-3604", "(614) 766 4494",
#: "215-964-9009", "305 861-2222" (without brackets only with an area code and an exchange
#: that can be North American, neither starting 0 or 1: "046 924 0144" is Irish)
_NANP_PHONE = re.compile(
    r"(?<![\d(])\(\d{3}\)\s?\d{3}[-\s.]\d{4}(?!\d)"
    r"|(?<![\w(+./-])[2-9]\d{2}[-.\s][2-9]\d{2}[-.]\d{4}(?![\w./-])"
)
#: a date whose first number can only be a month (its second is over 12) or only a day;
#: both separators the same ("15/10.00", a multi-buy price, is no date)
_MONTH_FIRST = re.compile(r"(?<!\d)(0?[1-9]|1[0-2])/(1[3-9]|2\d|3[01])/\d{2,4}")
_DAY_FIRST = re.compile(r"(?<!\d)(1[3-9]|2\d|3[01])([/.])(0?[1-9]|1[0-2])\2\d{2,4}")


def us_locale(text: str) -> bool:
    """Whether the text shows a US postal address or a North American phone number: where
    the document comes from decides how it writes dates (month first) when no date on it is
    unambiguous, as its currency does."""
    return _US_ADDRESS.search(text) is not None or _NANP_PHONE.search(text) is not None


@dataclass
class Row:
    """Segments sharing a visual line on one page."""

    page: int
    index: int
    lines: list[Line]

    @property
    def top(self) -> float:
        return min(ln.bbox[1] for ln in self.lines)

    @property
    def bottom(self) -> float:
        return max(ln.bbox[3] for ln in self.lines)


@dataclass
class DocContext:
    """Lines of every page grouped in rows, plus conventions guessed from the whole text."""

    pages: list[Page]
    rows: list[Row] = field(default_factory=list)
    row_of: dict[int, Row] = field(default_factory=dict)  # id(line) -> row
    line_height: float = 12.0
    dayfirst: bool = True
    decimal_comma: bool | None = None
    currency: str | None = None
    #: +1: an unambiguous day-first date is printed, -1: a month-first one, 0: neither/both
    order_evidence: int = 0
    #: what readers find from the context alone, once per document (the letterhead, the
    #: blocks under role labels): several fields ask for the same (see :meth:`memo`)
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _lines: list[Line] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, pages: list[Page]) -> DocContext:
        ctx = cls(pages=pages)
        heights = []
        for page in pages:
            for i, group in enumerate(group_rows(page.lines)):
                row = Row(page=page.number, index=i, lines=group)
                ctx.rows.append(row)
                for ln in group:
                    ctx.row_of[id(ln)] = row
                    heights.append(ln.bbox[3] - ln.bbox[1])
        if heights:
            ctx.line_height = statistics.median(heights)
        text = "\n".join(ln.text for ln in ctx.lines)
        ctx.currency = find_currency(text)
        commas = len(re.findall(r"\d,\d{2}(?!\d)", text))
        points = len(re.findall(r"\d\.\d{2}(?!\d)", text))
        if commas or points:
            ctx.decimal_comma = commas > points
        us = (ctx.currency == "USD" or us_locale(text)) and not ctx.decimal_comma
        month_first = _MONTH_FIRST.search(text)
        day_first = _DAY_FIRST.search(text)
        ctx.dayfirst = not ((us or month_first) and not day_first)
        ctx.order_evidence = (1 if day_first else 0) - (1 if month_first else 0)
        return ctx

    @property
    def lines(self) -> list[Line]:
        """Every line in reading order (rows are fixed once built: listed once)."""
        if self._lines is None:
            self._lines = [ln for row in self.rows for ln in row.lines]
        return self._lines

    def memo(self, key: tuple, compute: Callable[[], T]) -> T:
        """``compute()``, once per document and ``key`` (a step that depends on this
        context and the key's values only)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def row(self, line: Line) -> Row:
        return self.row_of[id(line)]

    def right_of(self, line: Line) -> list[Line]:
        """Segments to the right of ``line`` on its row, nearest first."""
        return [ln for ln in self.row(line).lines if ln.bbox[0] >= line.bbox[2] - 2]

    def below(self, line: Line, max_rows: int = 1, max_gap: float = 2.5) -> list[Line]:
        """Segments under ``line`` that overlap it horizontally, row by row."""
        row = self.row(line)
        out: list[Line] = []
        bottom = line.bbox[3]
        taken = 0
        for other in self.rows:
            if other.page != row.page or other.top <= line.bbox[1] + 1 or other is row:
                continue
            if other.top - bottom > max_gap * self.line_height:
                break
            hits = [ln for ln in other.lines if _h_overlap(ln, line) > 0]
            if hits:
                out.extend(hits)
                bottom = max(ln.bbox[3] for ln in hits)
                taken += 1
                if taken >= max_rows:
                    break
        return out


def _h_overlap(a: Line, b: Line) -> float:
    return min(a.bbox[2], b.bbox[2]) - max(a.bbox[0], b.bbox[0])


def value_from_lines(
    path: str, value: object, lines: list[Line], reader: str, conf: float, sep: str = " "
) -> FieldValue:
    """A FieldValue whose provenance is ``lines``: their union box, the first line's page and
    region, the weakest line's OCR confidence scaled by ``conf``."""
    return FieldValue(
        path=path,
        value=value,
        raw=sep.join(ln.text for ln in lines),
        page=lines[0].page,
        bbox=(
            min(ln.bbox[0] for ln in lines),
            min(ln.bbox[1] for ln in lines),
            max(ln.bbox[2] for ln in lines),
            max(ln.bbox[3] for ln in lines),
        ),
        region_class=lines[0].region_class,
        reader=reader,
        confidence=round(conf * min(ln.conf for ln in lines), 4),
    )
