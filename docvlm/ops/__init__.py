"""Unattended operation: plan, process, commit, the run dataset, the ledger, the lock, watch.

The steps of a run (:mod:`~docvlm.ops.plan`, :mod:`~docvlm.ops.process`,
:mod:`~docvlm.ops.commit`) are plain functions over small pydantic models
(:mod:`~docvlm.ops.models`); an orchestrator calls them — the Prefect flows
(:mod:`docvlm.flows`) or the plain loop :func:`docvlm.ops.runner.run_local`. Nothing here
imports the flows or runs Prefect (cron syntax is checked with its bundled croniter).

>>> from docvlm.ops import read_table
>>> read_table("out/invoices", "invoice")  # one table over every committed part
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("read_table", "table_names"):
        from docvlm.ops import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'docvlm.ops' has no attribute {name!r}")


__all__ = ["read_table", "table_names"]
