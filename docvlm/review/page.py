"""The review page: page images with a box per extracted value, the field table beside them,
a queue of the documents and values to look at first, filters; one self-contained HTML file.

``OUT/review/index.html`` holds its CSS, JavaScript and data inline (no server, no CDN) and
refers to the page images in ``OUT/review/pages/``, rendered with the renderer and DPI of the
run, so the provenance boxes (page-image pixels at that DPI) fall where the text is.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from docvlm.datamodel import RenderOptions
from docvlm.review.output import OutputTables, document_values, load_output, plain
from docvlm.schema import SchemaSpec

logger = logging.getLogger(__name__)

REVIEW_DIR = "review"
PAGES_DIR = "pages"


@dataclass
class ReviewOptions:
    """How the review page is built."""

    dpi: int = RenderOptions().dpi
    render_backend: str = "pymupdf"
    max_pages: int = 30  # pages rendered per document besides those with boxes
    schema: SchemaSpec | None = None


@dataclass
class ReviewData:
    """Everything the page shows, as plain JSON-ready data (see :func:`collect`)."""

    out_dir: Path
    table: str
    layout: str
    options: ReviewOptions
    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def review_dir(self) -> Path:
        return self.out_dir / REVIEW_DIR

    def document(self, doc_id: str) -> dict[str, Any] | None:
        return next((d for d in self.documents if d["doc_id"] == doc_id), None)

    def payload(self, mode: str, corrections: dict[tuple[str, str], dict[str, Any]]) -> dict:
        """The page's data: documents with each field's latest correction applied."""
        spec = self.options.schema
        docs = []
        for d in self.documents:
            rows = []
            for r in d["rows"]:
                c = corrections.get((d["doc_id"], r["field"]))
                rows.append({**r, "correction": c} if c else r)
            docs.append({**d, "rows": rows})
        return {
            "version": 1,
            "mode": mode,
            "out_dir": str(self.out_dir),
            "layout": self.layout,
            "table": self.table,
            "schema_path": spec.path if spec else None,
            "dpi": self.options.dpi,
            "render_backend": self.options.render_backend,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "fields": _field_list(spec, self.documents),
            "warnings": self.warnings,
            "documents": docs,
        }


def field_group(path: str) -> str:
    """``line_items/3/amount`` → ``line_items/*/amount`` (what the field filter offers)."""
    return re.sub(r"/\d+/", "/*/", path)


def pointer_field(pointer: str | None) -> str | None:
    """JSON pointer of an error → field path: ``/seller/name`` → ``seller.name``,
    ``/line_items/3/amount`` → ``line_items/3/amount``; ``None`` for the whole record."""
    if not pointer or pointer == "/":
        return None
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    head: list[str] = []
    while parts and not parts[0].isdigit():
        head.append(parts.pop(0))
    return "/".join([".".join(head), *parts]) if parts else ".".join(head)


def _field_list(spec: SchemaSpec | None, documents: list[dict[str, Any]]) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    if spec is not None:
        for f in spec.fields:
            out.append({"group": f.path, "type": f.type, "format": f.format, "title": f.title})
            seen.add(f.path)
        for arr in spec.arrays:
            for f in arr.items:
                group = f"{arr.path}/*/{f.name}"
                out.append({"group": group, "type": f.type, "format": f.format, "title": f.title})
                seen.add(group)
    for d in documents:
        for r in d["rows"]:
            if r["group"] not in seen:
                seen.add(r["group"])
                out.append({"group": r["group"], "type": None, "format": None, "title": None})
    return out


