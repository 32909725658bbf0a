"""When PostgreSQL or Redis is away (restarting, failing over, out of connections), answer 503, never a
traceback. Redis carries the rate limits and throttles (core.ratelimit), the cache and the broker: a
request that needs it while it restarts gets `{"error": {"code": "service_unavailable", ...}}` (the
limits fail closed: a login is not let through uncounted).

Scripts and our fetch calls get `{"error": {"code": "database_unavailable", ...}}` with Retry-After; browsers
get a small page that reloads itself (a meta refresh: no script, within the CSP). Django reconnects by
itself once the database is back (CONN_HEALTH_CHECKS drops a dead connection before the next request
uses it), so nothing else is needed to recover.

Two entry points: the middleware's process_exception for errors raised in a view, and `server_error`
(the project's handler500) for errors raised elsewhere, e.g. while the session is saved after the view.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader

from annotate.core.views import error_json, wants_json

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
MESSAGE = "The database is unavailable for a moment; try again in a few seconds."
SERVICE_MESSAGE = "A service this request needs is unavailable for a moment; try again in a few seconds."
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def _service_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    try:  # the Redis client (cache, rate limits, endpoint limits)
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover
        pass
    from kombu.exceptions import OperationalError as BrokerError  # a task sent while the broker is away

    return (*errors, BrokerError)


SERVICE_ERRORS = _service_errors()
UNAVAILABLE = DATABASE_ERRORS + SERVICE_ERRORS


def unavailable_response(request: HttpRequest, exc: BaseException | None = None) -> HttpResponse:
    database = exc is None or isinstance(exc, DATABASE_ERRORS)
    if wants_json(request):
        response: HttpResponse = (
            error_json(503, "database_unavailable", MESSAGE)
            if database
            else error_json(503, "service_unavailable", SERVICE_MESSAGE)
        )
    else:
        # A plain template (no base.html): the usual page header reads the session, which needs the database.
        context = {"retry_after": RETRY_AFTER_S, "what": "The database" if database else "A service"}
        html = loader.render_to_string("errors/unavailable.html", context)
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, UNAVAILABLE):
            logger.warning(
                "%s unavailable on %s %s: %s",
                "database" if isinstance(exception, DATABASE_ERRORS) else "service",
                request.method,
                request.path,
                exception,
            )
            return unavailable_response(request, exception)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database or Redis outage outside a view is still a 503; anything else a plain 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, UNAVAILABLE):
        return unavailable_response(request, exc)
    if wants_json(request):
        return error_json(500, "server_error", "Something went wrong on our side; it has been logged.")
    return HttpResponseServerError(loader.render_to_string("errors/500.html"))
