"""Prefect orchestration, thin: flows and deployments that call the library.

``docvlm.flows.pipeline`` holds the flows (the deployment entrypoints) and
:func:`~docvlm.flows.pipeline.run_pipeline`; ``docvlm.flows.serve`` registers deployments and
serves them. The library (``docvlm.*`` outside this package) never imports from here.
"""

import os as _os

# Offline by default: Prefect's embedded server would otherwise try to send telemetry.
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