def _display(value: Any) -> str | None:
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _bbox(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        box = [float(x) for x in value]
    except (TypeError, ValueError):
        return None
    return box if len(box) == 4 else None


def _row_order(spec: SchemaSpec | None) -> dict[str, int]:
    if spec is None:
        return {}
    order = {f.path: i for i, f in enumerate(spec.fields)}
    for arr in spec.arrays:
        for f in arr.items:
            order[f"{arr.path}/*/{f.name}"] = len(order)
    return order


def _sort_key(path: str, order: dict[str, int], seen: int) -> tuple[int, int, int]:
    """Schema order; the items of an array row by row (all of item 0, then item 1, ...)."""
    index = re.search(r"/(\d+)/", path)
    rank = order.get(field_group(path), 10_000 + seen)
    if index is None:
        return (rank, -1, 0)
    first = min(
        (v for k, v in order.items() if k.startswith(path.split("/")[0] + "/")), default=rank
    )
    return (first, int(index.group(1)), rank)


def _row(path: str, value: Any) -> dict[str, Any]:
    value = plain(value)
    raw = value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
    return {"field": path, "value": _display(value), "raw": raw, "boxes": []}


def _rows(
    tables: OutputTables, doc_id: str, record: dict[str, Any], spec: SchemaSpec | None
) -> list[dict[str, Any]]:
    """One row per field of a document: its value, its provenance (boxes), its errors."""
    values = document_values(tables, doc_id, record)
    prov = tables.provenance
    prov = prov[prov["doc_id"] == doc_id] if not prov.empty else prov
    rows: dict[str, dict[str, Any]] = {}
    columns = [
        c for c in tables.records.columns if c not in ("doc_id", "source", "status", "run_date")
    ]
    for path in spec.columns if spec else columns:
        rows[path] = _row(path, values.get(path))
    for path, value in values.items():
        if path not in rows:
            rows[path] = _row(path, value)
    for p in prov.to_dict("records") if not prov.empty else []:
        path = str(p["field"])
        row = rows.setdefault(path, _row(path, plain(p["value"])))
        row["boxes"].append(
            {
                "page": plain(p.get("page")),
                "bbox": _bbox(p.get("bbox")),
                "value": _display(p.get("value")),
                "region_class": plain(p.get("region_class")),
                "reader": plain(p.get("reader")),
                "confidence": plain(p.get("confidence")),
                "source_text": plain(p.get("source_text")),
            }
        )
    order = _row_order(spec)
    out = []
    for i, row in enumerate(rows.values()):
        confs = [b["confidence"] for b in row["boxes"] if b["confidence"] is not None]
        readers = sorted({b["reader"] for b in row["boxes"] if b["reader"]})
        group = field_group(row["field"])
        row.update(
            group=group,
            confidence=min(confs) if confs else None,
            reader=", ".join(readers) or None,
            source_text=next((b["source_text"] for b in row["boxes"] if b["source_text"]), None),
            errors=[],
            order=_sort_key(row["field"], order, i),
        )
        out.append(row)
    out.sort(key=lambda r: r["order"])
    for r in out:
        r.pop("order")
    return out


def _page_images(
    source: str, doc_id: str, pages_wanted: set[int], options: ReviewOptions, pages_dir: Path
) -> tuple[list[dict[str, Any]], str | None]:
    """Render the document's pages to PNG files (kept when already there); returns the
    pages (file, size) and a note when the pages cannot be shown as they were read."""
    from docvlm.errors import DocvlmError
    from docvlm.render import get_renderer
    from docvlm.sources import inspect_file

    src = inspect_file(source)
    if src.error:
        return [], f"no page images: {src.error}"
    note = None
    if src.doc_id != doc_id:
        note = "the source file changed since it was read: boxes may not match the pages"
    try:
        renderer = get_renderer(src, RenderOptions(dpi=options.dpi, backend=options.render_backend))
        count = renderer.page_count(src)
    except DocvlmError as exc:
        return [], f"no page images: {exc}"
    numbers = sorted({n for n in range(1, min(count, options.max_pages) + 1)} | pages_wanted)
    numbers = [n for n in numbers if 1 <= n <= count]
    pages = []
    for n in numbers:
        # scans as JPEG (a PNG of scanner noise is ten times larger), rendered PDFs as PNG
        fmt = "JPEG" if src.mime.startswith("image/") else "PNG"
        ext = "jpg" if fmt == "JPEG" else "png"
        name = f"{doc_id[:20]}-{options.render_backend}-{options.dpi}dpi-p{n}.{ext}"
        path = pages_dir / name
        try:
            if path.exists():
                from PIL import Image

                with Image.open(path) as img:
                    size = img.size
            else:
                image = renderer.render_page(src, n, options.dpi)
                size = image.size
                pages_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{name}.tmp")
                image.save(tmp, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
                tmp.replace(path)
        except (DocvlmError, OSError, ValueError) as exc:
            note = f"page {n} could not be rendered: {exc}"
            continue
        pages.append({"number": n, "image": f"{PAGES_DIR}/{name}", "width": size[0],
                      "height": size[1]})  # fmt: skip
    if count > len(pages) and not note:
        note = (
            f"{count} pages; {len(pages)} shown (the pages with values, up to {options.max_pages})"
        )
    return pages, note


def collect(
    out_dir: str | Path, options: ReviewOptions | None = None, render: bool = True
) -> ReviewData:
    """Read an output folder and (``render``) write the page images of every document.

    Documents are ordered as the review queue: failures and documents with errors first,
    then by their lowest confidence.
    """
    options = options or ReviewOptions()
    spec = options.schema
    tables = load_output(out_dir, spec.name if spec else None)
    data = ReviewData(Path(out_dir), tables.table, tables.layout, options)
    pages_dir = data.review_dir / PAGES_DIR
    errors = tables.errors
    used: set[str] = set()
    for record in tables.records.to_dict("records"):
        doc_id = str(record["doc_id"])
        source = str(record.get("source") or "")
        rows = _rows(tables, doc_id, record, spec)
        by_field = {r["field"]: r for r in rows}
        doc_errors = []
        for e in (errors[errors["doc_id"] == doc_id] if not errors.empty else errors).to_dict(
            "records"
        ):
            target = pointer_field(plain(e.get("path")))
            item = {k: plain(e.get(k)) for k in ("stage", "error_type", "message", "path")}
            item["field"] = target
            doc_errors.append(item)
            if target in by_field:
                by_field[target]["errors"].append(item["message"])
        wanted = {int(b["page"]) for r in rows for b in r["boxes"] if b["page"] is not None}
        pages, note = (
            _page_images(source, doc_id, wanted, options, pages_dir) if render else ([], None)
        )
        used.update(Path(p["image"]).name for p in pages)
        sizes = {p["number"]: (p["width"], p["height"]) for p in pages}
        outside = [
            r["field"] for r in rows for b in r["boxes"]
            if b["bbox"] and b["page"] in sizes
            and (b["bbox"][2] > sizes[b["page"]][0] * 1.02 or b["bbox"][3] > sizes[b["page"]][1] * 1.02)
        ]  # fmt: skip
        if outside:
            data.warnings.append(
                f"{Path(source).name}: {len(outside)} boxes fall outside the page images "
                f"rendered at {options.dpi} dpi: was the run made at another --dpi?"
            )
        confs = [r["confidence"] for r in rows if r["confidence"] is not None]
        data.documents.append(
            {
                "doc_id": doc_id,
                "source": source,
                "name": Path(source).name,
                "status": str(record.get("status") or ""),
                "run_date": plain(record.get("run_date")),
                "errors": doc_errors,
                "pages": pages,
                "note": note,
                "min_confidence": min(confs) if confs else None,
                "rows": rows,
            }
        )
    data.documents.sort(
        key=lambda d: (
            0 if d["status"] == "failure" else 1 if d["errors"] else 2,
            d["min_confidence"] if d["min_confidence"] is not None else 0.0,
            d["name"],
        )
    )
    if render and pages_dir.is_dir():
        for stale in pages_dir.iterdir():
            if stale.suffix in (".png", ".jpg") and stale.name not in used:
                stale.unlink(missing_ok=True)
    return data


def _asset(name: str) -> str:
    return resources.files("docvlm.review").joinpath("static", name).read_text(encoding="utf-8")


def _script_json(payload: dict[str, Any]) -> str:
    # inside <script>: no "</script>" or "<!--" can come out of the data
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(data: ReviewData, mode: str, corrections: dict | None = None) -> str:
    """The page as one HTML string (``mode``: ``static`` or ``serve``)."""
    import html

    payload = data.payload(mode, corrections or {})
    return (
        _asset("review.html")
        .replace("{{TITLE}}", html.escape(f"docvlm review · {data.table} · {data.out_dir.name}"))
        .replace("{{STYLE}}", _asset("review.css"))
        .replace("{{SCRIPT}}", _asset("review.js"))
        .replace("{{DATA}}", _script_json(payload))
    )


def write_page(data: ReviewData, corrections: dict | None = None) -> Path:
    """Write ``OUT/review/index.html`` (atomically) and return its path."""
    from docvlm.ops.dataset import atomic_text

    path = data.review_dir / "index.html"
    atomic_text(path, render_html(data, "static", corrections))
    return path
