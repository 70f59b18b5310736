"""Logging of the ``playground.*`` loggers: one line per record with a timestamp, the level,
the request id (``-`` outside a request) and the logger; ``PLAYGROUND_LOG_FORMAT=json`` writes
one JSON object per line for log collectors.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Literal

REQUEST_ID: ContextVar[str | None] = ContextVar("playground_request_id", default=None)
TEXT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being served (or ``-``) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, request_id, message,
    and the traceback as ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (test captures)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


def setup_logging(
    level: str = "info", fmt: Literal["text", "json"] = "text", stream: IO[str] | None = None
) -> logging.Handler:
    """Give the ``playground`` logger its one handler (replacing the one set before)."""
    logger = logging.getLogger("playground")
    for old in [h for h in logger.handlers if getattr(h, "_playground", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler._playground = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    return handler
