"""Discover inputs (files, folders, globs), sniff their real type and hash their bytes."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from docvlm.datamodel import SourceDoc
from docvlm.einvoice.syntax import XML_MIME, describe_xml, invoice_syntax

logger = logging.getLogger(__name__)

SUPPORTED = ("application/pdf", "image/png", "image/jpeg", "image/tiff", XML_MIME)
_CHUNK = 1 << 20


def sniff(head: bytes) -> str | None:
    """Return the MIME type told by a file's first bytes, or None when unsupported."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    # PDF readers accept the header anywhere in the first KiB.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    if invoice_syntax(head):  # CII or UBL e-invoice
        return XML_MIME
    return None


def _describe(head: bytes) -> str:
    if not head.strip():
        return "blank bytes"
    if xml := describe_xml(head):
        return xml
    try:
        head[:256].decode("utf-8")
        return "text, not a document"
    except UnicodeDecodeError:
        return "unknown binary format"


def inspect_file(path: str | Path) -> SourceDoc:
    """Hash and sniff one file; problems go into ``SourceDoc.error`` instead of raising."""
    p = str(path)
    try:
        size = os.path.getsize(p)
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            head = fh.read(_CHUNK)
            digest.update(head)
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return SourceDoc(
            path=p, doc_id=_path_id(p), mime="unknown", size=0, error=f"cannot read file: {reason}"
        )
    doc_id = digest.hexdigest()
    if size == 0:
        return SourceDoc(
            path=p, doc_id=doc_id, mime="unknown", size=0, error="empty file (0 bytes)"
        )
    mime = sniff(head)
    if mime is None:
        return SourceDoc(
            path=p,
            doc_id=doc_id,
            mime="unknown",
            size=size,
            error=f"unsupported file type ({_describe(head)}); expected PDF, PNG, JPEG, TIFF or an e-invoice XML (CII, UBL)",
        )
    return SourceDoc(path=p, doc_id=doc_id, mime=mime, size=size)


def _path_id(path: str) -> str:
    # Unreadable files have no bytes to hash; the path keeps their id stable across runs.
    return hashlib.sha256(("path:" + os.path.abspath(path)).encode()).hexdigest()


def _walk(folder: str) -> Iterator[str]:
    for root, dirs, files in os.walk(folder, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield os.path.join(root, name)


def iter_paths(inputs: Sequence[str | Path]) -> Iterator[str]:
    """Expand inputs into file paths: files as given, folders recursively, globs matched."""
    seen: set[str] = set()
    for item in inputs:
        text = str(item)
        if os.path.isdir(text):
            candidates: list[str] | Iterator[str] = _walk(text)
        elif os.path.exists(text) or os.path.islink(text):
            candidates = [text]
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            candidates = [m for m in matches if not os.path.isdir(m)]
            for m in matches:
                if os.path.isdir(m):
                    candidates.extend(_walk(m))
        else:
            candidates = [text]  # missing: reported by inspect_file
        for path in candidates:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                yield path


def discover(inputs: Sequence[str | Path]) -> list[SourceDoc]:
    """Every input file, hashed and sniffed, in a stable order.

    Files that cannot be used are returned too, with ``error`` set, so nothing is lost.
    """
    docs = [inspect_file(p) for p in iter_paths(inputs)]
    bad = sum(1 for d in docs if d.error)
    logger.info("discovered %d files (%d unusable)", len(docs), bad)
    return docs
