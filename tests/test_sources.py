import hashlib
import os
from pathlib import Path

from conftest import SAMPLES, make_text_pdf

from docvlm.sources import discover, inspect_file, sniff


def test_sniff_reads_bytes_not_extension(tmp_path: Path) -> None:
    from PIL import Image

    png_named_pdf = tmp_path / "really_png.pdf"
    Image.new("RGB", (20, 20), "white").save(png_named_pdf, format="PNG")
    doc = inspect_file(png_named_pdf)
    assert doc.mime == "image/png"
    assert doc.error is None
    assert doc.doc_id == hashlib.sha256(png_named_pdf.read_bytes()).hexdigest()


def test_sniff_known_headers() -> None:
    assert sniff(b"%PDF-1.7\n...") == "application/pdf"
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"II*\x00rest") == "image/tiff"
    assert sniff(b"MM\x00*rest") == "image/tiff"
    assert sniff(b"hello world") is None


def test_bad_files_are_reported_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.pdf").write_text("this is not a pdf", encoding="utf-8")
    os.symlink(tmp_path / "gone.pdf", tmp_path / "broken_link.pdf")
    make_text_pdf(tmp_path / "good.pdf", ["Invoice No.: A-1"])
    docs = {Path(d.path).name: d for d in discover([tmp_path])}
    assert set(docs) == {"empty.pdf", "notes.pdf", "broken_link.pdf", "good.pdf"}
    assert "empty file" in docs["empty.pdf"].error
    assert "unsupported file type" in docs["notes.pdf"].error and "text" in docs["notes.pdf"].error
    assert "cannot read file" in docs["broken_link.pdf"].error
    assert docs["good.pdf"].error is None and docs["good.pdf"].mime == "application/pdf"


def test_folders_recurse_globs_match_and_duplicates_collapse(tmp_path: Path) -> None:
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    make_text_pdf(sub / "deep.pdf", ["x"])
    make_text_pdf(tmp_path / "top.pdf", ["y"])
    (tmp_path / ".hidden.pdf").write_bytes(b"%PDF-1.4")
    found = discover([tmp_path, str(tmp_path / "**" / "*.pdf"), tmp_path / "top.pdf"])
    names = sorted(Path(d.path).name for d in found if not d.error)
    assert names == ["deep.pdf", "top.pdf"]
    # the hidden file is skipped, and says so
    (hidden,) = [d for d in found if d.error]
    assert Path(hidden.path).name == ".hidden.pdf" and "hidden file" in hidden.error
    # named explicitly, it is read
    (named,) = discover([tmp_path / ".hidden.pdf"])
    assert named.mime == "application/pdf" and named.error is None


def test_missing_path_is_an_error_entry(tmp_path: Path) -> None:
    (doc,) = discover([tmp_path / "nope.pdf"])
    assert doc.error and "cannot read file" in doc.error


def test_sample_docs_all_supported() -> None:
    docs = discover([SAMPLES / "invoices", SAMPLES / "receipts"])
    assert len(docs) >= 20
    assert all(d.error is None for d in docs), [d for d in docs if d.error]
    assert {d.mime for d in docs} == {"application/pdf", "image/png", "image/jpeg", "image/tiff"}
