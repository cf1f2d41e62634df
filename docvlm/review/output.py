"""Reading an output folder back for review: ``extract --out`` flat files or a ``run`` dataset.

Both layouts hold the same tables (the output contract): the record table ``<schema>``, one
child table per array ``<schema>__<array>``, ``provenance`` and ``errors``. A flat folder has
``OUT/<table>.parquet``; a run dataset has ``OUT/<table>/run_date=.../part-*.parquet``
(consolidated with :func:`docvlm.ops.dataset.read_table`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

#: Tables of the contract that are not record tables.
SIDE_TABLES = frozenset({"provenance", "errors", "corrections"})


@dataclass
class OutputTables:
    """One output folder's tables, whichever layout wrote them."""

    out_dir: Path
    layout: str  # "extract" (flat files) or "run" (partitioned dataset)
    table: str  # the record table's name = the schema name
    records: pd.DataFrame
    provenance: pd.DataFrame
    errors: pd.DataFrame
    children: dict[str, pd.DataFrame] = field(default_factory=dict)  # array path -> items
    summary: dict[str, Any] | None = None  # run_summary.json, when there is one


def _is_dataset(out: Path) -> bool:
    return (out / "_ledger.sqlite").exists() or any(out.glob("*/run_date=*"))


def _flat_names(out: Path) -> list[str]:
    return sorted(p.stem for p in out.glob("*.parquet") if not p.name.startswith("."))


def record_table_name(names: list[str], wanted: str | None, out: Path) -> str:
    """The record table among ``names`` (``wanted`` when given; else the only candidate)."""
    candidates = [n for n in names if n not in SIDE_TABLES and "__" not in n]
    if wanted:
        if wanted not in candidates:
            raise ConfigError(
                f"{out}: no record table {wanted!r} (found: {', '.join(candidates) or 'none'})"
            )
        return wanted
    if len(candidates) != 1:
        raise ConfigError(
            f"{out}: cannot tell the record table ({', '.join(candidates) or 'none found'}); "
            "pass --schema FILE"
        )
    return candidates[0]


def _dedupe(df: pd.DataFrame, keys: list[str] | None) -> pd.DataFrame:
    """Keep the newest run's rows of each document (a reprocessed document's old rows may
    still sit in an older partition until the ledger compacts them), once per ``keys``."""
    if df.empty or "run_date" not in df.columns or "doc_id" not in df.columns:
        return df
    newest = df.groupby("doc_id")["run_date"].transform("max")
    df = df[df["run_date"] == newest]
    return df.drop_duplicates(keys, keep="last") if keys else df


def load_output(out_dir: str | Path, table: str | None = None) -> OutputTables:
    """Read the record, child, provenance and errors tables of an output folder.

    Args:
        out_dir: an ``extract --out`` folder or a ``run`` output folder.
        table: the record table (schema name); found when the folder holds only one.

    Raises:
        ConfigError: no outputs in the folder, or the record table cannot be told.
    """
    import pandas as pd

    out = Path(out_dir)
    if not out.is_dir():
        raise ConfigError(f"output folder not found: {out}")
    summary = None
    summary_path = out / "run_summary.json"
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("%s: unreadable run summary (%s)", summary_path, exc)
    if _is_dataset(out):
        from docvlm.ops.dataset import read_table, table_names

        names = table_names(out)
        name = record_table_name(names, table or (summary or {}).get("table"), out)

        def read(t: str) -> pd.DataFrame:
            return read_table(out, t) if t in names else pd.DataFrame()

        layout = "run"
    else:
        names = _flat_names(out)
        if not names:
            raise ConfigError(f"{out}: no output tables here (expected <schema>.parquet)")
        name = record_table_name(names, table, out)

        def read(t: str) -> pd.DataFrame:
            path = out / f"{t}.parquet"
            return pd.read_parquet(path) if path.exists() else pd.DataFrame()

        layout = "extract"
    records = _dedupe(read(name), ["doc_id"])
    provenance = _dedupe(read("provenance"), None)  # every row is a box
    errors = _dedupe(read("errors"), ["doc_id", "stage", "error_type", "message", "path"])
    children = {}
    prefix = f"{name}__"
    for child in (n for n in names if n.startswith(prefix)):
        children[child[len(prefix) :]] = _dedupe(read(child), ["doc_id", "item_index"])
    return OutputTables(out, layout, name, records, provenance, errors, children, summary)


def plain(value: Any) -> Any:
    """A table cell as a plain Python value (``None`` for every kind of missing)."""
    if value is None:
        return None
    try:
        import pandas as pd

        if not isinstance(value, (list, tuple, dict)) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        try:
            return value.item()
        except (AttributeError, ValueError):
            return value
    return value


def document_values(tables: OutputTables, doc_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """Field path → value of one document: record columns (``seller.name``) and the items of
    each child table (``line_items/0/amount``)."""
    skip = {"doc_id", "source", "status", "run_date"}
    values = {k: plain(v) for k, v in row.items() if k not in skip}
    for arr, child in tables.children.items():
        if child.empty:
            continue
        items = child[child["doc_id"] == doc_id].sort_values("item_index")
        for item in items.to_dict("records"):
            index = int(item["item_index"])
            for k, v in item.items():
                if k in ("doc_id", "item_index", "run_date"):
                    continue
                values[f"{arr}/{index}/{k}"] = plain(v)
    return values
