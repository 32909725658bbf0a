"""The `Idempotency-Key` header of API writes: the same key and body replay the first response.

    POST /api/v1/assignments/7/submit/     Idempotency-Key: 2b9c...     -> 201, the judgment
    the same again (a retry after a timeout)                            -> 201, the same body, nothing new
    the same key with another body, method or path                      -> 422 idempotency_key_mismatch

One transaction holds both the write and its record. The record's row (unique on user and key) is
inserted *before* the write runs, so a concurrent request with the same key blocks on that index entry
until the first transaction ends: if it committed, the second replays its response; if it rolled back
(the write failed), the second runs as if it were the first. So two writes never happen for one key.
Only successful (2xx) responses are recorded: a failed write leaves no record and may be retried.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api.errors import IdempotencyKeyMismatch
from annotate.api.models import IdempotencyRecord
from annotate.core.errors import ConflictError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
PROCESSING = 102  # the placeholder status while the first request is still running


def header_key(request: Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not KEY.match(raw):
        raise exceptions.ValidationError(
            {HEADER: ["An Idempotency-Key is 1-255 printable ASCII characters without spaces."]}
        )
    return raw


def derived_judgment_key(request: Request) -> str | None:
    """The judgment service's own idempotency key for a submit whose body has none: derived from the
    header, so that one header key always maps to one judgment key (8-64 characters of [A-Za-z0-9_.:-])."""
    key = header_key(request)
    if key is None:
        return None
    return "hdr:" + hashlib.sha256(key.encode()).hexdigest()[:48]


def _body_digest(request: Request) -> str:
    try:
        body = request._request.body
    except RawPostDataException:  # pragma: no cover - the body was streamed already (a parser ran first)
        body = orjson.dumps(request.data, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def _replay(record: IdempotencyRecord, request: Request, digest: str) -> HttpResponse:
    if (record.method, record.path, record.request_sha256) != (request.method, request.path, digest):
        raise IdempotencyKeyMismatch()
    if record.secret_withheld:
        raise ConflictError(
            "This Idempotency-Key already did this request. Its response held a secret, shown that once and "
            f"never stored, so it cannot be replayed. The first response without it: {record.response_body}",
            code="secret_not_replayed",
        )
    response = HttpResponse(record.response_body, status=record.status_code, content_type="application/json")
    if not record.response_body:
        del response["Content-Type"]
    response[REPLAYED_HEADER] = "true"
    return response


def _rendered(data: Any) -> str:
    # Stored as the client saw it, so that a replay is byte-for-byte the same body.
    return "" if data is None else JSONRenderer().render(data).decode()


def run_idempotent(
    request: Request,
    handler: Callable[[], Response],
    digest: Callable[[], str] | None = None,
    withhold: Sequence[str] = (),
) -> HttpResponse:
    """Run a write handler under the request's Idempotency-Key, if it has one. `digest` computes the
    body's SHA-256 for views that stream their body (the default reads `request.body`); `withhold` names
    response fields that are secrets, never to be stored (their response cannot be replayed)."""
    key = header_key(request)
    user = request.user
    if key is None or user is None or not user.is_authenticated:
        return handler()
    body_sha256 = digest() if digest is not None else _body_digest(request)
    cutoff = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    with transaction.atomic():
        existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if existing is not None and existing.created_at < cutoff:
            existing.delete()  # remembered long enough: the key is free again
            existing = None
        if existing is not None:
            return _replay(existing, request, body_sha256)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=user,
                    key=key,
                    method=request.method,
                    path=request.path[:2048],
                    request_sha256=body_sha256,
                    status_code=PROCESSING,
                )
        except IntegrityError:
            # A concurrent request with this key committed while our insert waited for it.
            return _replay(IdempotencyRecord.objects.get(user=user, key=key), request, body_sha256)
        response = handler()
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)  # not a success: keep neither the write nor the record
            return response
        data = response.data
        if withhold and isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in withhold}
            record.secret_withheld = True
        record.status_code = response.status_code
        record.response_body = _rendered(data)
        record.save(update_fields=["status_code", "response_body", "secret_withheld"])
        return response
