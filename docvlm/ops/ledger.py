"""The processing ledger: which document (by content) is in which output part.

One SQLite file per output folder (``OUT/_ledger.sqlite`` by default). A document is keyed by
its table (schema name) and ``doc_id`` (sha256 of its bytes); the row also carries the
pipeline-configuration hash it was produced with, so a changed schema or changed options make
the document due again while an unchanged pipeline never reprocesses it.

States of a document:

* no row in ``documents`` — due (never processed, or its part was lost);
* ``attempts`` row only — started by a run that did not finish it (crash, kill -9); the next
  run redoes it, and after ``max_attempts`` such starts it is parked as poison;
* ``documents.status = 'done'`` — its rows are in ``documents.part``;
* ``documents.status = 'parked'`` — it failed every retry; its failure row and errors are in
  ``documents.part``; later runs skip it unless asked to retry parked documents.

Commit protocol (crash-safe at any moment): a batch's part files are written first (each to a
temporary name, then renamed); then one transaction records the part, its files and every
document of the batch. On start, :func:`docvlm.ops.runner.reconcile` deletes part files the ledger
does not name (their documents are simply due again), forgets parts with a missing file (their
documents are redone), and rewrites parts that still hold rows of documents since moved to a
newer part (reprocessing replaces rows instead of duplicating them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from docvlm.errors import LedgerError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    table_name  TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('done', 'parked')),
    doc_status  TEXT,
    part        TEXT NOT NULL,
    source      TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 1,
    run_id      TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (table_name, doc_id)
);
CREATE INDEX IF NOT EXISTS documents_part ON documents (part);
CREATE TABLE IF NOT EXISTS attempts (
    table_name  TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    source      TEXT,
    last_run    TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (table_name, doc_id, config_hash)
);
CREATE TABLE IF NOT EXISTS parts (
    part_id    TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    files      TEXT NOT NULL,
    n_docs     INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    pipeline    TEXT,
    config_hash TEXT,
    started_at  TEXT,
    finished_at TEXT,
    summary     TEXT
);
"""


def utcnow() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LedgerEntry:
    """The ledger's view of one committed document."""

    doc_id: str
    status: str  # 'done' | 'parked'
    doc_status: str | None = None  # success | partial | failure (the DocumentResult's)
    source: str | None = None
    error: str | None = None
    attempts: int = 1


@dataclass(frozen=True)
class PartRecord:
    """One committed output part: its files (relative to the output folder) and size."""

    part_id: str
    table_name: str
    run_id: str
    files: tuple[str, ...]
    n_docs: int
    created_at: str = ""


@dataclass(frozen=True)
class DocState:
    """Committed state of a document (from ``documents``)."""

    doc_id: str
    config_hash: str
    status: str
    part: str
    attempts: int
    error: str | None


