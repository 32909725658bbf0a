"""Personal API tokens: shown once, stored hashed, expiring, revocable; CSRF and no cookie fallback;
throttled per token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.api.models import ApiToken
from tests.api.conftest import expire, make_token, token_client

pytestmark = pytest.mark.django_db


def all_database_text() -> str:
    """Every row of every table, as text: to prove a secret is nowhere in the database."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def test_a_token_is_shown_once_and_never_again(annotator: Any, api_as: Any) -> None:
    client = api_as(annotator)
    created = client.post("/api/v1/tokens/", {"name": "vendor tool", "expires_in_days": 30})
    assert created.status_code == 201
    body = created.json()
    secret = body["token"]
    assert secret.startswith("annot_") and len(secret) == 70
    assert body["prefix"] == secret[:15] and body["name"] == "vendor tool"
    listing = client.get("/api/v1/tokens/")
    assert secret not in listing.content.decode()
    row = next(t for t in listing.json()["results"] if t["id"] == body["id"])
    assert set(row) == {"id", "name", "prefix", "created_at", "expires_at"}
    assert secret not in client.get(f"/api/v1/tokens/{body['id']}/").content.decode()
    # And the new token works.
    assert token_client(secret).get("/api/v1/me/").json()["auth"] == "token"


def test_the_database_never_contains_a_token(annotator: Any, api_as: Any) -> None:
    client = api_as(annotator)
    created = client.post("/api/v1/tokens/", {"name": "replayable?"}, HTTP_IDEMPOTENCY_KEY="tok-1")
    secret = created.json()["token"]
    text = all_database_text()
    assert secret[15:] not in text  # beyond the public prefix, not a character of it is stored
    assert ApiToken.objects.get(pk=created.json()["id"]).digest not in {secret, ""}
    # A replay of the create cannot show the token again (it was never stored): 409, no second token.
    replay = client.post("/api/v1/tokens/", {"name": "replayable?"}, HTTP_IDEMPOTENCY_KEY="tok-1")
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "secret_not_replayed"
    assert secret[15:] not in replay.content.decode()
    assert ApiToken.objects.filter(name="replayable?").count() == 1


def test_an_expired_token_is_refused(annotator: Any) -> None:
    secret = make_token(annotator, days=1)
    assert token_client(secret).get("/api/v1/me/").status_code == 200
    expire(secret)
    response = token_client(secret).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


def test_a_revoked_token_is_refused_at_once(annotator: Any) -> None:
    secret = make_token(annotator)
    other = make_token(annotator)
    client = token_client(other)
    token_id = ApiToken.objects.get(token_key=secret[:15]).pk
    assert client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204
    assert token_client(secret).get("/api/v1/me/").status_code == 401
    assert client.get("/api/v1/me/").status_code == 200


def test_nobody_revokes_another_users_token(annotator: Any, other_annotator: Any) -> None:
    alices = make_token(annotator)
    token_id = ApiToken.objects.get(token_key=alices[:15]).pk
    bob = token_client(make_token(other_annotator))
    assert bob.delete(f"/api/v1/tokens/{token_id}/").status_code == 404
    assert bob.get(f"/api/v1/tokens/{token_id}/").status_code == 404
    assert token_client(alices).get("/api/v1/me/").status_code == 200


def test_a_token_cannot_mint_a_longer_lived_token(annotator: Any) -> None:
    client = token_client(make_token(annotator, days=7))
    forever = client.post("/api/v1/tokens/", {"name": "escape"})
    assert forever.status_code == 400 and "expires_in_days" in forever.json()["error"]["fields"]
    assert client.post("/api/v1/tokens/", {"name": "escape", "expires_in_days": 30}).status_code == 400
    assert client.post("/api/v1/tokens/", {"name": "fine", "expires_in_days": 6}).status_code == 201


def test_tokens_per_user_are_limited(annotator: Any, settings: Any) -> None:
    settings.API_MAX_TOKENS_PER_USER = 2
    client = token_client(make_token(annotator))
    assert client.post("/api/v1/tokens/", {"name": "second"}).status_code == 201
    third = client.post("/api/v1/tokens/", {"name": "third"})
    assert third.status_code == 409 and third.json()["error"]["code"] == "too_many_tokens"


def test_token_requests_need_no_csrf_token(annotator: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(annotator)}")
    assert client.post("/api/v1/tokens/", {"name": "from a script"}).status_code == 201


def test_a_session_post_without_the_csrf_token_is_refused(annotator: Any, session_as: Any) -> None:
    client = session_as(annotator)
    assert client.get("/api/v1/me/").json()["auth"] == "session"
    refused = client.post("/api/v1/tokens/", {"name": "from the browser"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert not ApiToken.objects.filter(name="from the browser").exists()
    page = client.get("/accounts/tokens/")  # sets the CSRF cookie, as the browser's page load would
    csrf = page.cookies["csrftoken"].value
    allowed = client.post("/api/v1/tokens/", {"name": "from the browser"}, HTTP_X_CSRFTOKEN=csrf)
    assert allowed.status_code == 201


@pytest.mark.parametrize(
    "header",
    [
        "Token annot_0000000000000000000000000000000000000000000000000000000000000000",
        "Token",
        "Basic YTpi",
        "Bearer nope nope",
        "Token \u00e9\u00e9",
    ],
)
def test_a_bad_authorization_header_never_falls_back_to_the_session(
    annotator: Any, session_as: Any, header: str
) -> None:
    client = session_as(annotator, csrf=False)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_bearer_is_accepted_as_well(annotator: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(annotator)}")
    assert client.get("/api/v1/me/").status_code == 200


def test_requests_are_throttled_per_token(annotator: Any, settings: Any) -> None:
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min", "session": "3/min", "anon": "3/min"},
    }
    first, second = token_client(make_token(annotator)), token_client(make_token(annotator))
    assert [first.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 200]
    throttled = first.get("/api/v1/me/")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert second.get("/api/v1/me/").status_code == 200  # its own budget


def test_the_tokens_page_creates_shows_once_and_revokes(annotator: Any) -> None:
    client = Client()
    client.force_login(annotator)
    page = client.get("/accounts/tokens/")
    assert page.status_code == 200 and "You have no API tokens" in page.content.decode()
    created = client.post(
        "/accounts/tokens/", {"action": "create", "name": "notebook", "expires_in_days": "7"}
    )
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=annotator)
    html = created.content.decode()
    secret = html.split('<code class="token-secret">')[1].split("</code>")[0]
    assert secret.startswith(token.token_key) and len(secret) == 70
    assert token_client(secret).get("/api/v1/me/").status_code == 200
    again = client.get("/accounts/tokens/").content.decode()
    assert "notebook" in again and token.token_key in again and secret not in again
    assert token.expiry is not None and token.expiry - timezone.now() > timedelta(days=6)
    revoked = client.post("/accounts/tokens/", {"action": "revoke", "token_id": str(token.pk)})
    assert revoked.status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert token_client(secret).get("/api/v1/me/").status_code == 401


def test_the_tokens_page_refuses_a_blank_name(annotator: Any) -> None:
    client = Client()
    client.force_login(annotator)
    response = client.post("/accounts/tokens/", {"action": "create", "name": "", "expires_in_days": ""})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_the_tokens_page_needs_a_sign_in() -> None:
    response = Client().get("/accounts/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
