"""Fixtures for the API tests: clients that authenticate like scripts (a token) or browsers (a session)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.api import services
from annotate.api.models import ApiToken

GENEROUS_RATES = {"token": "100000/min", "session": "100000/min", "anon": "100000/min"}


@pytest.fixture(autouse=True)
def _generous_throttles(settings: Any) -> None:
    # Tests share one Redis database and reuse user ids across runs: keep the limits out of the way here;
    # the throttling tests set their own.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": GENEROUS_RATES}
    # The permission matrix sends revoked and expired tokens a hundred times (tests/security tests the limit).
    settings.API_TOKEN_FAILURES_PER_WINDOW = 100_000
    settings.LOGIN_ATTEMPTS_PER_WINDOW = 100_000


def make_token(user: Any, *, name: str = "script", days: int | None = None) -> str:
    return services.token_create(user=user, name=name, expires_in_days=days).secret


def token_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.fixture
def api_as() -> Callable[[Any], APIClient]:
    """`api_as(user)`: an API client authenticated by a fresh token of `user`."""

    def make(user: Any) -> APIClient:
        return token_client(make_token(user))

    return make


@pytest.fixture
def session_as() -> Callable[..., APIClient]:
    """`session_as(user, csrf=True)`: a client signed in by session; with csrf=True it enforces CSRF checks
    like a browser (and must send X-CSRFToken on writes)."""

    def make(user: Any, *, csrf: bool = True) -> APIClient:
        client = APIClient(enforce_csrf_checks=csrf)
        client.force_login(user)
        return client

    return make


def expire(secret: str) -> None:
    ApiToken.objects.filter(token_key=secret[:15]).update(expiry=timezone.now() - timedelta(seconds=1))
