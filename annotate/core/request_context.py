"""The id of the request (or task) being handled, for logs and the audit log.

A ContextVar, so each thread (gunicorn's threads, the workers' pool threads) and each asyncio task sees
its own. Set by RequestIdMiddleware for HTTP requests and by the Celery signal handlers for tasks.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
