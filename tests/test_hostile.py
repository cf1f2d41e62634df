"""Hostile inputs: a folder of files built at test time that once hung, crashed or blew the
memory of a run (extreme strips, pixel bombs, FIFOs, links to /dev/zero, symlink loops,
undecodable names, broken EXIF, a TIFF with a bad frame, encrypted/truncated PDFs) next to
good files. The run must end in bounded time and memory, account for every input by source,
and keep the good rows intact."""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES, make_text_pdf
from PIL import Image, ImageDraw, ImageFont

from docvlm.datamodel import DocStatus, DocumentResult, RenderOptions
from docvlm.errors import InputError, SchemaError
from docvlm.pipeline import extract
from docvlm.render.image import ImageRenderer, _to_rgb
from docvlm.schema import load_schema, schema_from_dict
from docvlm.sources import discover, inspect_file, printable_path
from docvlm.tables import build_tables, csv_cell, write_tables

NON_UTF8 = b"inv\xff.pdf"


def _text_image(text: str, size: tuple[int, int] = (900, 300)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    font = ImageFont.load_default(size=40)
    ImageDraw.Draw(img).text((40, 120), text, fill="black", font=font)
    return img


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pixel_bomb_png(path: Path, side: int = 30000) -> Path:
    """A small PNG whose header declares side×side grey pixels (some zero rows follow)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 64, 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )
    return path


def bad_frame_tiff(path: Path) -> Path:
    """Three frames; the second's strip points past the end of the file."""
    frames = [_text_image("Invoice No.: TIFF-5"), _text_image("second"), _text_image("third")]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    data = bytearray(buf.getvalue())
    offsets = []
    off = struct.unpack("<I", data[4:8])[0]
    while off:
        offsets.append(off)
        n = struct.unpack("<H", data[off : off + 2])[0]
        off = struct.unpack("<I", data[off + 2 + 12 * n : off + 6 + 12 * n])[0]
    second = offsets[1]
    for i in range(struct.unpack("<H", data[second : second + 2])[0]):
        entry = second + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 273:  # StripOffsets
            data[entry + 8 : entry + 12] = struct.pack("<I", len(data) + 10_000_000)
    path.write_bytes(bytes(data))
    return path


def corrupt_exif_jpeg(path: Path, text: str) -> Path:
    """A readable JPEG whose EXIF block is garbage (an ASCII orientation, a dangling IFD)."""
    exif = (
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00"
        + b"\x02\x00"  # two entries
        + struct.pack("<HHI4s", 0x0112, 2, 4, b"abc\x00")  # Orientation as text
        + struct.pack("<HHII", 0x8769, 4, 1, 0x7FFFFFF0)  # Exif IFD far past the end
        + b"\xff\xff\xff\x7f"
    )
    _text_image(text).save(path, format="JPEG", quality=90, exif=exif)
    return path


def build_hostile_folder(d: Path) -> dict[str, str]:
    """The hostile folder; returns the expected outcome by file name (``ok:<invoice no>``,
    ``error:<words in the message>``)."""
    import pymupdf

    good = (SAMPLES / "invoices" / "inv_en_gb_01.pdf").read_bytes()
    (d / "ok.pdf").write_bytes(good)
    make_text_pdf(d / "raw.tmp", ["Invoice No.: RAW-7", "Date: 2024-03-01", "Total: 12.00 EUR"])
    os.rename(d / "raw.tmp", os.fsencode(d) + b"/" + NON_UTF8)
    Image.new("RGB", (20000, 40), "white").save(d / "strip.png")
    pixel_bomb_png(d / "bomb.png")
    os.mkfifo(d / "pipe.pdf")
    os.symlink(d / "loop_b.pdf", d / "loop_a.pdf")
    os.symlink(d / "loop_a.pdf", d / "loop_b.pdf")
    os.symlink("/dev/zero", d / "zero.pdf")
    os.symlink(d / "nowhere.pdf", d / "dangling.pdf")
    (d / ".hidden.pdf").write_bytes(good)
    corrupt_exif_jpeg(d / "exif.jpg", "Invoice No.: EXIF-3")
    bad_frame_tiff(d / "frames.tiff")
    locked = pymupdf.open()
    locked.new_page().insert_text((50, 50), "secret")
    locked.save(d / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o",
                user_pw="u")  # fmt: skip
    (d / "truncated.pdf").write_bytes(good[: len(good) // 3])
    poster = pymupdf.open()
    poster.new_page(width=9600, height=19)  # a 9600×19 pt page without text
    poster.save(d / "ribbon.pdf")
    return {
        "ok.pdf": "ok:TH-2019-0311",
        "inv\\xff.pdf": "ok:RAW-7",
        "strip.png": "partial-or-ok",
        "bomb.png": "error:30000×30000",
        "pipe.pdf": "error:FIFO",
        "loop_a.pdf": "error:symlink loop",
        "loop_b.pdf": "error:symlink loop",
        "zero.pdf": "error:character device",
        "dangling.pdf": "error:dangling symlink",
        ".hidden.pdf": "error:hidden file",
        "exif.jpg": "ok:EXIF-3",
        "frames.tiff": "partial:TIFF-5",
        "encrypted.pdf": "error:password",
        "truncated.pdf": "any",
        "ribbon.pdf": "partial-or-ok",
    }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    d = tmp_path_factory.mktemp("hostile")
    return d, build_hostile_folder(d)


@pytest.fixture(scope="module")
def hostile_run(hostile, tmp_path_factory, invoice_schema):
    folder, _ = hostile
    out = tmp_path_factory.mktemp("hostile_out")
    started = time.monotonic()
    result = extract([folder], invoice_schema, {"detect": {"enabled": False}}, out_dir=out)
    return result, out, time.monotonic() - started


def _by_name(result) -> dict[str, DocumentResult]:
    return {r.source.rsplit("/", 1)[-1]: r for r in result.results}


def test_hostile_folder_every_input_accounted_for(hostile, hostile_run) -> None:
    folder, expected = hostile
    result, out, seconds = hostile_run
    assert seconds < 240, seconds  # nothing hangs (FIFO, /dev/zero) or runs away
    records = pd.read_parquet(out / "invoice.parquet")
    errors = pd.read_parquet(out / "errors.parquet")
    pd.read_csv(out / "invoice.csv")  # the CSV is writable, names escaped
    names = {s.rsplit("/", 1)[-1] for s in records["source"]}
    assert names == set(expected)  # every input is a row, by source
    by = _by_name(result)
    for name, want in expected.items():
        r = by[name]
        kind, _, detail = want.partition(":")
        failed_sources = set(errors["source"])
        if kind == "ok":
            assert r.status == DocStatus.SUCCESS or r.record.get("invoice_number"), r.errors
            assert r.record.get("invoice_number") == detail, (name, r.record, r.errors)
        elif kind == "partial":
            assert r.status == DocStatus.PARTIAL, (name, r.errors)
            assert r.record.get("invoice_number") == detail, (name, r.record)
            assert r.source in failed_sources
        elif kind == "error":
            assert r.status == DocStatus.FAILURE, (name, r.status)
            messages = " ".join(e.message for e in r.errors)
            assert detail in messages, (name, messages)
            assert name in messages  # the message names the file
            assert r.source in failed_sources
        elif kind == "partial-or-ok":
            assert r.status != DocStatus.FAILURE, (name, r.errors)


def test_bad_frame_reported_good_frames_kept(hostile_run) -> None:
    r = _by_name(hostile_run[0])["frames.tiff"]
    assert r.pages == 2  # frames 1 and 3
    (bad,) = [e for e in r.errors if "page 2" in e.message]
    assert "frames.tiff" in bad.message and "truncated" in bad.message


def test_undecodable_name_kept_as_escaped_text(hostile, hostile_run) -> None:
    folder, _ = hostile
    r = _by_name(hostile_run[0])["inv\\xff.pdf"]
    assert r.source == printable_path(os.fsdecode(os.fsencode(folder) + b"/" + NON_UTF8))
    assert r.source.endswith("inv\\xff.pdf")
    records = pd.read_csv(hostile_run[1] / "invoice.csv")
    assert records["source"].str.endswith("inv\\xff.pdf").any()


def test_blank_pages_are_cheap(hostile_run) -> None:
    by = _by_name(hostile_run[0])
    for name in ("strip.png", "ribbon.pdf"):
        assert by[name].stats["ocr_s"] < 1.0, (name, by[name].stats)


def _limit_memory() -> None:  # runs in the child before exec
    limit = 3 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.slow
def test_cli_on_hostile_folder_bounded_memory(hostile, tmp_path, invoice_schema) -> None:
    folder, expected = hostile
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "docvlm", "extract", str(folder), "--schema", str(invoice_schema),
         "--out", str(tmp_path), "-q"],
        capture_output=True, text=True, timeout=600, preexec_fn=_limit_memory,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    seconds = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"hostile folder CLI: {seconds:.1f} s, peak RSS of children {peak_mb:.0f} MB")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # not killed, not a crash
    records = pd.read_csv(tmp_path / "invoice.csv")
    assert len(records) == len(expected)
    ok = records.set_index(records["source"].str.rsplit("/", n=1).str[-1])
    assert ok.loc["ok.pdf", "invoice_number"] == "TH-2019-0311"


# -- pieces, one by one --------------------------------------------------------------------


def test_pixel_bomb_refused_before_decoding(tmp_path) -> None:
    src = inspect_file(pixel_bomb_png(tmp_path / "bomb.png"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match=r"page 1: image is 30000×30000 = 900,000,000 pixels"):
        list(ImageRenderer(RenderOptions()).iter_pages(src))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, grown_mb


def test_big_jpeg_is_draft_decoded(tmp_path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), "white").save(path, quality=50)
    renderer = ImageRenderer(RenderOptions(max_pixels=2_000_000))
    (page,) = list(renderer.iter_pages(inspect_file(path)))
    assert page.image.width * page.image.height <= 2_000_000
    assert page.image.size[0] / page.image.size[1] == pytest.approx(8000 / 6000, rel=0.01)


def test_giant_pdf_page_rendered_within_max_pixels(tmp_path) -> None:
    import pymupdf

    from docvlm.render.pdf import PyMuPdfRenderer

    doc = pymupdf.open()
    doc.new_page(width=14400, height=14400)  # 200 inches square: 900 MP at 150 dpi
    doc.save(tmp_path / "poster.pdf")
    (page,) = PyMuPdfRenderer(RenderOptions(max_pixels=4_000_000)).iter_pages(
        inspect_file(tmp_path / "poster.pdf")
    )
    assert page.image.width * page.image.height <= 4_000_000
    assert page.image.width > 1900


def test_strip_detected_in_tiles_with_bounded_memory() -> None:
    from docvlm.datamodel import OcrOptions
    from docvlm.engines.ocr import get_ocr_engine

    img = Image.new("RGB", (20000, 60), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=32)
    for x in (100, 9000, 19000):
        draw.text((x, 12), f"TOTAL {x}", fill="black", font=font)
    engine = get_ocr_engine(OcrOptions())
    seen: list[tuple[int, ...]] = []
    engine._load()
    det = engine._engine.text_det
    real = det.session

    def spy(blob):  # the detector's input tensor: (1, 3, h, w)
        seen.append(blob.shape)
        return real(blob)

    det.session = spy
    try:
        words = engine.recognize(np.asarray(img))
    finally:
        det.session = real
    texts = " ".join(w.text for w in words)
    for x in (100, 9000, 19000):
        assert str(x) in texts, texts
    assert all(h * w <= engine.max_det_pixels for _, _, h, w in seen), seen
    assert len(seen) > 1  # tiled along the strip


@pytest.mark.parametrize("mode", ["F", "I;16", "I", "CMYK", "P", "LA", "1"])
def test_odd_pixel_formats_become_visible_rgb(mode: str) -> None:
    base = np.full((60, 200), 230, dtype=np.uint8)
    base[20:40, 20:180] = 20  # a dark bar
    if mode == "F":
        img = Image.fromarray(base.astype(np.float32) / 255.0)  # 0..1 floats
    elif mode == "I;16":
        img = Image.fromarray(base.astype(np.uint16) * 16)  # 12-bit data
    elif mode == "I":
        img = Image.fromarray(base.astype(np.int32) * 1000)
    else:
        img = Image.fromarray(base).convert(mode)
    assert img.mode == mode
    rgb = np.asarray(_to_rgb(img))
    assert rgb.dtype == np.uint8 and rgb.shape == (60, 200, 3)
    assert rgb[30, 100].mean() < 100 < rgb[5, 5].mean(), (mode, rgb[30, 100], rgb[5, 5])


def test_fifo_and_devices_are_never_opened(tmp_path) -> None:
    os.mkfifo(tmp_path / "fifo.pdf")
    os.symlink("/dev/zero", tmp_path / "zero.pdf")
    started = time.monotonic()
    docs = {Path(d.path).name: d for d in discover([tmp_path, tmp_path / "fifo.pdf"])}
    assert time.monotonic() - started < 5
    assert "FIFO" in docs["fifo.pdf"].error and "not opened" in docs["fifo.pdf"].error
    assert "character device" in docs["zero.pdf"].error


def test_symlinked_and_hidden_folders_are_reported(tmp_path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    make_text_pdf(real / "a.pdf", ["x"])
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(real, top / "linked")
    (top / ".git").mkdir()
    (top / ".git" / "HEAD").write_text("ref")
    docs = {Path(d.path).name: d for d in discover([top])}
    assert "symlink to a folder" in docs["linked"].error
    assert "hidden folder" in docs[".git"].error
    assert "HEAD" not in docs
    # named explicitly, the symlinked folder is read
    assert [Path(d.path).name for d in discover([top / "linked"])] == ["a.pdf"]


@pytest.mark.parametrize(
    ("props", "name", "words"),
    [
        ({"a/b": {"type": "string"}}, "x", "path separator"),
        ({"..": {"type": "string"}}, "x", "'..'"),
        ({"a\x00b": {"type": "string"}}, "x", "control character"),
        ({"status": {"type": "string"}}, "x", "collides"),
        ({"doc_id": {"type": "string"}}, "x", "collides"),
        (
            {"seller.name": {"type": "string"},
             "seller": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "x", "both be column",
        ),
        ({"items": {"type": "array", "items": {"type": "object",
          "properties": {"item_index": {"type": "integer"}}}}}, "x", "collides"),
        ({"a": {"type": "string"}}, "errors", "errors table"),
        ({"a": {"type": "string"}}, "provenance", "provenance table"),
        ({"a": {"type": "string"}}, "../evil", "path separator"),
    ],
)  # fmt: skip
def test_unsafe_schema_names_refused_at_load(props, name, words) -> None:
    with pytest.raises(SchemaError, match=words):
        schema_from_dict({"type": "object", "properties": props}, name)


def test_errors_schema_file_refused(tmp_path) -> None:
    path = tmp_path / "errors.schema.json"
    path.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    with pytest.raises(SchemaError, match="errors table"):
        load_schema(path)


def test_csv_cells_neutralised_parquet_raw(tmp_path) -> None:
    spec = schema_from_dict(
        {"type": "object", "properties": {"note": {"type": "string"}, "n": {"type": "number"}}},
        "t",
    )
    evil = ['=HYPERLINK("http://x")', "+1+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"]
    results = [
        DocumentResult(doc_id=f"d{i}", source=f"=src{i}", schema_name="t",
                       status=DocStatus.SUCCESS, record={"note": v, "n": -1.5})
        for i, v in enumerate(evil)
    ]  # fmt: skip
    write_tables(build_tables(results, spec), tmp_path)
    csv = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert list(csv["note"]) == ["'" + v for v in evil[:-1]] + ["plain"]
    assert all(s.startswith("'=") for s in csv["source"])
    assert list(csv["n"]) == [-1.5] * len(evil)  # numbers are not text: untouched
    raw = pd.read_parquet(tmp_path / "t.parquet")
    assert list(raw["note"]) == evil
    assert csv_cell("ok") == "ok" and csv_cell(3) == 3


def test_watcher_reads_the_bytes_it_hashed(tmp_path) -> None:
    """A file changing between hashing and reading: the watcher parses the hashed bytes."""
    import hashlib

    from test_watch import make_config, pdf_bytes

    from docvlm.ops.watch import FolderWatcher
    from docvlm.render import get_renderer

    cfg = make_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    f = inbox / "a.pdf"
    seen: dict = {}

    def hash_change_read(paths: list[str]) -> None:
        (doc,) = discover(paths)
        f.write_bytes(pdf_bytes(2))  # the writer was not done
        (page,) = get_renderer(doc).iter_pages(doc)
        seen.update(doc=doc, text=" ".join(w.text for w in page.page.words))

    # without the watcher's snapshot: the hash names one state, the pages come from another
    first = pdf_bytes(1)
    f.write_bytes(first)
    hash_change_read([str(f)])
    assert seen["doc"].doc_id == hashlib.sha256(first).hexdigest()
    assert "INV-00002" in seen["text"]

    f.write_bytes(first)
    FolderWatcher(cfg, process=hash_change_read)._process_batch([str(f)])
    doc = seen["doc"]
    assert doc.doc_id == hashlib.sha256(first).hexdigest()
    assert "INV-00001" in seen["text"]  # the bytes that were hashed
    assert doc.snapshot and not os.path.exists(os.path.dirname(doc.snapshot))  # cleaned up
    assert doc.path == str(f)  # tables still name the real file


def test_kept_bytes_are_the_hashed_bytes(tmp_path) -> None:
    import hashlib

    from docvlm.render import get_renderer

    path = tmp_path / "x.pdf"
    make_text_pdf(path, ["Invoice No.: KEEP-1", "Total: 3.00"])
    original = path.read_bytes()
    doc = inspect_file(path, keep_bytes_below=1 << 20)
    make_text_pdf(path, ["Invoice No.: OTHER-2", "Total: 4.00"])
    assert doc.content() == original and doc.doc_id == hashlib.sha256(original).hexdigest()
    (page,) = get_renderer(doc).iter_pages(doc)
    assert "KEEP-1" in " ".join(w.text for w in page.page.words)


def _tiff_without_width(path: Path) -> Path:
    """A TIFF whose only IFD lacks ImageWidth (tag 256): Pillow raises a raw KeyError."""
    buf = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buf, format="TIFF")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 256:
            data[entry : entry + 2] = struct.pack("<H", 65000)  # an unknown private tag
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: _tiff_without_width(p / "nowidth.tiff"), "structure is damaged"),
        (
            lambda p: (
                Image.new("RGB", (300, 300), "white").save(p / "cut.png"),
                (p / "cut.png").write_bytes((p / "cut.png").read_bytes()[:120]),
                p / "cut.png",
            )[-1],
            "damaged",
        ),
        (lambda p: (p / "head.tiff").write_bytes(b"II*\x00" + b"\x00" * 40) and p / "head.tiff",
         "unreadable image"),
    ],
)  # fmt: skip
def test_decoder_failures_are_input_errors(tmp_path, make, words) -> None:
    path = make(tmp_path)
    src = inspect_file(path)
    with pytest.raises(InputError) as info:
        list(ImageRenderer(RenderOptions()).iter_pages(src))
    message = str(info.value)
    assert path.name in message and words in message, message
