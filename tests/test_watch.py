"""The folder watcher: settle detection, burst batching, exactly-once under a 200-file burst."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from docvlm.ops.dataset import read_table
from docvlm.ops.definition import PipelineConfig, pipeline_from_dict
from docvlm.ops.watch import FolderWatcher

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.schema.json"


def pdf_bytes(i: int) -> bytes:
    """A tiny born-digital PDF with distinct content."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    page.insert_text((30, 50), f"INVOICE   Invoice No: INV-{i:05d}", fontsize=12)
    page.insert_text((30, 90), f"Total: {100 + i}.50 EUR", fontsize=12)
    data = doc.tobytes()
    doc.close()
    return data


def make_config(base: Path, **watch: object) -> PipelineConfig:
    return pipeline_from_dict(
        {
            "name": "watch-test",
            "source": "inbox",
            "schema": str(SCHEMA),
            "detect": {"enabled": False},
            "output": {"dir": "out", "formats": ["parquet"]},
            "watch": {"enabled": True, "settle_s": 1.0, "batch_s": 1.0, "poll_s": 0.1, **watch},
            "run": {"batch_size": 50, "retry_delay_s": 0},
        },
        base,
    )


def test_a_file_is_ready_only_after_it_stops_changing(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settle_s=2.0, batch_s=1.0)
    (tmp_path / "inbox").mkdir()
    w = FolderWatcher(cfg, process=lambda paths: None)
    f = tmp_path / "inbox" / "a.pdf"
    f.write_bytes(b"%PDF-1.7 part one")
    w.notice(str(f))
    assert w.tick(now=0.0) is None  # first look: size/mtime recorded
    assert w.tick(now=1.5) is None  # not yet stable long enough
    with open(f, "ab") as fh:  # still being written: the clock restarts
        fh.write(b" part two")
    assert w.tick(now=1.9) is None
    assert w.tick(now=3.0) is None
    assert w.tick(now=4.0) is None  # stable since 1.9 → ready at 3.9, then 1 s of quiet needed
    assert w.tick(now=5.0) == [str(f)]
    w.notice(str(f))  # an event without a change (e.g. close) does not queue it again
    assert w.tick(now=6.0) is None and w.tick(now=9.0) is None


def test_a_burst_becomes_one_batch_and_temp_names_are_ignored(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settle_s=0.5, batch_s=2.0, max_batch=4)
    (tmp_path / "inbox").mkdir()
    w = FolderWatcher(cfg, process=lambda paths: None)
    paths = []
    for i in range(6):
        p = tmp_path / "inbox" / f"f{i}.pdf"
        p.write_bytes(b"x" * (i + 1))
        paths.append(str(p))
        w.notice(str(p))
    tmp = tmp_path / "inbox" / "upload.pdf.tmp"
    tmp.write_bytes(b"partial")
    w.notice(str(tmp))
    w.tick(now=0.0)
    batches = [w.tick(now=t) for t in (0.6, 1.0, 2.7, 3.0, 5.0)]
    got = [b for b in batches if b]
    assert got[0] == paths[:4]  # max_batch closes the first batch at once
    assert got[1] == paths[4:]  # the rest after the quiet period
    assert str(tmp) not in sum(got, [])


def _attempts(ledger: Path) -> list[int]:
    if not ledger.exists():
        return []
    with sqlite3.connect(ledger, timeout=5) as db:
        try:
            return [r[0] for r in db.execute("SELECT attempts FROM documents")]
        except sqlite3.OperationalError:
            return []


@pytest.mark.slow
def test_burst_of_200_files_some_written_slowly_is_processed_exactly_once(
    tmp_path: Path, prefect_harness: str
) -> None:
    n, slow = 200, 20
    payloads = {i: pdf_bytes(i) for i in range(n)}
    import hashlib

    expected = {hashlib.sha256(b).hexdigest() for b in payloads.values()}
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "before.pdf").write_bytes(pdf_bytes(n))  # there before the watcher starts
    expected.add(hashlib.sha256((inbox / "before.pdf").read_bytes()).hexdigest())
    cfg = make_config(tmp_path)
    from docvlm.flows.pipeline import run_pipeline

    watcher = FolderWatcher(cfg, process=lambda paths: run_pipeline(cfg, "prefect", inputs=paths))
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    assert watcher.ready.wait(120), "watcher did not start"

    def write_slowly(i: int) -> None:
        data = payloads[i]
        with open(inbox / f"slow_{i:03d}.pdf", "wb") as fh:
            for k in range(4):  # four chunks, 0.3 s apart (settle_s is 1 s)
                fh.write(data[k * len(data) // 4 : (k + 1) * len(data) // 4])
                fh.flush()
                time.sleep(0.3)

    started = time.monotonic()
    writers = [threading.Thread(target=write_slowly, args=(i,)) for i in range(slow)]
    for t in writers:
        t.start()
    for i in range(slow, n):
        (inbox / f"doc_{i:03d}.pdf").write_bytes(payloads[i])
    for i in range(5):  # same bytes under other names: one document each
        (inbox / f"copy_{i}.pdf").write_bytes(payloads[slow + i])
    for t in writers:
        t.join()

    ledger = cfg.ledger_path
    deadline = time.monotonic() + 240
    while len(_attempts(ledger)) < n + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    time.sleep(3)  # nothing more may happen
    stop.set()
    thread.join(timeout=60)

    table = read_table(cfg.out_dir, "invoice")
    attempts = _attempts(ledger)
    print(
        f"watch burst: {n} files (+5 copies, +1 pre-existing) → {len(table)} rows, "
        f"{table['doc_id'].nunique()} unique doc_ids, {watcher.batches} batches, "
        f"max attempts {max(attempts)}, {elapsed:.1f}s"
    )
    assert set(table["doc_id"]) == expected  # every final file; no partial one
    assert len(table) == len(expected) == n + 1  # none twice
    assert attempts == [1] * (n + 1)  # each processed exactly once
    assert set(table["status"]) <= {"success", "partial"}
    assert watcher.batches <= 12  # bursts were batched (catch-up run + a few batches)
