"""What a run passes between its steps: small pydantic models (they travel between
Prefect tasks and Dask workers).
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from docvlm.datamodel import DocumentResult, SourceDoc

logger = logging.getLogger(__name__)


class _Small(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunPlan(_Small):
    """What a run will do: passed between tasks, so only ids and paths."""

    run_id: str
    pipeline: str
    table: str = Field(description="the record table (schema name)")
    config_hash: str
    run_date: str
    started_at: str
    discovered: int = 0
    duplicates: int = Field(default=0, description="same bytes under another name (skipped)")
    skipped: int = Field(default=0, description="already done or parked for this configuration")
    todo: list[SourceDoc] = Field(default_factory=list)
    recovered: dict[str, int] = Field(default_factory=dict)

    def batches(self, size: int) -> list[list[SourceDoc]]:
        """The documents to do, in batches of ``size``."""
        return [self.todo[i : i + size] for i in range(0, len(self.todo), size)]


class Outcome(_Small):
    """A document's final result in this run and how it got there."""

    result: DocumentResult
    attempts: int = 1
    parked: bool = False


class BatchReport(_Small):
    """What one committed batch added."""

    part_id: str
    files: list[str]
    documents: int
    status: dict[str, int] = Field(default_factory=dict)
    parked: list[str] = Field(default_factory=list, description="sources parked in this batch")
    filled: dict[str, int] = Field(default_factory=dict, description="non-empty values per field")
    vlm_calls: int = 0
    seconds: float = 0.0


class RunSummary(_Small):
    """The run summary (written to ``OUT/run_summary.json`` and ``OUT/_runs/<run_id>.json``)."""

    run_id: str
    pipeline: str
    table: str
    config_hash: str
    out_dir: str
    started_at: str
    finished_at: str
    seconds: float
    discovered: int
    duplicates: int
    skipped: int
    processed: int
    ok: int = Field(description="documents written with status success or partial")
    success: int
    partial: int
    failed: int = Field(description="documents parked after every retry failed")
    parked_sources: list[str] = Field(default_factory=list)
    vlm_calls: int
    fill_rate: dict[str, float] = Field(description="share of processed documents per field")
    parts: list[str]
    recovered: dict[str, int]
    totals: dict[str, int] = Field(description="ledger totals for the table after the run")
    schema_path: str | None = Field(default=None, description="the JSON Schema of the run")
    render_dpi: int | None = Field(default=None, description="page images (and bbox) DPI")
    render_backend: str | None = None
    review: str | None = Field(default=None, description="the review page, when one exists")
