"""The run dataset on disk: ``OUT/<table>/run_date=YYYY-MM-DD/part-<run_id>-<seq>.parquet``
read back consolidated over committed parts, and the one atomic writer (temp file, fsync,
rename, fsync of the folder) used for every file docvlm writes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.ops.ledger import Ledger

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


from docvlm.tables import atomic_write

logger = logging.getLogger(__name__)


def table_names(out_dir: str | Path) -> list[str]:
    """Tables that have committed parts in ``out_dir``."""
    out = Path(out_dir)
    ledger_path = out / "_ledger.sqlite"
    if ledger_path.exists():
        with Ledger(ledger_path) as ledger:
            names = {rel.split("/", 1)[0] for p in ledger.parts() for rel in p.files}
        return sorted(names)
    return sorted(p.name for p in out.iterdir() if p.is_dir() and any(p.glob("run_date=*")))


def part_files(out_dir: str | Path, table: str) -> list[Path]:
    """Committed part files of ``table``, oldest first (uncommitted leftovers of a crash are
    not included, so readers never see rows the ledger does not vouch for)."""
    out = Path(out_dir)
    ledger_path = out / "_ledger.sqlite"
    if not ledger_path.exists():
        return sorted((out / table).glob("run_date=*/part-*.parquet"), key=lambda p: p.name)
    with Ledger(ledger_path) as ledger:
        rels = [rel for p in ledger.parts() for rel in p.files if rel.split("/", 1)[0] == table]
    return [out / rel for rel in rels if (out / rel).exists()]


def read_table(out_dir: str | Path, table: str) -> pd.DataFrame:
    """One output table consolidated over every committed run, as a pandas DataFrame.

    Args:
        out_dir: the pipeline's output folder (``output.dir``).
        table: ``invoice``, ``invoice__line_items``, ``provenance`` or ``errors``.

    Returns:
        all rows of all committed parts, plus the ``run_date`` partition column; empty (no
        columns) when nothing was written yet.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = part_files(out_dir, table)
    if not files:
        return pd.DataFrame()
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    pieces = []
    for f in files:
        t = pq.read_table(f)
        for field in schema:
            if field.name not in t.column_names:
                t = t.append_column(field.name, pa.nulls(t.num_rows, field.type))
        t = t.select(schema.names).cast(schema)
        run_date = f.parent.name.split("=", 1)[1]
        pieces.append(t.append_column("run_date", pa.array([run_date] * t.num_rows, pa.string())))
    return pa.concat_tables(pieces).to_pandas().reset_index(drop=True)


def pa_strings(values: list[str]) -> pa.Array:
    import pyarrow as pa

    return pa.array(values, pa.string())


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """DataFrame → Arrow with stable types across parts (all-null columns get a real type)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_large_string(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        elif pa.types.is_null(field.type):
            target = pa.list_(pa.float64()) if field.name == "bbox" else pa.string()
            table = table.set_column(i, field.name, pa.nulls(table.num_rows, target))
    return table


def atomic_parquet(table: pa.Table, path: Path) -> None:
    """Write a Parquet part with :func:`docvlm.tables.atomic_write`."""
    import pyarrow.parquet as pq

    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def atomic_text(path: Path, text: str) -> None:
    """Write a text file with :func:`docvlm.tables.atomic_write`."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def kv(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())
