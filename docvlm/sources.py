"""Discover inputs (files, folders, globs), sniff their real type and hash their bytes.

Discovery accounts for everything it meets and opens only regular files:

- a FIFO, socket, device, a symlink loop or a dangling link becomes an entry with ``error``
  set, found with ``lstat``/``stat`` and never opened (opening a FIFO blocks forever, reading
  ``/dev/zero`` never ends);
- inside a folder, hidden entries (a name starting with ``.``: ``.git``, ``.DS_Store``) and
  symlinks to folders are skipped, each reported as an entry saying why; a file or folder
  named explicitly is used whatever its name;
- a folder that cannot be listed is reported, not silently left out;
- a name that is not valid UTF-8 (or holds control characters) is kept as printable escaped
  text in ``SourceDoc.path`` (``inv\\xff.pdf``) for every table and message, while the file
  is still read by its real name.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


def printable_path(path: str | bytes) -> str:
    """A path as printable text: bytes that are not UTF-8 as ``\\xNN``, control characters
    as ``\\n``, ``\\x07``, ``\\u2028``. Valid, printable names are returned unchanged."""
    text = os.fsdecode(path) if isinstance(path, bytes) else path
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or not ch.isprintable() and ch != " ":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _source(path: str, doc_id: str, mime: str, size: int, error: str | None = None) -> SourceDoc:
    shown = printable_path(path)
    # the real name, when the printable one differs, rides along as hex (JSON-safe)
    raw = os.fsencode(path).hex() if shown != path else None
    return SourceDoc(path=shown, doc_id=doc_id, mime=mime, size=size, error=error, raw_path=raw)


def _unusable(path: str, error: str) -> SourceDoc:
    return _source(path, _path_id(path), "unknown", 0, error)


def _check_link(path: str) -> str | None:
    """Why a path that is a symlink cannot be followed, or None when it resolves."""
    try:
        os.stat(path)
    except OSError as exc:
        target = printable_path(os.readlink(path)) if os.path.islink(path) else "?"
        if exc.errno == errno.ELOOP:
            return f"symlink loop (the link resolves to itself through {target})"
        if exc.errno == errno.ENOENT:
            return f"dangling symlink: its target {target} does not exist (cannot read file)"
        return f"cannot read file: {exc.strerror or type(exc).__name__}"
    return None


_snapshot_lock = threading.Lock()
_snapshot_dir: str | None = None


@contextmanager
def snapshots(parent: str | None = None) -> Iterator[str]:
    """While active, discovery copies the bytes it hashes into a private temporary folder
    and documents are read from that copy (``SourceDoc.snapshot``), so a file still being
    written cannot be hashed at one moment and read at another: the pages read are the
    bytes the ``doc_id`` names. The folder is removed on exit. Used by the watcher.
    """
    global _snapshot_dir
    folder = tempfile.mkdtemp(prefix="docvlm-snapshots-", dir=parent)
    with _snapshot_lock:
        previous, _snapshot_dir = _snapshot_dir, folder
    try:
        yield folder
    finally:
        with _snapshot_lock:
            _snapshot_dir = previous
        shutil.rmtree(folder, ignore_errors=True)


def _snapshot_file(path: str) -> tuple[int, str] | None:
    folder = _snapshot_dir
    if folder is None:
        return None
    suffix = os.path.splitext(printable_path(path))[1][:16]
    return tempfile.mkstemp(prefix="src-", suffix=suffix, dir=folder)


def inspect_file(path: str | Path, keep_bytes_below: int = 0) -> SourceDoc:
    """Hash and sniff one file; problems go into ``SourceDoc.error`` instead of raising.

    Only a regular file is opened (FIFOs, devices, sockets, folders, symlink loops and
    dangling links are reported from ``stat``), and it is opened non-blocking and checked
    again on the open descriptor, so a file swapped for a FIFO in between cannot hang.

    Args:
        path: The file.
        keep_bytes_below: Files smaller than this many bytes keep the exact bytes that were
            hashed (``SourceDoc.content()``), so the pages read later are the bytes the
            ``doc_id`` names even if the file changes meanwhile. 0 keeps none.
    """
    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    try:
        st = os.lstat(p)
    except OSError as exc:
        return _unusable(p, f"cannot read file: {exc.strerror or type(exc).__name__}")
    if stat.S_ISLNK(st.st_mode):
        problem = _check_link(p)
        if problem:
            return _unusable(p, problem)
        st = os.stat(p)
    if not stat.S_ISREG(st.st_mode):
        return _unusable(p, f"not a regular file: it is {_kind(st.st_mode)}; not opened")
    data = bytearray() if 0 < st.st_size < keep_bytes_below else None
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return _unusable(p, f"cannot read file: {exc.strerror or type(exc).__name__}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _unusable(p, f"not a regular file: it is {_kind(st.st_mode)}; not read")
        digest = hashlib.sha256()
        copy = _snapshot_file(p)
        snapshot = copy[1] if copy else None
        size = 0
        with (
            os.fdopen(fd, "rb", closefd=False) as fh,
            os.fdopen(copy[0], "wb") if copy else open(os.devnull, "wb") as out,
        ):
            head = fh.read(_CHUNK)
            chunk = head
            while chunk:
                digest.update(chunk)
                size += len(chunk)
                if data is not None:
                    data += chunk
                if snapshot:
                    out.write(chunk)
                chunk = fh.read(_CHUNK)
    except OSError as exc:
        return _unusable(p, f"cannot read file: {exc.strerror or type(exc).__name__}")
    finally:
        os.close(fd)
    doc_id = digest.hexdigest()
    if not head:
        return _source(p, doc_id, "unknown", 0, "empty file (0 bytes)")
    mime = sniff(head)
    if mime is None:
        return _source(
            p,
            doc_id,
            "unknown",
            size,
            f"unsupported file type ({_describe(head)}); expected PDF, PNG, JPEG, TIFF or an e-invoice XML (CII, UBL)",
        )
    doc = _source(p, doc_id, mime, size)
    if snapshot:
        doc = doc.model_copy(update={"snapshot": snapshot})
    return doc.with_content(bytes(data)) if data is not None else doc


def _path_id(path: str) -> str:
    # Unreadable files have no bytes to hash; the path keeps their id stable across runs.
    raw = os.fsencode(os.path.abspath(path))
    return hashlib.sha256(b"path:" + raw).hexdigest()


@dataclass(frozen=True)
class Found:
    """A path met by discovery and, when it is not to be read, why."""

    path: str
    skipped: str | None = None


def _walk(folder: str) -> Iterator[Found]:
    problems: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=problems.append, followlinks=False):
        while problems:
            exc = problems.pop(0)
            where = exc.filename if isinstance(exc.filename, str) else root
            yield Found(where, f"cannot list folder: {exc.strerror or type(exc).__name__}")
        keep = []
        for d in sorted(dirs):
            full = os.path.join(root, d)
            if d.startswith("."):
                yield Found(full, "skipped: hidden folder (name it as an input to read it)")
            elif os.path.islink(full):
                yield Found(full, "skipped: symlink to a folder, not followed inside a folder")
            else:
                keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            full = os.path.join(root, name)
            if name.startswith("."):
                yield Found(full, "skipped: hidden file (name it as an input to read it)")
            else:
                yield Found(full)
    while problems:  # the top folder itself could not be listed
        exc = problems.pop(0)
        yield Found(folder, f"cannot list folder: {exc.strerror or type(exc).__name__}")


def iter_found(inputs: Sequence[str | Path]) -> Iterator[Found]:
    """Every path the inputs name, with a reason for those that are not to be read:
    files as given, folders recursively, globs matched; each path once."""
    seen: set[str] = set()
    for item in inputs:
        text = os.fsdecode(os.fspath(item))
        candidates: list[Found] | Iterator[Found]
        if os.path.isdir(text):
            candidates = _walk(text)
        elif os.path.lexists(text):
            candidates = [Found(text)]
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            candidates = [Found(m) for m in matches if not os.path.isdir(m)]
            for m in matches:
                if os.path.isdir(m):
                    candidates.extend(_walk(m))
        else:
            candidates = [Found(text)]  # missing: reported by inspect_file
        for found in candidates:
            key = os.path.abspath(found.path)
            if key not in seen:
                seen.add(key)
                yield found


def iter_paths(inputs: Sequence[str | Path]) -> Iterator[str]:
    """The paths to read (skipped ones left out); see :func:`iter_found`."""
    return (f.path for f in iter_found(inputs) if f.skipped is None)


def discover(inputs: Sequence[str | Path], keep_bytes_below: int = 0) -> list[SourceDoc]:
    """Every input file, hashed and sniffed, in a stable order.

    Files that cannot be used, and things skipped (hidden entries, symlinked folders,
    unlistable folders), are returned too, with ``error`` set, so nothing is lost.
    """
    docs = [
        _unusable(f.path, f.skipped) if f.skipped else inspect_file(f.path, keep_bytes_below)
        for f in iter_found(inputs)
    ]
    bad = sum(1 for d in docs if d.error)
    logger.info("discovered %d files (%d unusable or skipped)", len(docs), bad)
    return docs