class Ledger:
    """SQLite ledger of processed and failed documents.

    Args:
        path: the SQLite file (created with its folder when missing).
        timeout_s: how long to wait for another writer's transaction.
    """

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE
            self._db = sqlite3.connect(
                str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process; on power loss the last commits may
            # roll back, which leaves unnamed parts that reconcile deletes and redoes.
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as db:
                for stmt in _DDL.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all or nothing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------------

    def states(self, table_name: str, doc_ids: Iterable[str] | None = None) -> dict[str, DocState]:
        """Committed state per doc_id (all documents of the table when ``doc_ids`` is None)."""
        sql = (
            "SELECT doc_id, config_hash, status, part, attempts, error FROM documents "
            "WHERE table_name = ?"
        )
        rows = self._db.execute(sql, (table_name,)).fetchall()
        wanted = set(doc_ids) if doc_ids is not None else None
        return {r[0]: DocState(*r) for r in rows if wanted is None or r[0] in wanted}

    def attempts(self, table_name: str, config_hash: str) -> dict[str, int]:
        """Started-but-uncommitted attempts per doc_id for this configuration."""
        rows = self._db.execute(
            "SELECT doc_id, attempts FROM attempts WHERE table_name = ? AND config_hash = ?",
            (table_name, config_hash),
        ).fetchall()
        return dict(rows)

    def parts(self) -> list[PartRecord]:
        """Every committed part, oldest first."""
        rows = self._db.execute(
            "SELECT part_id, table_name, run_id, files, n_docs, created_at FROM parts "
            "ORDER BY part_id"
        ).fetchall()
        return [PartRecord(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5]) for r in rows]

    def live_docs(self, part_id: str) -> set[str]:
        """doc_ids whose current rows live in ``part_id``."""
        rows = self._db.execute("SELECT doc_id FROM documents WHERE part = ?", (part_id,))
        return {r[0] for r in rows}

    def counts(self, table_name: str) -> dict[str, int]:
        """Documents per ledger status (plus 'in_flight' for started, uncommitted ones)."""
        out = dict(
            self._db.execute(
                "SELECT status, count(*) FROM documents WHERE table_name = ? GROUP BY status",
                (table_name,),
            ).fetchall()
        )
        out["in_flight"] = self._db.execute(
            "SELECT count(*) FROM attempts WHERE table_name = ?", (table_name,)
        ).fetchone()[0]
        return out

    def parked(self, table_name: str) -> list[tuple[str, str | None, str | None]]:
        """(doc_id, source, error) of every parked document."""
        return self._db.execute(
            "SELECT doc_id, source, error FROM documents WHERE table_name = ? "
            "AND status = 'parked' ORDER BY updated_at",
            (table_name,),
        ).fetchall()

    # -- writes --------------------------------------------------------------------------

    def start(
        self,
        table_name: str,
        config_hash: str,
        run_id: str,
        docs: Sequence[tuple[str, str]],
    ) -> dict[str, int]:
        """Count a started attempt for each ``(doc_id, source)``; returns attempts so far
        (including this one). Called *before* processing, so a document that kills the
        process every time is eventually parked instead of looping forever."""
        now = utcnow()
        with self.transaction() as db:
            for doc_id, source in docs:
                db.execute(
                    "INSERT INTO attempts (table_name, doc_id, config_hash, attempts, source, "
                    "last_run, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?) "
                    "ON CONFLICT (table_name, doc_id, config_hash) DO UPDATE SET "
                    "attempts = attempts + 1, last_run = excluded.last_run, "
                    "updated_at = excluded.updated_at",
                    (table_name, doc_id, config_hash, source, run_id, now),
                )
        return {
            k: v
            for k, v in self.attempts(table_name, config_hash).items()
            if k in {d for d, _ in docs}
        }

    def commit_part(
        self,
        part: PartRecord,
        config_hash: str,
        entries: Sequence[LedgerEntry],
    ) -> set[str]:
        """Record a written part and its documents in one transaction.

        Returns:
            ids of older parts that still hold rows of these documents (to be compacted).
        """
        now = utcnow()
        ids = [e.doc_id for e in entries]
        with self.transaction() as db:
            superseded = {
                r[0]
                for r in _select_in(
                    db,
                    "SELECT part FROM documents WHERE table_name = ? AND doc_id IN ({})",
                    (part.table_name,),
                    ids,
                )
            }
            db.execute(
                "INSERT INTO parts (part_id, table_name, run_id, files, n_docs, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    part.part_id,
                    part.table_name,
                    part.run_id,
                    json.dumps(list(part.files)),
                    part.n_docs,
                    now,
                ),
            )
            for e in entries:
                db.execute(
                    "INSERT INTO documents (table_name, doc_id, config_hash, status, doc_status, "
                    "part, source, error, attempts, run_id, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (table_name, doc_id) DO UPDATE SET "
                    "config_hash = excluded.config_hash, status = excluded.status, "
                    "doc_status = excluded.doc_status, part = excluded.part, "
                    "source = excluded.source, error = excluded.error, "
                    "attempts = excluded.attempts, run_id = excluded.run_id, "
                    "updated_at = excluded.updated_at",
                    (
                        part.table_name,
                        e.doc_id,
                        config_hash,
                        e.status,
                        e.doc_status,
                        part.part_id,
                        e.source,
                        e.error,
                        e.attempts,
                        part.run_id,
                        now,
                    ),
                )
            # every attempt of these documents is settled, whatever configuration started it
            for chunk in _chunks(ids, 500):
                db.execute(
                    f"DELETE FROM attempts WHERE table_name = ? AND doc_id IN "
                    f"({','.join('?' * len(chunk))})",
                    (part.table_name, *chunk),
                )
        superseded.discard(part.part_id)
        return superseded

    def update_part(self, part_id: str, n_docs: int) -> None:
        """Set a part's document count after compaction."""
        with self.transaction() as db:
            db.execute("UPDATE parts SET n_docs = ? WHERE part_id = ?", (n_docs, part_id))

    def drop_part(self, part_id: str) -> int:
        """Forget a part and the documents it holds (they become due again).

        Returns:
            how many documents were forgotten.
        """
        with self.transaction() as db:
            n = db.execute("DELETE FROM documents WHERE part = ?", (part_id,)).rowcount
            db.execute("DELETE FROM parts WHERE part_id = ?", (part_id,))
        return n

    def forget(self, table_name: str, doc_ids: Iterable[str]) -> None:
        """Drop uncommitted attempt counters (used when reprocessing is forced)."""
        with self.transaction() as db:
            for chunk in _chunks(list(doc_ids), 500):
                db.execute(
                    f"DELETE FROM attempts WHERE table_name = ? AND doc_id IN "
                    f"({','.join('?' * len(chunk))})",
                    (table_name, *chunk),
                )

    def record_run(
        self,
        run_id: str,
        pipeline: str,
        config_hash: str,
        started_at: str,
        summary: dict[str, object] | None = None,
    ) -> None:
        """Insert or finish a run row (``summary`` set = finished)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, pipeline, config_hash, started_at, finished_at, summary)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "finished_at = excluded.finished_at, summary = excluded.summary",
                (
                    run_id,
                    pipeline,
                    config_hash,
                    started_at,
                    utcnow() if summary is not None else None,
                    json.dumps(summary) if summary is not None else None,
                ),
            )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _select_in(
    db: sqlite3.Connection, sql: str, params: tuple[object, ...], ids: list[str]
) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for chunk in _chunks(ids, 500):
        rows.extend(db.execute(sql.format(",".join("?" * len(chunk))), (*params, *chunk)))
    return rows


class OutputLock:
    """An exclusive lock on an output folder, so two runs never write it at once.

    Uses ``flock`` on ``OUT/_ledger.lock``; the kernel drops it when the process dies, so a
    killed run never leaves a stale lock behind.

    Args:
        out_dir: the output folder.
        timeout_s: how long to wait for another run to finish (0 = fail at once).
    """

    def __init__(self, out_dir: str | Path, timeout_s: float = 3600.0) -> None:
        self.path = Path(out_dir) / "_ledger.lock"
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LedgerError(
                        f"another docvlm run is writing {self.path.parent} (lock {self.path}); "
                        "wait for it to finish or raise run.lock_timeout_s"
                    ) from None
                if not waited:
                    logger.info("event=lock_wait out_dir=%s", self.path.parent)
                    waited = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
