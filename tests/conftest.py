"""Shared fixtures: paths to the shipped sample documents and schemas, bad inputs made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_docs"
SCHEMAS = ROOT / "schemas"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def invoice_schema() -> Path:
    return SCHEMAS / "invoice.schema.json"


@pytest.fixture(scope="session")
def receipt_schema() -> Path:
    return SCHEMAS / "receipt.schema.json"


def make_text_pdf(path: Path, lines: list[str], pages: int = 1) -> Path:
    """A born-digital PDF with the given lines on each page."""
    import pymupdf

    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=595, height=842)
        for i, line in enumerate(lines):
            page.insert_text((60, 80 + 18 * i), line.replace("{page}", str(n + 1)), fontsize=11)
    doc.save(path)
    doc.close()
    return path
