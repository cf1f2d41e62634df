"""The output tables are a contract other tools read: names, columns, provenance, atomicity."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES, make_text_pdf

from docvlm.pipeline import extract
from docvlm.schema import load_schema
from docvlm.validate import validate_record

DOCS = ["inv_en_us_01.pdf", "inv_en_multi_01.pdf", "inv_fr_01_scan.png"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, invoice_schema):
    out = tmp_path_factory.mktemp("contract")
    broken = out.parent / "broken.pdf"
    broken.write_text("not a pdf", encoding="utf-8")
    inputs = [str(SAMPLES / "invoices" / d) for d in DOCS] + [str(broken)]
    return extract(inputs, invoice_schema, out_dir=out / "tables"), out / "tables", inputs


def test_files_and_names(run) -> None:
    _, out, _ = run
    names = sorted(p.name for p in out.iterdir())
    expected = {
        f"{t}.{ext}"
        for t in ("invoice", "invoice__line_items", "provenance", "errors")
        for ext in ("parquet", "csv")
    }
    assert set(names) == expected  # and no temporary files left behind


def test_record_table_columns_and_rows(run, invoice_schema) -> None:
    _, out, inputs = run
    df = pd.read_parquet(out / "invoice.parquet")
    schema = load_schema(invoice_schema)
    assert list(df.columns) == ["doc_id", "source", "status", *schema.columns]
    assert "seller.name" in df.columns and "buyer.address" in df.columns  # nested → parent.child
    assert list(df["source"]) == inputs
    for src, doc_id in zip(df["source"], df["doc_id"], strict=True):
        assert doc_id == hashlib.sha256(Path(src).read_bytes()).hexdigest()
    assert set(df["status"]) <= {"success", "partial", "failure"}
    assert df.set_index("source").loc[inputs[-1], "status"] == "failure"
    csv = pd.read_csv(out / "invoice.csv")
    assert list(csv.columns) == list(df.columns) and len(csv) == len(df)


def test_child_table_for_line_items(run) -> None:
    result, out, inputs = run
    items = pd.read_parquet(out / "invoice__line_items.parquet")
    assert list(items.columns) == [
        "doc_id",
        "item_index",
        "description",
        "quantity",
        "unit_price",
        "amount",
    ]
    multi = result.results[1]
    mine = items[items["doc_id"] == multi.doc_id].sort_values("item_index")
    truth = json.loads((SAMPLES / "groundtruth" / "invoice" / "inv_en_multi_01.json").read_text())
    assert list(mine["item_index"]) == list(range(len(mine)))
    assert len(mine) == len(truth["line_items"])  # the table continues on page 2


def test_provenance_traces_every_value(run) -> None:
    result, out, _ = run
    prov = pd.read_parquet(out / "provenance.parquet")
    assert {
        "doc_id",
        "field",
        "value",
        "page",
        "bbox",
        "region_class",
        "reader",
        "confidence",
        "source_text",
    } <= set(prov.columns)
    records = pd.read_parquet(out / "invoice.parquet").set_index("doc_id")
    for r in result.results:
        if r.status.value == "failure":
            continue
        mine = prov[prov["doc_id"] == r.doc_id].set_index("field")
        for col in records.columns[2:]:
            value = records.loc[r.doc_id, col]
            if pd.notna(value):
                row = mine.loc[col]
                assert row["page"] >= 1 and len(row["bbox"]) == 4
                assert row["reader"] == "learned" and 0 < row["confidence"] <= 1
    pages = set(prov[prov["field"].str.startswith("line_items/")]["page"])
    assert {1, 2} <= pages  # items of the 2-page invoice cite both pages


def test_errors_table(run) -> None:
    _, out, inputs = run
    errors = pd.read_parquet(out / "errors.parquet")
    assert list(errors.columns) == ["doc_id", "source", "stage", "error_type", "message", "path"]
    row = errors[errors["source"] == inputs[-1]].iloc[0]
    assert row["stage"] == "source" and "broken.pdf" in row["message"]


def test_invalid_record_is_kept_with_pointer_errors(tmp_path: Path, invoice_schema) -> None:
    pdf = make_text_pdf(tmp_path / "thin.pdf", ["Invoice No.: X-77", "Total: ninety"])
    result = extract([pdf], invoice_schema, {"detect": {"enabled": False}}, out_dir=tmp_path / "o")
    (res,) = result.results
    assert res.status.value == "partial" and res.record["invoice_number"] == "X-77"
    paths = {e.path for e in res.errors if e.stage == "validate"}
    assert {"/issue_date", "/total"} <= paths
    df = pd.read_parquet(tmp_path / "o" / "invoice.parquet")
    assert df.loc[0, "status"] == "partial" and df.loc[0, "invoice_number"] == "X-77"


def test_validation_reports_json_pointers(invoice_schema) -> None:
    schema = load_schema(invoice_schema)
    record = {"invoice_number": "A1", "issue_date": "2023-02-30", "total": "12",
              "line_items": [{"description": "x", "quantity": "two"}]}  # fmt: skip
    paths = {e.path for e in validate_record(record, schema)}
    assert {"/issue_date", "/total", "/line_items/0/quantity"} <= paths
