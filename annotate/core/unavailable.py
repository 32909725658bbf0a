"""When PostgreSQL is away (restarting, failing over, out of connections), answer 503, never a traceback.

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
UNAVAILABLE = (OperationalError, InterfaceError)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        response: HttpResponse = error_json(503, "database_unavailable", MESSAGE)
    else:
        # A plain template (no base.html): the usual page header reads the session, which needs the database.
        html = loader.render_to_string("errors/unavailable.html", {"retry_after": RETRY_AFTER_S})
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
            logger.warning("database unavailable on %s %s: %s", request.method, request.path, exception)
            return unavailable_response(request)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage outside a view is still a 503; anything else a plain 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, UNAVAILABLE):
        return unavailable_response(request)
    if wants_json(request):
        return error_json(500, "server_error", "Something went wrong on our side; it has been logged.")
    return HttpResponseServerError(loader.render_to_string("errors/500.html"))
