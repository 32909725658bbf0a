"""The API's one error shape, `{"error": {"code", "message", "fields"}}`, for every failure.

`exception_handler` is DRF's EXCEPTION_HANDLER: serializer errors become 400 with each field's messages
(nested fields as dotted paths), domain errors keep their own status and code, authentication failures
are 401 (with WWW-Authenticate), throttling 429 (with Retry-After). Anything not recognised here is a bug
and is left to Django (a 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from annotate.core.errors import DomainError

MAX_MESSAGE_PARTS = 5


class IdempotencyKeyMismatch(DomainError):
    """The Idempotency-Key was used before for a different request (method, path or body)."""

    status_code = 422

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used for a different request; use a new key for a new request.",
            code="idempotency_key_mismatch",
            field="Idempotency-Key",
        )


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "parent.child": [...], "list.0.field": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            out.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in detail):
            if detail:
                out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in detail)
        else:
            for index, value in enumerate(detail):
                out.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def summary(fields: Mapping[str, list[str]]) -> str:
    parts = [f"{name}: {messages[0]}" for name, messages in fields.items() if messages]
    text = "; ".join(parts[:MAX_MESSAGE_PARTS])
    if len(parts) > MAX_MESSAGE_PARTS:
        text += f"; and {len(parts) - MAX_MESSAGE_PARTS} more"
    return text or "The request is invalid."


def _validation(detail: Any, code: str = "invalid") -> tuple[int, dict[str, Any]]:
    fields = flatten_errors(detail)
    return status.HTTP_400_BAD_REQUEST, error_body(code, summary(fields), fields)


def to_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """(status, body, headers) for a known exception; None for anything else (a server error)."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        return exc.status_code, exc.as_dict(), headers
    if isinstance(exc, exceptions.ValidationError):
        return *_validation(exc.detail), headers
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return *_validation({("non_field_errors" if k == "__all__" else k): v for k, v in detail.items()}), {}
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return status.HTTP_404_NOT_FOUND, error_body("not_found", "Not found."), headers
    if isinstance(exc, DjangoPermissionDenied):
        return status.HTTP_403_FORBIDDEN, error_body("permission_denied", "Permission denied."), headers
    if isinstance(exc, RequestDataTooBig):
        return (
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            error_body("request_too_large", "The request body is too large."),
            headers,
        )
    if isinstance(exc, SuspiciousOperation):
        return status.HTTP_400_BAD_REQUEST, error_body("bad_request", "The request is malformed."), headers
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        if isinstance(detail, Mapping | list):
            return *_validation(detail, code="invalid"), headers
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return exc.status_code, error_body(str(code), str(detail)), headers
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    result = to_response(exc)
    if result is None:
        return None
    status_code, body, headers = result
    set_rollback()
    return Response(body, status=status_code, headers=headers)


@csrf_exempt  # it changes nothing; a missing CSRF cookie must not turn a 404 into a 403
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/ answer in the API's shape (every API path ends with a slash)."""
    message = "No such API path. Paths end with a slash, e.g. /api/v1/batches/."
    return JsonResponse(error_body("not_found", message), status=404)
