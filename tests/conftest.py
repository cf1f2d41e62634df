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


@pytest.fixture(scope="session")
def prefect_harness():
    """Run the session's flows against a throwaway Prefect server; yields its API URL.

    The URL is also exported as ``PREFECT_API_URL`` so subprocesses (the ``docvlm`` CLI,
    Dask workers) report to the same server instead of starting their own.
    """
    import os

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    saved = os.environ.get("PREFECT_API_URL")
    with prefect_test_harness(server_startup_timeout=120):
        url = str(PREFECT_API_URL.value())
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved
