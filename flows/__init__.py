"""Prefect flows for docvlm: thin orchestration around the library (entrypoints for deployments).

``flows.pipeline`` holds the flows; ``flows.testing`` a pytest plugin with a once-per-session
``prefect_test_harness``.
"""

import os as _os

# Offline by default: Prefect's embedded server would otherwise try to send telemetry.
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
