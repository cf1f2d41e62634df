"""``docvlm serve``: every pipeline definition as a Prefect deployment with its cron schedule.

Uses Prefect's own mechanisms: ``pipeline_flow.to_deployment(..., schedules=[Cron(...)])``
for each ``pipelines/*.yaml`` and ``prefect.serve(...)`` to run them. With ``PREFECT_API_URL``
set, the deployments are registered on that server and show up in its UI. Without it, a local
Prefect server is started as a child process (``prefect server start`` on 127.0.0.1, SQLite in
``PREFECT_HOME``, UI included) and stopped on exit: Prefect's on-demand *ephemeral* server does
not run the scheduler service, so it would never create the scheduled runs. Pipelines with
``watch.enabled`` are also watched by threads of the same process.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.ops.definition import PipelineConfig, find_pipelines, load_pipeline

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

logger = logging.getLogger(__name__)

FLOW_NAME = "docvlm-pipeline"


def load_all(targets: Sequence[str | Path]) -> list[tuple[Path, PipelineConfig]]:
    """Load every pipeline definition named by ``targets`` (folders or YAML files).

    Raises:
        ConfigError: a file is invalid, or two pipelines share a name.
    """
    from docvlm.errors import ConfigError

    loaded: list[tuple[Path, PipelineConfig]] = []
    names: dict[str, Path] = {}
    for target in targets:
        for path in find_pipelines(target):
            cfg = load_pipeline(path)
            if cfg.name in names:
                raise ConfigError(
                    f"pipeline name {cfg.name!r} is used by both {names[cfg.name]} and {path}"
                )
            names[cfg.name] = path
            loaded.append((path.resolve(), cfg))
    return loaded


def build_deployments(targets: Sequence[str | Path]) -> list[RunnerDeployment]:
    """One deployment of the ``docvlm-pipeline`` flow per pipeline definition.

    The deployment is named after the pipeline, takes the YAML path as its ``pipeline``
    parameter and carries the pipeline's cron schedule (none: runs only when triggered,
    e.g. ``prefect deployment run docvlm-pipeline/NAME``).
    """
    from prefect.schedules import Cron

    from docvlm.flows.pipeline import pipeline_flow

    deployments = []
    for path, cfg in load_all(targets):
        schedules = (
            [Cron(cfg.schedule.cron, timezone=cfg.schedule.timezone)] if cfg.schedule else None
        )
        deployments.append(
            pipeline_flow.to_deployment(
                name=cfg.name,
                schedules=schedules,
                parameters={"pipeline": str(path)},
                description=cfg.description or f"docvlm pipeline {path.name}",
                tags=["docvlm", cfg.name],
            )
        )
    return deployments


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_prefect_server(port: int = 4200, timeout_s: float = 120.0) -> Iterator[str]:
    """Run ``prefect server start`` (API, UI, scheduler) as a child process; yields its API URL.

    Raises:
        DocvlmError: the server did not answer its health check in ``timeout_s``.
    """
    import httpx
    from prefect.settings import PREFECT_HOME

    from docvlm.errors import DocvlmError

    port = _free_port(port)
    url = f"http://127.0.0.1:{port}/api"
    log_path = Path(PREFECT_HOME.value()) / "docvlm-serve-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port), "--analytics-off"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise DocvlmError(f"the local Prefect server exited; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise DocvlmError(f"the local Prefect server did not start; see {log_path}")
            time.sleep(0.5)
        logger.info("event=prefect_server_started api=%s ui=http://127.0.0.1:%d", url, port)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_pipelines(
    targets: Sequence[str | Path],
    limit: int | None = None,
    watch: bool = True,
) -> None:
    """Serve the pipelines' deployments (blocks until interrupted).

    Args:
        targets: pipeline folders or YAML files.
        limit: most flow runs at once (None: no limit).
        watch: also watch the source folders of pipelines with ``watch.enabled``.
    """
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from docvlm.ops.process import pipeline_for
    from docvlm.ops.watch import FolderWatcher

    loaded = load_all(targets)
    for _, cfg in loaded:  # configuration errors before any server or schedule starts
        pipeline_for(cfg)
    given = PREFECT_API_URL.value()
    server = contextlib.nullcontext(str(given)) if given else local_prefect_server()
    with server as url, temporary_settings(updates={PREFECT_API_URL: url}):
        os.environ["PREFECT_API_URL"] = url  # flow-run subprocesses and Dask workers
        # the library's structured logs go into each flow run's logs (and the UI)
        os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "docvlm")
        names = ",".join(c.name for _, c in loaded)
        logger.info("event=serve_start api=%s pipelines=%s", url, names)
        deployments = build_deployments(targets)
        stop = threading.Event()
        threads = []
        if watch:
            for _, cfg in loaded:
                if cfg.watch.enabled:
                    # run in a copy of this context, so the thread sees the settings above
                    t = threading.Thread(
                        target=contextvars.copy_context().run,
                        args=(FolderWatcher(cfg, process=_flow_runner(cfg)).run,), kwargs={"stop": stop},
                        name=f"watch-{cfg.name}", daemon=True,
                    )  # fmt: skip
                    t.start()
                    threads.append(t)
        try:
            serve(*deployments, limit=limit)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)


def _flow_runner(config: Any) -> Any:
    """One Prefect flow run per watched batch."""
    from docvlm.flows.pipeline import run_pipeline

    return lambda paths: run_pipeline(config, "prefect", inputs=paths)
