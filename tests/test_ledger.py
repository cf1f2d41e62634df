"""Exactly-once processing by content: the ledger, retries, parking, crash reconciliation.

These use the plain-Python engine (``run_local``), which shares every step with the Prefect
flow; the flow itself, kill -9 and Dask are covered in test_flows/test_runner/test_dask.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem
from docvlm.errors import LedgerError
from docvlm.ops import process
from docvlm.ops.dataset import read_table
from docvlm.ops.definition import PipelineConfig, pipeline_from_dict
from docvlm.ops.ledger import Ledger, OutputLock
from docvlm.ops.runner import run_local

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.schema.json"


def make_pdf(path: Path, i: int) -> Path:
    """A one-page born-digital invoice with distinct content (no OCR needed)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    page.insert_text((30, 50), f"INVOICE   Invoice No: INV-{i:05d}", fontsize=12)
    page.insert_text((30, 90), f"Date: 2024-03-{i % 28 + 1:02d}", fontsize=12)
    page.insert_text((30, 130), f"Total: {100 + i}.50 EUR", fontsize=12)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    doc.close()
    return path


def make_config(base: Path, **run: object) -> PipelineConfig:
    return pipeline_from_dict(
        {
            "name": "test",
            "source": "in",
            "schema": str(SCHEMA),
            "detect": {"enabled": False},
            "output": {"dir": "out", "formats": ["parquet"]},
            "run": {"batch_size": 3, "retry_delay_s": 0, **run},
        },
        base,
    )


@pytest.fixture
def docs(tmp_path: Path) -> list[Path]:
    return [make_pdf(tmp_path / "in" / f"doc_{i:02d}.pdf", i) for i in range(7)]


def _doc_ids(cfg: PipelineConfig) -> list[str]:
    df = read_table(cfg.out_dir, "invoice")
    return list(df["doc_id"]) if len(df) else []


def test_rerun_never_reprocesses_or_duplicates(tmp_path: Path, docs: list[Path]) -> None:
    cfg = make_config(tmp_path)
    first = run_local(cfg)
    assert (first.processed, first.ok, first.skipped) == (7, 7, 0)
    assert len(first.parts) == 3  # batches of 3
    again = run_local(cfg)
    assert (again.processed, again.skipped) == (0, 7)
    ids = _doc_ids(cfg)
    assert len(ids) == 7 and len(set(ids)) == 7
    # a new file: only it is processed
    make_pdf(tmp_path / "in" / "late.pdf", 99)
    third = run_local(cfg)
    assert (third.processed, third.skipped) == (1, 7)
    assert len(set(_doc_ids(cfg))) == len(_doc_ids(cfg)) == 8
    summary = (cfg.out_dir / "run_summary.json").read_text()
    assert third.run_id in summary
    assert (cfg.out_dir / "_runs" / f"{first.run_id}.json").exists()


def test_same_bytes_under_two_names_is_one_document(tmp_path: Path, docs: list[Path]) -> None:
    (tmp_path / "in" / "copy.pdf").write_bytes(docs[0].read_bytes())
    cfg = make_config(tmp_path)
    s = run_local(cfg)
    assert (s.discovered, s.duplicates, s.processed) == (8, 1, 7)
    assert len(_doc_ids(cfg)) == 7


def test_reprocess_replaces_rows_instead_of_duplicating(tmp_path: Path, docs: list[Path]) -> None:
    cfg = make_config(tmp_path)
    first = run_local(cfg)
    before = read_table(cfg.out_dir, "provenance")
    second = run_local(cfg, reprocess=True)
    assert second.processed == 7
    ids = _doc_ids(cfg)
    assert len(ids) == len(set(ids)) == 7
    after = read_table(cfg.out_dir, "provenance")
    assert len(after) == len(before)
    # the first run's parts were emptied and removed
    assert not list(cfg.out_dir.glob(f"*/run_date=*/part-{first.run_id}-*.parquet"))


def test_changed_configuration_reprocesses_and_replaces(tmp_path: Path, docs: list[Path]) -> None:
    cfg = make_config(tmp_path)
    run_local(cfg)
    changed = cfg.model_copy(update={"render": cfg.render.model_copy(update={"dpi": 120})})
    s = run_local(changed)
    assert s.processed == 7 and s.skipped == 0
    assert len(set(_doc_ids(cfg))) == len(_doc_ids(cfg)) == 7
    assert run_local(changed).skipped == 7


def test_failing_document_is_retried_then_parked(
    tmp_path: Path, docs: list[Path], monkeypatch
) -> None:
    bad = str(docs[2])
    calls: dict[str, int] = {}
    real = process.process_one

    def flaky(src, config, **kw):
        calls[src.path] = calls.get(src.path, 0) + 1
        if src.path == bad:
            return DocumentResult(
                doc_id=src.doc_id, source=src.path, schema_name="invoice",
                status=DocStatus.FAILURE,
                errors=[ErrorItem(stage="read", error_type="ReaderError", message="server down")],
            )  # fmt: skip
        return real(src, config, **kw)

    monkeypatch.setattr(process, "process_one", flaky)
    cfg = make_config(tmp_path, retries=2)
    s = run_local(cfg)
    assert calls[bad] == 3  # first try + 2 retries
    assert s.failed == 1 and s.parked_sources == [bad] and s.ok == 6
    # parked: written with its error (nothing lost), skipped by later runs
    table = read_table(cfg.out_dir, "invoice")
    assert table.set_index("source").loc[bad, "status"] == "failure"
    errors = read_table(cfg.out_dir, "errors")
    assert {"ReaderError", "Parked"} <= set(errors[errors["source"] == bad]["error_type"])
    assert run_local(cfg).processed == 0 and calls[bad] == 3
    with Ledger(cfg.ledger_path) as ledger:
        assert [p[1] for p in ledger.parked("invoice")] == [bad]
    # --retry-parked: it works now, and its row is replaced (not duplicated)
    monkeypatch.setattr(process, "process_one", real)
    again = run_local(cfg, retry_parked=True)
    assert again.processed == 1 and again.ok == 1
    table = read_table(cfg.out_dir, "invoice")
    assert len(table) == 7 and table.set_index("source").loc[bad, "status"] != "failure"


