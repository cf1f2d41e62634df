"""Pytest plugin: one Prefect test harness (temporary server + database) per test session.

Use it from a test module with ``pytest_plugins = ["flows.testing"]`` and the
``prefect_harness`` fixture (or move the fixture into the root ``conftest.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """Run the session's flows against a throwaway Prefect server; yields its API URL.

    The URL is also exported as ``PREFECT_API_URL`` so subprocesses (the ``docvlm`` CLI,
    Dask workers) report to the same server instead of starting their own.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    saved = os.environ.get("PREFECT_API_URL")
    with prefect_test_harness(server_startup_timeout=120):
        url = str(PREFECT_API_URL.value())
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved
