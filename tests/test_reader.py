"""The embedded OCR reader end to end: the real pipeline, the real shipped ONNX models
(layout detector, PP-OCR), the sample documents and their ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES, SCHEMAS

from docvlm.evaluate import evaluate
from docvlm.pipeline import extract

MIN_ACCURACY = 0.95


def _split_truth(kind: str, tmp: Path) -> dict[str, Path]:
    """Ground truth folders for the born-digital and the scanned copies."""
    dirs = {"digital": tmp / f"{kind}_digital", "scanned": tmp / f"{kind}_scanned"}
    for d in dirs.values():
        d.mkdir()
    for gt in (SAMPLES / "groundtruth" / kind).glob("*.json"):
        shutil.copy(gt, dirs["scanned" if "_scan" in gt.stem else "digital"] / gt.name)
    return dirs


def _scores(out: Path, truth: Path, schema) -> dict[str, float]:
    table = evaluate(out, truth, schema)
    return {row.field: row.accuracy for row in table.itertuples() if row.field != "ALL"}


@pytest.fixture(scope="module")
def invoices(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("invoices")
    result = extract(
        [SAMPLES / "invoices"], SCHEMAS / "invoice.schema.json", {}, out_dir=tmp / "out"
    )
    return result, tmp / "out", _split_truth("invoice", tmp)


@pytest.fixture(scope="module")
def receipts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("receipts")
    result = extract(
        [SAMPLES / "receipts"], SCHEMAS / "receipt.schema.json", {}, out_dir=tmp / "out"
    )
    return result, tmp / "out", _split_truth("receipt", tmp)


@pytest.mark.parametrize("copy", ["digital", "scanned"])
def test_invoice_fields(invoices, copy: str) -> None:
    result, out, truth = invoices
    scores = _scores(out, truth[copy], result.schema)
    expected = {
        "invoice_number", "issue_date", "due_date", "seller.name", "seller.address",
        "buyer.name", "buyer.address", "currency", "subtotal", "tax", "total",
        "line_items[].description", "line_items[].quantity", "line_items[].unit_price",
        "line_items[].amount",
    }  # fmt: skip
    assert expected <= set(scores)
    low = {field: acc for field, acc in scores.items() if acc < MIN_ACCURACY}
    assert not low, f"{copy} invoices below {MIN_ACCURACY}: {low}"


@pytest.mark.parametrize("copy", ["digital", "scanned"])
def test_receipt_fields(receipts, copy: str) -> None:
    result, out, truth = receipts
    scores = _scores(out, truth[copy], result.schema)
    assert {"company", "address", "date", "total", "currency"} <= set(scores)
    low = {field: acc for field, acc in scores.items() if acc < MIN_ACCURACY}
    assert not low, f"{copy} receipts below {MIN_ACCURACY}: {low}"


def test_items_continue_on_page_two(invoices) -> None:
    result, _, _ = invoices
    by_name = {Path(r.source).name: r for r in result.results}
    truth = json.loads((SAMPLES / "groundtruth" / "invoice" / "inv_en_multi_01.json").read_text())
    for name in (
        "inv_en_multi_01.pdf",
        "inv_en_multi_01_scan.pdf",
        "inv_en_multi_01_scan_tiff.tiff",
    ):
        record = by_name[name].record
        assert by_name[name].pages == 2
        assert len(record["line_items"]) == len(truth["line_items"]) == 35
        assert record["line_items"][-1]["amount"] == pytest.approx(
            truth["line_items"][-1]["amount"]
        )
        assert record["total"] == pytest.approx(truth["total"])


def test_provenance_points_at_the_page_text(invoices) -> None:
    result, _, _ = invoices
    doc = next(r for r in result.results if Path(r.source).name == "inv_de_01_scan.tiff")
    total = next(v for v in doc.values if v.path == "total")
    assert total.reader == "learned" and total.page == 1 and total.bbox is not None
    assert "1.390,99" in total.raw
    assert 0 < total.confidence <= 1


def test_plain_user_schema_with_standard_keywords(tmp_path: Path) -> None:
    import pymupdf

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Insurance certificate",
        "type": "object",
        "properties": {
            "policy_number": {"type": "string", "title": "Policy No."},
            "insured_name": {
                "type": "string",
                "title": "Insured",
                "description": "Name of the policy holder.",
            },
            "start_date": {"type": "string", "format": "date", "title": "Start date"},
            "premium": {"type": "number", "title": "Annual premium"},
            "cover": {
                "type": "string",
                "enum": ["basic", "standard", "premium"],
                "title": "Cover level",
            },
        },
        "required": ["policy_number"],
    }
    schema_path = tmp_path / "policy.schema.json"
    schema_path.write_text(json.dumps(schema), encoding="utf-8")
    pdf = tmp_path / "certificate.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    lines = [
        (60, 80, "Northbridge Mutual Insurance", 16),
        (60, 140, "CERTIFICATE OF INSURANCE", 13),
        (60, 190, "Policy No.:", 11),
        (220, 190, "NBM-448812-C", 11),
        (60, 212, "Insured:", 11),
        (220, 212, "Harriet Okafor", 11),
        (60, 234, "Start date:", 11),
        (220, 234, "01.04.2024", 11),
        (60, 256, "Annual premium:", 11),
        (220, 256, "1.234,50 EUR", 11),
        (60, 278, "Cover level:", 11),
        (220, 278, "Standard", 11),
    ]
    for x, y, text, size in lines:
        page.insert_text((x, y), text, fontsize=size)
    doc.save(pdf)
    doc.close()

    result = extract([pdf], schema_path, {}, out_dir=tmp_path / "out")
    (doc_result,) = result.results
    record = doc_result.record
    assert record["policy_number"] == "NBM-448812-C"
    assert record["insured_name"] == "Harriet Okafor"
    assert record["start_date"] == "2024-04-01"
    assert record["premium"] == pytest.approx(1234.5)
    assert record["cover"] == "standard"
    assert (tmp_path / "out" / "policy.parquet").exists()
