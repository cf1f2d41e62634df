"""One logging set-up for every command."""

from __future__ import annotations

import json
import logging
from typing import Any

from docvlm.settings import get_settings


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; ``key=value`` pairs of the message become fields."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = [p.split("=", 1) for p in msg.split(" ") if "=" in p]
        if fields and msg.startswith("event="):
            out.update({k: v for k, v in fields})
        else:
            out["message"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(verbose: int = 0, level: int = logging.INFO) -> None:
    """docvlm's logs to stderr at ``level`` (DEBUG with ``-v``) unless the application set
    up logging already; ``DOCVLM_LOG_FORMAT=json`` gives one JSON object per line."""
    root = logging.getLogger()
    docvlm_logger = logging.getLogger("docvlm")
    docvlm_logger.setLevel(logging.DEBUG if verbose else level)
    if root.handlers:
        return
    handler = logging.StreamHandler()
    if get_settings().log_format.lower() == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    docvlm_logger.addHandler(handler)
    docvlm_logger.propagate = False
