"""extract is crash-safe and incremental, and a document cannot take its run down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SAMPLES, make_text_pdf

from docvlm.datamodel import PipelineOptions
from docvlm.pipeline import extract
from docvlm.schema import load_schema
from docvlm.sources import discover
from docvlm.workers import WorkerPool

SCHEMA = ROOT / "schemas" / "invoice.schema.json"


def _folder(d: Path, n: int) -> Path:
    d.mkdir()
    for i in range(n):
        make_text_pdf(d / f"doc_{i:02d}.pdf", [f"Invoice No.: R-{i:04d}", "Total: 12.50 EUR"])
    return d


@pytest.mark.slow
def test_kill_9_mid_extract_then_rerun_gives_every_document_once(tmp_path: Path) -> None:
    # enough documents that some are still to do when the third one is journalled: a text PDF
    # takes a few ms now, and the journal is polled every 20 ms
    n = 80
    docs = _folder(tmp_path / "in", n)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "docvlm", "extract", str(docs), "--schema", str(SCHEMA),
           "--out", str(out), "--jobs", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    journal = out / ".docvlm-staging"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        lines = (
            sum(f.read_text().count("\n") for f in journal.glob("*.jsonl"))
            if journal.exists()
            else 0
        )
        if lines >= 3:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker process
    proc.wait()
    assert not (out / "invoice.parquet").exists()  # killed before the tables were consolidated
    finished = sum(f.read_text().count("\n") for f in journal.glob("*.jsonl"))
    assert 3 <= finished < n

    rerun = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed: {finished} documents were already done" in rerun.stderr
    records = pd.read_parquet(out / "invoice.parquet")
    assert sorted(records["invoice_number"]) == [f"R-{i:04d}" for i in range(n)]
    assert records["doc_id"].is_unique and len(records) == n
    assert not journal.exists()  # consolidated, journal removed
    prov = pd.read_parquet(out / "provenance.parquet")
    assert set(prov["doc_id"]) == set(records["doc_id"])
    assert (out / "invoice.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_results_come_back_in_input_order_from_two_workers(tmp_path: Path) -> None:
    docs = _folder(tmp_path / "in", 6)
    serial = extract(docs, SCHEMA)
    parallel = extract(docs, SCHEMA, jobs=2)
    assert list(parallel.records["source"]) == list(serial.records["source"])
    pd.testing.assert_frame_equal(parallel.records, serial.records)


def _scanned_pdf(path: Path, pages: int) -> Path:
    """A genuinely slow document: ``pages`` dense scanned pages (no text layer), each
    rendered, run through the detector and OCRed (seconds a page)."""
    import pymupdf

    from docvlm.bench import make_scans

    (png,) = make_scans(path.parent, 1)
    doc = pymupdf.open()
    xref = 0
    for _ in range(pages):
        page = doc.new_page(width=595, height=842)
        xref = page.insert_image(page.rect, filename=str(png), xref=xref)
    doc.save(path)
    doc.close()
    return path


def test_a_killed_worker_or_a_slow_document_is_a_failure_row_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    good = _folder(tmp_path / "in", 3)
    long_pdf = _scanned_pdf(tmp_path / "long.pdf", pages=60)
    spec = load_schema(SCHEMA)
    options = PipelineOptions.model_validate({"limits": {"max_seconds_per_doc": 15}})
    srcs = discover([str(long_pdf), str(good)])
    with WorkerPool(options, spec, jobs=1, max_seconds=15) as pool:
        results = list(pool.map(srcs))
        assert pool.replaced == 1
    assert [Path(r.source).name for r in results] == [
        "long.pdf",
        "doc_00.pdf",
        "doc_01.pdf",
        "doc_02.pdf",
    ]
    assert results[0].status.value == "failure"
    assert results[0].errors[0].error_type == "DocumentTimeout"
    assert (
        "15 seconds" in results[0].errors[0].message and "long.pdf" in results[0].errors[0].message
    )
    assert [r.record.get("invoice_number") for r in results[1:]] == ["R-0000", "R-0001", "R-0002"]

    # a worker killed in the middle of a document (what the kernel's OOM killer does)
    with WorkerPool(PipelineOptions(), spec, jobs=1) as pool:
        pid = pool._workers[0].process.pid
        killer = threading.Timer(2.0, os.kill, (pid, signal.SIGKILL))  # mid long.pdf
        killer.start()
        results = list(pool.map(srcs))
        killer.join()
    crashed = results[0]
    assert crashed.status.value == "failure" and crashed.errors[0].error_type == "WorkerCrashed"
    assert "exit code -9" in crashed.errors[0].message
    assert [r.record.get("invoice_number") for r in results[1:]] == ["R-0000", "R-0001", "R-0002"]


def test_config_error_in_workers_is_raised_before_any_document(tmp_path: Path) -> None:
    from docvlm.errors import ConfigError

    options = PipelineOptions.model_validate({"detect": {"model_path": str(tmp_path / "x.onnx")}})
    with pytest.raises(ConfigError, match="layout model"):
        extract(SAMPLES / "receipts", SCHEMA, options, out_dir=tmp_path / "out", jobs=2)
    assert not (tmp_path / "out").exists()
