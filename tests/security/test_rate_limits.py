"""Sign-in and API tokens are rate-limited with an atomic counter on Redis: parallel guesses over real HTTP
get at most the configured number of checks, then 429."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.core.cache import cache

from annotate.api import services as api_services
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 100
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def redis_cache(settings: Any) -> None:
    if "RedisCache" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("the cross-process counter needs REDIS_URL")
    cache.clear()
    yield
    cache.clear()


def _parallel(count: int, send: Any) -> Counter[int]:
    """`send()` from `count` threads at once. The test server's listen backlog is short: a connection it
    resets is sent again (a repeat can only add attempts, never hide one)."""

    def once(_: int) -> int:
        for _try in range(10):
            try:
                return int(send())
            except httpx.TransportError:
                continue
        raise AssertionError("the server kept resetting the connection")

    with ThreadPoolExecutor(max_workers=count) as pool:
        return Counter(pool.map(once, range(count)))


def test_parallel_wrong_passwords_get_at_most_the_limit_then_429(
    live_server: Any, settings: Any, redis_cache: None
) -> None:
    settings.LOGIN_ATTEMPTS_PER_WINDOW = 5
    user = factories.UserFactory(username=f"victim-{uuid.uuid4().hex[:8]}")
    base = live_server.url
    with httpx.Client(base_url=base) as client:
        page = client.get("/accounts/login/")
        token = CSRF_INPUT.search(page.text).group(1)  # type: ignore[union-attr]
        cookie = page.cookies["csrftoken"]

    def attempt() -> int:
        with httpx.Client(base_url=base, timeout=60, cookies={"csrftoken": cookie}) as c:
            response = c.post(
                "/accounts/login/",
                data={"username": user.username, "password": "wrong", "csrfmiddlewaretoken": token},
                headers={"Referer": base + "/accounts/login/"},
            )
            return response.status_code

    statuses = _parallel(PARALLEL, attempt)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] <= 5, f"{statuses[200]} passwords were checked; the limit is 5"
    assert statuses[429] >= PARALLEL - 5
    # The right password waits for the window as well: guessing it later in the window gains nothing.
    with httpx.Client(base_url=base, cookies={"csrftoken": cookie}) as c:
        right = c.post(
            "/accounts/login/",
            data={"username": user.username, "password": factories.PASSWORD, "csrfmiddlewaretoken": token},
        )
    assert right.status_code == 429 and "sessionid" not in right.cookies
    assert right.headers["Retry-After"].isdigit()


def test_parallel_wrong_tokens_get_at_most_the_limit_then_429(
    live_server: Any, settings: Any, redis_cache: None
) -> None:
    settings.API_TOKEN_FAILURES_PER_WINDOW = 7

    def attempt() -> int:
        guess = "annot_" + uuid.uuid4().hex + uuid.uuid4().hex
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            return c.get("/api/v1/me/", headers={"Authorization": f"Token {guess}"}).status_code

    statuses = _parallel(PARALLEL, attempt)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= 7, f"{statuses[401]} tokens were checked; the limit is 7"
    assert statuses[429] >= PARALLEL - 7
    refused = httpx.get(live_server.url + "/api/v1/me/", headers={"Authorization": "Token annot_x"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused.headers["Retry-After"]) >= 1


def test_right_tokens_in_parallel_are_never_throttled_by_the_wrong_token_limit(
    live_server: Any, settings: Any, redis_cache: None
) -> None:
    settings.API_TOKEN_FAILURES_PER_WINDOW = 3
    user = factories.annotator(username=f"script-{uuid.uuid4().hex[:8]}")
    secret = api_services.token_create(user=user, name="script", expires_in_days=None).secret

    def call() -> int:
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            return c.get("/api/v1/me/", headers={"Authorization": f"Token {secret}"}).status_code

    assert _parallel(40, call) == Counter({200: 40})


def test_creating_tokens_is_limited_per_user(settings: Any, redis_cache: None) -> None:
    from django.test import Client
    from rest_framework.test import APIClient

    settings.LOGIN_ATTEMPTS_PER_WINDOW = 3
    settings.API_MAX_TOKENS_PER_USER = 100
    user = factories.annotator(username=f"minter-{uuid.uuid4().hex[:8]}")
    client = APIClient()
    client.force_login(user)
    statuses = [client.post("/api/v1/tokens/", {"name": f"t{n}"}).status_code for n in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    assert client.post("/api/v1/tokens/", {"name": "again"}).json()["error"]["code"] == "throttled"
    browser = Client()
    browser.force_login(user)
    page = browser.post("/accounts/tokens/", {"name": "from the page", "expires_in_days": "30"})
    assert page.status_code == 429
    assert "Too many tokens" in page.content.decode()
