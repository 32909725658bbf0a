"""CSRF: a session-authenticated write without the token is refused (403) on every page and every API
route; a token-authenticated request never needs it, and never falls back to the session cookie."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotate.api.models import ApiToken
from annotate.api.views.base import ApiView
from annotate.batches.models import Batch
from tests import factories
from tests.api.conftest import make_token
from tests.security.routes import WRITE_METHODS, all_routes

pytestmark = pytest.mark.django_db


def _api_writes() -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in all_routes()
        if isinstance(route.view, type) and issubclass(route.view, ApiView)
        for method in route.methods()
        if method in WRITE_METHODS
    ]


def _page_posts() -> list[str]:
    return [
        route.path
        for route in all_routes()
        if not route.path.startswith(("/api/", "/admin/", "/static/"))
        and not (isinstance(route.view, type) and issubclass(route.view, ApiView))
        and route.path not in {"/healthz", "/readyz"}
    ]


def test_the_route_lists_are_complete() -> None:
    writes = _api_writes()
    assert ("post", "/api/v1/assignments/1/submit/") in writes and len(writes) >= 25
    pages = _page_posts()
    assert "/a/1/submit/" in pages and "/accounts/tokens/" in pages and "/accounts/login/" in pages


@pytest.mark.parametrize(("method", "path"), _api_writes())
def test_every_api_write_refuses_a_session_without_the_csrf_token(
    batch_admin: Any, method: str, path: str
) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(batch_admin)  # the most powerful role: nothing else stands in the way
    response = client.generic(method.upper(), path, data="{}", content_type="application/json")
    assert response.status_code == 403, response.content[:200]
    assert response.json()["error"]["code"] == "csrf_failed"


@pytest.mark.parametrize("path", _page_posts())
def test_every_page_refuses_a_post_without_the_csrf_token(annotator: Any, path: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    response = client.post(path, {"anything": "1"})
    assert response.status_code == 403, (path, response.status_code)
    assert "security token" in response.content.decode()


def test_the_admin_refuses_a_post_without_the_csrf_token(batch_admin: Any) -> None:
    batch = factories.ready_batch(items=1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(batch_admin)
    response = client.post(f"/admin/batches/batch/{batch.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Batch.objects.filter(pk=batch.pk).exists()


def test_a_token_request_with_a_session_cookie_is_the_token_s_user_and_needs_no_csrf(
    annotator: Any, batch_admin: Any
) -> None:
    """A browser that also holds an admin session does not lend it to a script's token."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(batch_admin)
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(annotator)}")
    me = client.get("/api/v1/me/").json()
    assert me["username"] == annotator.username and me["auth"] == "token"
    created = client.post("/api/v1/tokens/", {"name": "by token"}, format="json")
    assert created.status_code == 201
    assert ApiToken.objects.get(name="by token").user == annotator
    batch = {"name": "x", "track": "helpfulness"}
    assert client.post("/api/v1/batches/", batch, format="json").status_code == 403  # not the admin


def test_a_revoked_token_with_a_valid_session_cookie_is_refused(annotator: Any) -> None:
    secret = make_token(annotator)
    ApiToken.objects.filter(token_key=secret[:15]).delete()
    client = APIClient()
    client.force_login(annotator)
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.post("/api/v1/tokens/", {"name": "x"}, format="json").status_code == 401
