"""Large PDFs split into page ranges across workers, merged back into one document.

A PDF of more than ``split_pages`` pages is cut into contiguous page ranges (at least one
per worker); each worker reads its range up to the reader (:meth:`Pipeline.content`: text,
OCR, regions), and once every range is in, the parts are merged in page order and one worker
reads the whole document (:meth:`Pipeline.finish`). The result is one document result: same
``doc_id``, absolute page numbers, the parts' errors in page order (a warning every part
repeats, once), stage times summed.

PDFs that PyMuPDF had to repair are not split: their per-page damage reports belong to the
whole file.
"""

from __future__ import annotations

import math

from docvlm.datamodel import ErrorItem, PageContent, RenderOptions, SourceDoc
from docvlm.errors import DocvlmError

PDF_MIME = "application/pdf"


def page_ranges(
    src: SourceDoc, jobs: int, split_pages: int, render: RenderOptions | None = None
) -> list[range] | None:
    """The 1-based page ranges to read ``src`` in, or None to read it whole (not a PDF, not
    over ``split_pages`` pages, one worker only, damaged)."""
    if jobs < 2 or split_pages < 1 or src.error or src.mime != PDF_MIME:
        return None
    from docvlm.render.pdf import open_pdf

    try:
        doc = open_pdf(src)
    except DocvlmError:
        return None  # the worker reading it whole reports why
    try:
        count, repaired = doc.page_count, bool(getattr(doc, "is_repaired", False))
    finally:
        doc.close()
    if render is not None and render.max_pages:
        count = min(count, render.max_pages)
    if repaired or count <= split_pages:
        return None
    parts = max(jobs, math.ceil(count / split_pages))
    size = math.ceil(count / parts)
    return [range(first, min(first + size, count + 1)) for first in range(1, count + 1, size)]


def merge(parts: list[PageContent]) -> PageContent:
    """The parts of one document (in page-range order) as one :class:`PageContent`."""
    errors: list[ErrorItem] = []
    seen: set[tuple[str, str, str]] = set()
    stats: dict[str, float] = {}
    for part in parts:
        for err in part.errors:
            key = (err.stage, err.error_type, err.message)
            if key not in seen:
                seen.add(key)
                errors.append(err)
        for k, v in part.stats.items():
            stats[k] = stats.get(k, 0.0) + v
    pages = sorted((p for part in parts for p in part.pages), key=lambda p: p.number)
    return PageContent(
        pages=pages, errors=errors, stats=stats, seconds=sum(p.seconds for p in parts)
    )
