"""docvlm: documents (PDFs, scans) to validated tables, with provenance for every value.

>>> import docvlm
>>> result = docvlm.extract("sample_docs/invoices", "schemas/invoice.schema.json")
>>> result.records  # one row per document (pandas DataFrame)

Heavy libraries (onnxruntime, PyMuPDF, torch) are imported only when a stage needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from docvlm.pipeline import ExtractResult, Pipeline, extract


def __getattr__(name: str) -> Any:
    if name in ("extract", "Pipeline", "ExtractResult"):
        from docvlm import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'docvlm' has no attribute {name!r}")


__all__ = ["ExtractResult", "Pipeline", "__version__", "extract"]
