"""Error views shared by the pages and the API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def wants_json(request: HttpRequest) -> bool:
    """Script requests (our fetch calls and API clients) get JSON errors; browsers get pages."""
    return (
        request.headers.get("X-Requested-With") == "fetch"
        or request.path.startswith("/api/")
        or "application/json" in request.headers.get("Accept", "")
    )


def error_json(
    status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    message = "Your session's security token is missing or out of date. Reload the page and try again."
    if wants_json(request):
        return error_json(403, "csrf_failed", message)
    return render(request, "errors/csrf.html", {"message": message}, status=403)
