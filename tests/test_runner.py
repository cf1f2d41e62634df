"""``docvlm run``: kill -9 mid-run then run again, CLI exit codes, consolidated reading."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docvlm.cli import main
from docvlm.ops.dataset import read_table

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.schema.json"


def make_pdf(path: Path, i: int, pages: int = 1) -> Path:
    """A born-digital invoice with distinct content."""
    import pymupdf

    doc = pymupdf.open()
    for k in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((50, 80), f"INVOICE   Invoice No: INV-{i:05d}", fontsize=14)
        page.insert_text((50, 120), f"Date: 2024-03-{i % 28 + 1:02d}", fontsize=12)
        page.insert_text((50, 160), f"Total: {100 + i}.50 EUR   (page {k + 1})", fontsize=12)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    doc.close()
    return path


def write_pipeline(base: Path, extra: str = "") -> Path:
    (base / "pipelines").mkdir(parents=True, exist_ok=True)
    path = base / "pipelines" / "kill.yaml"
    path.write_text(
        f"name: kill-test\nsource: in\nschema: {SCHEMA}\n"
        "output: {dir: out, formats: [parquet]}\n" + extra,
        encoding="utf-8",
    )
    return path


def _ledger_done(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    with sqlite3.connect(ledger, timeout=5) as db:
        try:
            return db.execute("SELECT count(*) FROM documents").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def _cli(args: list[str], api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "docvlm", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL takes every child too
    )


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, prefect_harness: str
) -> None:
    n = 30
    expected = {}
    from docvlm.sources import inspect_file

    for i in range(n):
        p = make_pdf(tmp_path / "in" / f"doc_{i:02d}.pdf", i, pages=2)
        expected[inspect_file(p).doc_id] = str(p)
    yaml_path = write_pipeline(tmp_path, "run: {batch_size: 3}\n")
    ledger = tmp_path / "out" / "_ledger.sqlite"

    proc = _cli(["run", str(yaml_path)], prefect_harness)
    deadline = time.monotonic() + 240
    while _ledger_done(ledger) < 9 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, (
        "the run ended before it could be killed:\n" + proc.stdout.read().decode()[-3000:]
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_at_kill = _ledger_done(ledger)
    assert 0 < done_at_kill < n

    # right after the crash the committed outputs are consistent: no duplicates, all vouched for
    partial = read_table(tmp_path / "out", "invoice")
    assert len(partial) == partial["doc_id"].nunique() == done_at_kill

    proc = _cli(["run", str(yaml_path), "--json"], prefect_harness)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()[-3000:]
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["skipped"] == done_at_kill
    assert summary["processed"] == n - done_at_kill

    table = read_table(tmp_path / "out", "invoice")
    assert sorted(table["doc_id"]) == sorted(expected)  # none lost, none duplicated
    assert dict(zip(table["doc_id"], table["source"], strict=True)) == expected
    assert set(table["status"]) <= {"success", "partial"}
    for name in ("invoice__line_items", "provenance", "errors"):
        df = read_table(tmp_path / "out", name)
        if len(df):
            assert not df.drop(columns=["run_date"]).astype(str).duplicated().any(), name
            assert set(df["doc_id"]) <= set(expected)
    print(
        f"kill -9 after {done_at_kill}/{n} committed; rerun processed {summary['processed']}, "
        f"final rows {len(table)} unique {table['doc_id'].nunique()}"
    )
    prov = read_table(tmp_path / "out", "provenance")
    assert set(prov["doc_id"]) == set(expected)  # every document has its provenance rows once
    # nothing the ledger does not name is left on disk
    with sqlite3.connect(ledger) as db:
        named = {f for (files,) in db.execute("SELECT files FROM parts") for f in json.loads(files)}
    on_disk = {
        str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").glob("*/run_date=*/*")
    }
    assert on_disk == named


def test_cli_exit_codes_and_messages(tmp_path: Path, capsys) -> None:
    make_pdf(tmp_path / "in" / "a.pdf", 1)
    bad = write_pipeline(tmp_path, "run: {batch_size: 3, wrokers: 2}\n")
    assert main(["run", str(bad), "--engine", "local"]) == 2
    assert "unknown key 'run.wrokers'" in capsys.readouterr().err

    good = write_pipeline(tmp_path, "detect: {enabled: false}\nrun: {retry_delay_s: 0}\n")
    assert main(["run", str(good), "--engine", "local"]) == 0
    assert "1 processed (1 ok, 0 parked)" in capsys.readouterr().out
    assert main(["run", str(good), "--engine", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1

    (tmp_path / "in" / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    assert main(["run", str(good), "--engine", "local"]) == 1  # parked documents
    assert "parked: " in capsys.readouterr().out
    # local workers are plain processes; a Dask scheduler needs the prefect orchestrator
    assert main(["run", str(good), "--engine", "local", "--dask-address", "tcp://x:1"]) == 2


def test_read_table_before_any_output(tmp_path: Path) -> None:
    assert read_table(tmp_path / "nothing", "invoice").empty


def test_document_failed_survives_pickling_to_and_from_workers() -> None:
    import pickle

    from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem
    from docvlm.errors import DocumentFailed

    res = DocumentResult(
        doc_id="d", source="s.pdf", schema_name="invoice", status=DocStatus.FAILURE,
        errors=[ErrorItem(stage="render", error_type="MemoryError", message="out of memory")],
    )  # fmt: skip
    back = pickle.loads(pickle.dumps(DocumentFailed(res.model_dump_json())))
    assert isinstance(back, DocumentFailed) and back.result == res


def _docvlm_processes(marker: str) -> list[str]:
    """Command lines of live processes whose environment carries ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker.encode() in env and (proc / "stat").read_text().split()[2] != "Z":
            found.append(cmd)
    return found


