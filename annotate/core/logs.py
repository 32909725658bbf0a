"""Structured logs: one JSON object per line, with the id of the request or task being handled.

`JsonFormatter` is the formatter of LOGGING when LOG_FORMAT=json (the default with DEBUG=false);
`RequestIdFilter` adds `request_id` to every record either way. The id comes from
annotate.core.request_context, set by RequestIdMiddleware (web) and by the Celery signal handlers in
annotate/celery.py (workers), which carry the id of the request that enqueued a task into the task's logs.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from annotate.core.request_context import request_id

# LogRecord attributes that are not "extra" fields given by the caller.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get() or None,
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
