"""Bad input never stops a run, and every input ends up in the record or errors table."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLES, make_text_pdf

from docvlm.pipeline import extract


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    import pymupdf
    from PIL import Image

    d = tmp_path_factory.mktemp("bad")
    (d / "empty.pdf").write_bytes(b"")
    good = (SAMPLES / "invoices" / "inv_en_gb_01.pdf").read_bytes()
    (d / "truncated.pdf").write_bytes(good[: len(good) // 3])
    (d / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(4000))
    locked = pymupdf.open()
    locked.new_page().insert_text((50, 50), "secret")
    locked.save(
        d / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u"
    )
    (d / "readme.pdf").write_text("just text, named like a PDF\n", encoding="utf-8")
    Image.new("RGB", (1, 1), "white").save(d / "tiny.png")
    Image.new("L", (20000, 20000), 255).save(d / "huge.png", compress_level=1)
    make_text_pdf(d / "long.pdf", ["Invoice No.: LONG-1", "page {page} of 500"], pages=500)
    sub = d / "nested"
    sub.mkdir()
    os.symlink(d / "does-not-exist.pdf", sub / "dangling.pdf")
    (sub / "ok.pdf").write_bytes(good)
    return d


@pytest.fixture(scope="module")
def bad_run(bad_folder: Path, tmp_path_factory, invoice_schema):
    out = tmp_path_factory.mktemp("out")
    return extract([bad_folder], invoice_schema, {"detect": {"enabled": False}}, out_dir=out), out


def test_every_input_accounted_for(bad_folder: Path, bad_run) -> None:
    result, out = bad_run
    records = pd.read_parquet(out / "invoice.parquet")
    errors = pd.read_parquet(out / "errors.parquet")
    inputs = {str(p) for p in bad_folder.rglob("*") if p.is_file() or p.is_symlink()}
    assert set(records["source"]) | set(errors["source"]) == inputs
    assert set(records["source"]) == inputs  # every document has a row with its status


@pytest.mark.parametrize(
    "name, words",
    [
        ("empty.pdf", "empty file"),
        ("truncated.pdf", "PDF"),
        ("garbage.pdf", "PDF"),
        ("encrypted.pdf", "encrypted"),
        ("readme.pdf", "unsupported file type"),
        ("dangling.pdf", "cannot read file"),
    ],
)
def test_failures_name_file_and_problem(bad_run, name: str, words: str) -> None:
    result, _ = bad_run
    (res,) = [r for r in result.results if Path(r.source).name == name]
    # a truncated PDF may be repaired and partly read; then it is partial, never silent
    assert res.status.value in (("failure", "partial") if name == "truncated.pdf" else ("failure",))
    assert any(name in e.message and words in e.message for e in res.errors), res.errors


def test_odd_but_valid_inputs_are_processed(bad_run) -> None:
    result, _ = bad_run
    by_name = {Path(r.source).name: r for r in result.results}
    for name in ("tiny.png", "huge.png"):
        assert by_name[name].status.value != "failure", by_name[name].errors
        assert by_name[name].pages == 1
    long = by_name["long.pdf"]
    assert long.pages == 500
    assert long.record.get("invoice_number") == "LONG-1"
    ok = by_name["ok.pdf"]
    assert ok.status.value == "success" and ok.record["invoice_number"] == "TH-2019-0311"


def test_cli_exit_status_nonzero_but_results_written(
    bad_folder: Path, tmp_path: Path, invoice_schema
) -> None:
    inputs = [str(bad_folder / "empty.pdf"), str(bad_folder / "nested" / "ok.pdf")]
    proc = subprocess.run(
        [sys.executable, "-m", "docvlm", "extract", *inputs, "--schema", str(invoice_schema),
         "--out", str(tmp_path), "--no-detect", "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    records = pd.read_csv(tmp_path / "invoice.csv")
    assert len(records) == 2
    assert records.set_index("status").loc["success", "invoice_number"] == "TH-2019-0311"
