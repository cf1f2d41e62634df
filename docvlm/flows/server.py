"""A Prefect API server for the runs of one docvlm process, that dies with that process.

Prefect's own on-demand server outlives a parent that is killed with ``kill -9`` (each kill
left one uvicorn process behind). This one is a child process that asks the kernel for a
signal when its parent dies (Linux ``PR_SET_PDEATHSIG``) and, everywhere, watches its
parent's pid, so a killed run never leaves a server behind.

Run as ``python -m docvlm.flows.server PORT``; :func:`start` does that and waits for health.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from docvlm.procs import die_with_parent

logger = logging.getLogger(__name__)

_started: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(timeout_s: float = 120.0) -> str:
    """Start the server (once per process) and return its API URL.

    Raises:
        DocvlmError: it did not answer its health check in ``timeout_s``.
    """
    if "url" in _started:
        return _started["url"]
    import httpx
    from prefect.settings import PREFECT_HOME

    from docvlm.errors import DocvlmError

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path = Path(PREFECT_HOME.value()) / "docvlm-run-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    # the settings Prefect gives its own on-demand server: no UI, ephemeral, no telemetry
    env.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "docvlm.flows.server", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    atexit.register(_stop, proc)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise DocvlmError(f"the Prefect server for this run exited; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        if time.monotonic() > deadline:
            _stop(proc)
            raise DocvlmError(f"the Prefect server for this run did not start; see {log_path}")
        time.sleep(0.25)
    logger.info("event=prefect_server_started api=%s pid=%d", url, proc.pid)
    _started["url"] = url
    return url


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    """Serve the Prefect API on 127.0.0.1:PORT until the parent process goes away."""
    die_with_parent()
    import uvicorn

    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