@pytest.mark.slow
def test_kill_9_loop_loses_nothing_parks_no_healthy_document_leaves_no_process(
    tmp_path: Path,
) -> None:
    """Several kill -9 at random moments of `docvlm run` (each run with its own Prefect
    server, as on a machine without PREFECT_API_URL), then a clean run."""
    import random

    from docvlm.sources import inspect_file

    n, kills = 40, 5
    expected = {}
    for i in range(n):
        p = make_pdf(tmp_path / "in" / f"doc_{i:02d}.pdf", i)
        expected[inspect_file(p).doc_id] = str(p)
    yaml_path = write_pipeline(tmp_path, "run: {batch_size: 4, max_attempts: 2}\n")
    ledger = tmp_path / "out" / "_ledger.sqlite"
    marker = f"DOCVLM_KILL_LOOP={tmp_path.name}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "DOCVLM_KILL_LOOP": tmp_path.name,
                "PYTHONPATH": str(ROOT)})  # fmt: skip
    rng = random.Random(7)
    killed_at = []

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "docvlm", "run", str(yaml_path), "--json"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    for _ in range(kills):
        before = _ledger_done(ledger)
        proc = start()
        # kill once this run has committed something, at a random moment after that
        deadline = time.monotonic() + 240
        while _ledger_done(ledger) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            break  # it finished everything before the kill
        os.kill(proc.pid, signal.SIGKILL)  # the run alone: its children must die with it
        proc.wait(timeout=30)
        killed_at.append(_ledger_done(ledger))
        time.sleep(1.5)  # the server's parent watch polls once a second
        assert _docvlm_processes(marker) == [], "processes outlived their killed run"
    assert killed_at, "no run lived long enough to be killed"

    final = start()
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0, out.decode()[-3000:]
    table = read_table(tmp_path / "out", "invoice")
    assert sorted(table["doc_id"]) == sorted(expected)  # none lost, none duplicated
    assert set(table["status"]) <= {"success", "partial"}  # no healthy document parked
    with sqlite3.connect(ledger) as db:
        parked = db.execute("SELECT count(*) FROM documents WHERE status = 'parked'").fetchone()[0]
    assert parked == 0
    time.sleep(1.5)
    assert _docvlm_processes(marker) == []
    print(
        f"kill loop: {len(killed_at)} kills at {killed_at} committed of {n}; final {len(table)} rows"
    )
