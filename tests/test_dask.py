"""Scale-out: a run on a local Dask cluster of 2 workers yields the sequential run's tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from docvlm.flows.pipeline import run_pipeline
from docvlm.ops.dataset import read_table
from docvlm.ops.definition import pipeline_from_dict

ROOT = Path(__file__).resolve().parents[1]
INVOICES = ROOT / "sample_docs" / "invoices"
TABLES = ("invoice", "invoice__line_items", "provenance", "errors")


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    df = df.drop(columns=["run_date"]).astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.mark.slow
def test_dask_run_with_two_workers_matches_sequential_run(
    tmp_path: Path, prefect_harness: str
) -> None:
    pytest.importorskip("prefect_dask")
    docs = sorted(INVOICES.glob("inv_*_0[12].pdf"))
    if len(docs) < 4:
        pytest.skip("sample invoices missing")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for d in docs:
        shutil.copy(d, inbox / d.name)
    # fails in the worker after its retries: the failure travels back and is parked
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a PDF")

    def config(out: str, workers: int):
        return pipeline_from_dict(
            {
                "name": f"dask-{workers}",
                "source": str(inbox),
                "schema": str(ROOT / "schemas" / "invoice.schema.json"),
                "output": {"dir": out, "formats": ["parquet"]},
                "run": {"batch_size": 4, "workers": workers, "retries": 1, "retry_delay_s": 0},
            },
            tmp_path,
        )

    seq = run_pipeline(config("seq", 1), orchestrator="prefect")
    par = run_pipeline(config("dask", 2), orchestrator="prefect")
    assert seq.processed == par.processed == len(docs) + 1
    assert (seq.ok, seq.failed) == (par.ok, par.failed) == (len(docs), 1)
    assert seq.fill_rate == par.fill_rate
    for name in TABLES:
        a = _canonical(read_table(tmp_path / "seq", name))
        b = _canonical(read_table(tmp_path / "dask", name))
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)
    assert len(read_table(tmp_path / "dask", "invoice")) == len(docs) + 1
    assert "Parked" in set(read_table(tmp_path / "dask", "errors")["error_type"])