def test_unusable_input_is_parked_at_once(tmp_path: Path, docs: list[Path], monkeypatch) -> None:
    (tmp_path / "in" / "notes.txt").write_text("not a document")
    calls = []
    real = process.process_one
    monkeypatch.setattr(
        process, "process_one", lambda s, c, **k: calls.append(s.path) or real(s, c, **k)
    )
    cfg = make_config(tmp_path, retries=3)
    s = run_local(cfg)
    assert s.failed == 1 and calls.count(str(tmp_path / "in" / "notes.txt")) == 1
    errors = read_table(cfg.out_dir, "errors")
    assert "InputError" in set(errors["error_type"])


def test_poison_document_is_parked_after_max_attempts(
    tmp_path: Path, docs: list[Path], monkeypatch
) -> None:
    cfg = make_config(tmp_path, max_attempts=2)
    from docvlm.sources import inspect_file

    poison = inspect_file(docs[0])
    chash = cfg.config_hash()
    with Ledger(cfg.ledger_path) as ledger:  # two runs started it and died
        for run_id in ("r1", "r2"):
            ledger.start("invoice", chash, run_id, [(poison.doc_id, poison.path)])
    seen = []
    real = process.process_one
    monkeypatch.setattr(
        process, "process_one", lambda s, c, **k: seen.append(s.doc_id) or real(s, c, **k)
    )
    s = run_local(cfg)
    assert poison.doc_id not in seen and s.failed == 1 and s.ok == 6
    errors = read_table(cfg.out_dir, "errors")
    assert "without finishing" in " ".join(errors["message"])


def test_reconcile_deletes_orphans_and_redoes_lost_parts(tmp_path: Path, docs: list[Path]) -> None:
    cfg = make_config(tmp_path)
    first = run_local(cfg)
    out = cfg.out_dir
    # a crash after writing a part but before the ledger commit leaves an orphan part...
    orphan = out / "invoice" / "run_date=2000-01-01" / "part-x-0000.parquet"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(next(out.glob("invoice/run_date=*/part-*.parquet")).read_bytes())
    tmp = out / "invoice" / "run_date=2000-01-01" / ".part-y-0000.parquet.123.tmp"
    tmp.write_bytes(b"partial")
    # ... which readers never see (not committed)
    assert len(_doc_ids(cfg)) == 7
    # a part that lost a file: its documents are redone
    (lost,) = out.glob(f"invoice/run_date=*/part-{first.parts[0]}.parquet")
    lost.unlink()
    s = run_local(cfg)
    assert s.recovered["orphans"] == 1 and s.recovered["tmp"] == 1
    assert s.recovered["broken_parts"] == 1 and s.recovered["redo_docs"] == 3
    assert s.processed == 3 and not orphan.exists() and not tmp.exists()
    for table in ("invoice", "provenance"):
        df = read_table(out, table).drop(columns=["run_date"])
        assert not df.astype(str).duplicated().any()
    assert sorted(_doc_ids(cfg)) == sorted(set(_doc_ids(cfg))) and len(_doc_ids(cfg)) == 7


def test_output_lock_excludes_a_second_run(tmp_path: Path) -> None:
    with OutputLock(tmp_path, timeout_s=0):
        with pytest.raises(LedgerError, match="another docvlm run"):
            OutputLock(tmp_path, timeout_s=0).acquire()
    with OutputLock(tmp_path, timeout_s=0):  # released
        pass


def test_ledger_commit_is_one_transaction(tmp_path: Path) -> None:
    from docvlm.ops.ledger import LedgerEntry, PartRecord

    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.start("t", "h", "r", [("a", "a.pdf"), ("b", "b.pdf")])
    assert ledger.attempts("t", "h") == {"a": 1, "b": 1}
    part = PartRecord("r-0000", "t", "r", ("t/x.parquet",), 2)
    ledger.commit_part(part, "h", [LedgerEntry("a", "done"), LedgerEntry("b", "parked", error="x")])
    assert ledger.attempts("t", "h") == {}
    assert ledger.counts("t") == {"done": 1, "parked": 1, "in_flight": 0}
    with pytest.raises(sqlite3.IntegrityError):  # same part twice: nothing of it is applied
        ledger.commit_part(part, "h", [LedgerEntry("c", "done")])
    assert "c" not in ledger.states("t")
    ledger.close()


def test_consolidated_table_reads_with_duckdb(tmp_path: Path, docs: list[Path]) -> None:
    duckdb = pytest.importorskip("duckdb")
    cfg = make_config(tmp_path)
    run_local(cfg)
    glob = str(cfg.out_dir / "invoice" / "*" / "*.parquet")
    df = duckdb.sql(
        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
    ).df()
    assert len(df) == 7 and "run_date" in df.columns
    assert sorted(df["doc_id"]) == sorted(_doc_ids(cfg))
