"""Redis stopped under the web app: the rate limits, throttles and cached sessions that need it answer
503 with the JSON error (or the self-reloading page) and Retry-After, never a 500 or a traceback; once
Redis is back, the same requests work again without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client

from annotate.api import services as api_services
from tests import factories
from tests.faults.infra import PrivateRedis

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache(private_redis: PrivateRedis, settings: Any) -> Iterator[PrivateRedis]:
    """The cache (rate limits, throttles, cached sessions) on the private Redis."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url(0),
            "KEY_PREFIX": "outage",
        }
    }
    yield private_redis
    caches["default"].close()


def assert_unavailable(response: Any, *, json: bool) -> None:
    body = response.content.decode()
    assert response.status_code == 503, body[:500]
    assert response["Retry-After"].isdigit()
    assert "Traceback" not in body and 'File "/' not in body
    if json:
        assert response.json()["error"]["code"] == "service_unavailable"
    else:
        assert "reloads itself" in body


def test_requests_during_a_redis_outage_get_503(redis_cache: PrivateRedis) -> None:
    user = factories.UserFactory(username="ann")
    token = api_services.token_create(user=user, name="t", expires_in_days=None).secret
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    browser = Client()
    assert api.get("/api/v1/me/").status_code == 200
    assert browser.post("/accounts/login/", {"username": "ann", "password": "wrong"}).status_code == 200

    redis_cache.stop()
    try:
        assert_unavailable(api.get("/api/v1/me/"), json=True)  # the per-token throttle
        assert_unavailable(
            browser.post("/accounts/login/", {"username": "ann", "password": factories.PASSWORD}), json=False
        )  # the sign-in rate limit: closed, not skipped
        assert_unavailable(
            browser.post(
                "/accounts/login/",
                {"username": "ann", "password": "x"},
                headers={"X-Requested-With": "fetch"},
            ),
            json=True,
        )
    finally:
        redis_cache.start()

    assert api.get("/api/v1/me/").status_code == 200
    signed_in = browser.post("/accounts/login/", {"username": "ann", "password": factories.PASSWORD})
    assert signed_in.status_code == 302
