"""Review and correct: a page that shows what was read (boxes over the page images, the
lowest confidence and the validation errors first) and, served, lets a reviewer fix it.

``docvlm review OUT`` writes ``OUT/review/index.html`` (:mod:`docvlm.review.page`);
``--serve`` serves it with editing (:mod:`docvlm.review.server`); corrections go to
``OUT/corrections.parquet`` and out as label JSON files (:mod:`docvlm.review.corrections`).
"""

from __future__ import annotations

from docvlm.review.corrections import CorrectionLog, export_labels, labels
from docvlm.review.page import ReviewOptions, collect, render_html, write_page

__all__ = [
    "CorrectionLog",
    "ReviewOptions",
    "collect",
    "export_labels",
    "labels",
    "render_html",
    "write_page",
]
