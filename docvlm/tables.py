"""Results to pandas DataFrames, and DataFrames to Parquet/CSV files written atomically."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import DocumentResult
from docvlm.schema import SchemaSpec

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

PROVENANCE_COLUMNS = ["doc_id", "source", "field", "value", "page", "bbox", "region_class",
                      "reader", "confidence", "source_text", "xpath", "suspicious"]  # fmt: skip
ERROR_COLUMNS = ["doc_id", "source", "stage", "error_type", "message", "path"]


def _get(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, list):
        return "; ".join(str(x) for x in node)
    return node


def _dtype(kind: str) -> str:
    return {"number": "Float64", "integer": "Int64", "boolean": "boolean"}.get(kind, "string")


def build_tables(results: Sequence[DocumentResult], schema: SchemaSpec) -> dict[str, pd.DataFrame]:
    """The output tables of the contract, keyed by table name (file name without suffix)."""
    import pandas as pd

    rows = []
    for r in results:
        row = {"doc_id": r.doc_id, "source": printable(r.source), "status": r.status.value}
        for spec in schema.fields:
            row[spec.path] = _get(r.record, spec.path)
        rows.append(row)
    columns = ["doc_id", "source", "status", *schema.columns]
    main = pd.DataFrame(rows, columns=columns)
    main = main.astype({"doc_id": "string", "source": "string", "status": "string"})
    main = main.astype({s.path: _dtype(s.type) for s in schema.fields})
    tables: dict[str, pd.DataFrame] = {schema.name: main}

    for arr in schema.arrays:
        item_rows = []
        for r in results:
            items = _array(r.record, arr.path)
            for i, item in enumerate(items):
                row = {"doc_id": r.doc_id, "item_index": i}
                for spec in arr.items:
                    row[spec.name] = item.get(spec.name) if isinstance(item, dict) else None
                item_rows.append(row)
        child = pd.DataFrame(
            item_rows, columns=["doc_id", "item_index", *(s.name for s in arr.items)]
        )
        child = child.astype({"doc_id": "string", "item_index": "Int64"})
        child = child.astype({s.name: _dtype(s.type) for s in arr.items})
        tables[f"{schema.name}__{arr.path}"] = child

    prov = [
        {
            "doc_id": r.doc_id,
            "source": printable(r.source),
            "field": v.path,
            "value": printable(v.value) if isinstance(v.value, str) else json.dumps(v.value),
            "page": v.page,
            "bbox": [round(float(x), 1) for x in v.bbox] if v.bbox else None,
            "region_class": v.region_class,
            "reader": v.reader,
            "confidence": float(v.confidence),
            "source_text": printable(v.raw),
            "xpath": v.xpath,
            "suspicious": bool(v.suspicious),
        }
        for r in results
        for v in r.values
    ]
    provenance = pd.DataFrame(prov, columns=PROVENANCE_COLUMNS)
    tables["provenance"] = provenance.astype(
        {"doc_id": "string", "source": "string", "field": "string", "value": "string",
         "page": "Int64", "region_class": "string", "reader": "string",
         "confidence": "Float64", "source_text": "string", "xpath": "string",
         "suspicious": "boolean"}
    )  # fmt: skip
    errs = [
        {"doc_id": r.doc_id, "source": printable(r.source), "stage": e.stage,
         "error_type": e.error_type, "message": printable(e.message), "path": e.path}
        for r in results
        for e in r.errors
    ]  # fmt: skip
    tables["errors"] = pd.DataFrame(errs, columns=ERROR_COLUMNS).astype("string")
    return tables


def _array(record: dict[str, Any], path: str) -> list:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return []
        node = node.get(part)
    return node if isinstance(node, list) else []


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write) -> None:
    """The one atomic writer: ``write(tmp)`` into a temporary file next to ``path``, fsync
    it, give it the umask's mode, rename it into place, fsync the folder. A kill at any
    moment leaves the old file or the new one, never half of one (leftovers are
    ``.<name>.*.tmp``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def _umask_mode(path: str | Path) -> None:
    """Give a file made by ``mkstemp`` (always 0600) the mode the umask asks for, like every
    other file docvlm writes."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` as it goes into CSV: lists as JSON text, formula-like cells
    neutralised (:func:`csv_frame`)."""
    return csv_frame(df)


def arrow_schema(df: pd.DataFrame) -> Any:
    """The Parquet schema of a contract table, fixed by its pandas dtypes (so chunks written
    one after another agree even when a chunk has a column that is all null)."""
    import pyarrow as pa

    kinds = {"string": pa.string(), "Float64": pa.float64(), "Int64": pa.int64(),
             "boolean": pa.bool_()}  # fmt: skip
    fields = []
    for col, dtype in df.dtypes.items():
        kind = kinds.get(str(dtype))
        if kind is None:
            kind = pa.list_(pa.float64()) if col == "bbox" else pa.string()
        fields.append(pa.field(str(col), kind))
    return pa.schema(fields)


#: a CSV cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value made safe for a CSV cell: text a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+1+cmd``, ``@SUM``, a leading tab or CR) gets a single quote in
    front, as OWASP advises; other values are unchanged. Parquet keeps the raw value."""
    if isinstance(value, list):
        value = json.dumps(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell through :func:`csv_cell` (the one CSV neutraliser)."""
    flat = df.copy()
    for col in flat.columns:
        kind = str(flat[col].dtype)
        if kind == "object" or kind.startswith("string"):
            flat[col] = flat[col].map(csv_cell, na_action="ignore").astype(flat[col].dtype)
    return flat


def printable(value: Any) -> Any:
    """Text with lone surrogates (undecodable file-name bytes quoted by a decoder's own
    message) escaped, so Arrow and CSV can encode it; other values unchanged."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def table_path(out_dir: str | Path, name: str, fmt: str) -> Path:
    """``out_dir/name.fmt``, refused unless it lies directly inside ``out_dir``.

    Raises:
        SchemaError: ``name`` would put the file elsewhere (separators, ``..``, NUL).
    """
    from docvlm.errors import SchemaError

    out = Path(out_dir).resolve()
    path = (out / f"{name}.{fmt}").resolve()
    if "\x00" in name or path.parent != out:
        raise SchemaError(f"table name {name!r} would write outside {out}; refused")
    return path


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write one table as Parquet or CSV (by suffix), atomically: temp name, then rename."""
    if path.suffix == ".parquet":
        atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))
    else:
        flat = csv_frame(df)
        # CRLF rows (RFC 4180): the csv writer then quotes a cell holding a bare CR, which
        # would otherwise split the row in two for most readers
        atomic_write(path, lambda tmp: flat.to_csv(tmp, index=False, lineterminator="\r\n"))
    return path


