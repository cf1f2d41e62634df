"""Crash-safe, incremental output for ``extract --out``.

Every finished document is appended to a journal (one JSON line, flushed and fsynced) in
``OUT/.docvlm-staging/<key>.jsonl``, where ``key`` hashes the schema and the options that
change results. A kill keeps every finished document; a rerun with the same ``--out``, schema
and options skips what the journal holds and processes the rest. At the end the tables are
consolidated from the journal chunk by chunk (memory flat in the number of documents), each
written to a temporary file and renamed, and the journal is removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import DocumentResult, PipelineOptions, SourceDoc

if TYPE_CHECKING:
    from docvlm.schema import SchemaSpec

logger = logging.getLogger(__name__)

STAGING_DIR = ".docvlm-staging"
_CHUNK = 256


def run_key(schema: SchemaSpec, options: PipelineOptions) -> str:
    """Hash of what changes a document's result: the schema and the stage options."""
    payload = {
        "schema": schema.schema,
        "options": options.model_dump(mode="json", exclude={"output": True, "limits": True}),
    }
    payload["options"].get("reader", {}).pop("api_key", None)
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Journal:
    """The append-only journal of one ``extract`` run's finished documents."""

    def __init__(self, out_dir: str | Path, key: str) -> None:
        self.dir = Path(out_dir) / STAGING_DIR
        self.path = self.dir / f"{key}.jsonl"
        self._fh: Any = None

    def done(self) -> set[tuple[str, str]]:
        """``(doc_id, source)`` of every document the journal holds (a torn last line from a
        kill is ignored)."""
        return {(r.doc_id, r.source) for r in self.read()}

    def read(self) -> Iterator[DocumentResult]:
        """The journal's results in the order they were written."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # torn write of a killed run
                try:
                    yield DocumentResult.model_validate_json(line)
                except ValueError:
                    logger.warning("%s: skipping an unreadable journal line", self.path)

    def add(self, result: DocumentResult) -> None:
        """Append one result durably (flushed and fsynced before returning)."""
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._truncate_torn_tail()
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(result.model_dump_json() + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _truncate_torn_tail(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                fh.truncate(end)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        """Delete the journal (after a successful consolidation)."""
        self.close()
        self.path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass  # another run's journal is still there


def ordered_results(journal: Journal, docs: Iterable[SourceDoc]) -> Iterator[DocumentResult]:
    """The journal's results for ``docs``, in the order of ``docs`` (one per input).

    Holds one compact index (byte offsets), not the results, so memory stays flat.
    """
    offsets: dict[tuple[str, str], int] = {}
    if journal.path.exists():
        with open(journal.path, "rb") as fh:
            pos = 0
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                head = json.loads(line)
                offsets[(head["doc_id"], head["source"])] = pos
                pos += len(line)
    with open(journal.path, "rb") as fh:
        for src in docs:
            at = offsets.get((src.doc_id, src.path))
            if at is None:
                continue
            fh.seek(at)
            yield DocumentResult.model_validate_json(fh.readline())


def chunks(results: Iterable[DocumentResult], size: int = _CHUNK) -> Iterator[list]:
    """``results`` in lists of at most ``size``."""
    chunk: list[DocumentResult] = []
    for r in results:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
