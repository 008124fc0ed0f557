"""Logging for a running platform, configured in one place (``aif up`` and its API workers).

Two formats: ``text`` (one readable line per record) and ``json`` (one JSON object per line:
time, level, logger, message and the record's structured fields, for log collectors). Code
that logs passes its structured fields as ``extra={...}``; both formats carry them, the text
format inside the message it already writes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
ACCESS_LOGGER = "aifactories.access"  # api/observability.py logs each request here
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never raises on a value JSON cannot hold (it is repr'd)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=repr, ensure_ascii=False)


def configure_logging(
    log_format: LogFormat = "text", level: int | str = logging.INFO, *, access_log: bool = True
) -> None:
    """Send every logger's records to stderr in ``log_format``, replacing earlier handlers
    (uvicorn's loggers included: they propagate here when uvicorn is started without a
    logging config of its own). ``access_log=False`` silences the per-request lines."""
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