class ChunkedTables:
    """The contract's tables written chunk by chunk into temporary files, then renamed into
    place together by :meth:`commit` (memory flat in the number of documents)."""

    def __init__(self, out_dir: str | Path, formats: Iterable[str] = ("parquet", "csv")) -> None:
        self.out = Path(out_dir)
        self.formats = list(formats)
        self._files: dict[tuple[str, str], tuple[str, Any]] = {}  # (table, fmt) -> (tmp, writer)

    def _open(self, name: str, fmt: str, df: pd.DataFrame) -> Any:
        self.out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.{fmt}.", suffix=".tmp", dir=self.out)
        os.close(fd)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            writer: Any = pq.ParquetWriter(tmp, arrow_schema(df))
        else:
            writer = open(tmp, "w", encoding="utf-8", newline="")
            csv_ready(df.iloc[0:0]).to_csv(writer, index=False, lineterminator="\r\n")
        self._files[(name, fmt)] = (tmp, writer)
        return writer

    def write(self, tables: dict[str, pd.DataFrame]) -> None:
        """Append one chunk of every table (the first chunk fixes each table's schema)."""
        import pyarrow as pa

        for name, df in tables.items():
            for fmt in self.formats:
                entry = self._files.get((name, fmt))
                writer = entry[1] if entry else self._open(name, fmt, df)
                if fmt == "parquet":
                    table = pa.Table.from_pandas(df, schema=writer.schema, preserve_index=False)
                    writer.write_table(table)
                elif len(df):
                    csv_ready(df).to_csv(writer, index=False, header=False, lineterminator="\r\n")

    def commit(self) -> list[Path]:
        """Close every file, then rename each into place; returns the final paths."""
        written = []
        for (name, fmt), (tmp, writer) in self._files.items():
            writer.close()
            _umask_mode(tmp)
            final = table_path(self.out, name, fmt)
            os.replace(tmp, final)
            written.append(final)
        self._files = {}
        return written

    def abort(self) -> None:
        """Close and delete the temporary files."""
        for tmp, writer in self._files.values():
            try:
                writer.close()
            finally:
                Path(tmp).unlink(missing_ok=True)
        self._files = {}


def write_tables(
    tables: dict[str, pd.DataFrame],
    out_dir: str | Path,
    formats: Iterable[str] = ("parquet", "csv"),
) -> list[Path]:
    """Write every table in every format under ``out_dir``; returns the written paths."""
    out = Path(out_dir)
    written = []
    for name, df in tables.items():
        for fmt in formats:
            written.append(write_table(df, table_path(out, name, fmt)))
    logger.info("wrote %d files to %s", len(written), out)
    return written
