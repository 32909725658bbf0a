"""Operational edges: a database outage answers 503 (JSON or a self-reloading page), every response has a
request id, and log lines are JSON objects carrying it."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client

from annotate.core.logs import JsonFormatter, RequestIdFilter
from annotate.core.request_context import request_id
from tests import factories

pytestmark = pytest.mark.django_db


def _break_the_database(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(where, fail)


def test_an_outage_in_an_api_view_is_a_503_json(monkeypatch: pytest.MonkeyPatch, annotator: Any) -> None:
    _break_the_database(monkeypatch, "annotate.api.views.account.usable_tracks")
    client = Client()
    client.force_login(annotator)
    response = client.get("/api/v1/me/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response["Retry-After"] == "5" and response["Cache-Control"] == "no-store"
    assert "Traceback" not in response.content.decode()


def test_an_outage_on_a_page_shows_the_retrying_page(monkeypatch: pytest.MonkeyPatch, annotator: Any) -> None:
    _break_the_database(monkeypatch, "annotate.workbench.views.render")
    client = Client()
    client.force_login(annotator)
    response = client.get("/")
    assert response.status_code == 503
    body = response.content.decode()
    assert 'data-state="retrying"' in body and 'http-equiv="refresh"' in body
    assert "<script" not in body and "OperationalError" not in body


def test_an_outage_outside_a_view_is_a_503_too(monkeypatch: pytest.MonkeyPatch, annotator: Any) -> None:
    """The session is saved after the view (SessionMiddleware): handler500 turns that failure into a 503."""
    from django.contrib.sessions.backends.db import SessionStore

    _break_the_database(monkeypatch, "django.contrib.sessions.backends.db.SessionStore.save")
    assert SessionStore.save is not None
    client = Client(raise_request_exception=False)
    response = client.post(
        "/accounts/login/", {"username": annotator.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 503


def test_other_server_errors_stay_500_without_details(
    monkeypatch: pytest.MonkeyPatch, annotator: Any
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("secret detail")

    monkeypatch.setattr("annotate.api.views.account.usable_tracks", boom)
    client = Client(raise_request_exception=False)
    client.force_login(annotator)
    response = client.get("/api/v1/me/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "secret detail" not in response.content.decode()


def test_every_response_carries_a_request_id_and_keeps_a_sane_given_one(client: Client) -> None:
    first, second = client.get("/healthz"), client.get("/accounts/login/")
    assert len(first["X-Request-ID"]) == 32 and first["X-Request-ID"] != second["X-Request-ID"]
    given = client.get("/healthz", HTTP_X_REQUEST_ID="proxy-abc-123-def")
    assert given["X-Request-ID"] == "proxy-abc-123-def"
    hostile = client.get("/healthz", HTTP_X_REQUEST_ID="<script>x</script>\n")
    assert hostile["X-Request-ID"] != "<script>x</script>\n" and len(hostile["X-Request-ID"]) == 32


def test_log_lines_are_json_with_the_request_id() -> None:
    record = logging.LogRecord("annotate.x", logging.WARNING, __file__, 1, "claim %s failed", (7,), None)
    record.batch_id = 3
    token = request_id.set("req-1234abcd")
    try:
        RequestIdFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "claim 7 failed" and entry["level"] == "WARNING"
    assert entry["request_id"] == "req-1234abcd" and entry["batch_id"] == 3
    assert entry["logger"] == "annotate.x" and entry["ts"].endswith("+00:00")
