"""Shared fixtures: role users and clients, factories' helpers, Redis, and Chromium for Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests import factories

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls under a running
# loop unless told this is intended (the ORM and the browser never share the loop here).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2 at Django's production cost takes ~0.5 s per user on these machines; tests need no such cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _wrong_token_limit_out_of_the_way(settings: Any) -> None:
    # The wrong-token counter is per client address (always 127.0.0.1 here) and lives in the shared test
    # Redis across tests: tests that send bad tokens on purpose must not lock out the ones that follow.
    # tests/security/test_rate_limits.py sets its own limit (and clears the counters).
    settings.API_TOKEN_FAILURES_PER_WINDOW = 1_000_000


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def batch_admin(db: None) -> Any:
    return factories.UserFactory(username="ada_admin", is_staff=True, is_superuser=True)


@pytest.fixture
def annotator(db: None) -> Any:
    return factories.annotator(username="alice", tracks=["helpfulness"])


@pytest.fixture
def other_annotator(db: None) -> Any:
    return factories.annotator(username="bob", tracks=["helpfulness"])


@pytest.fixture
def safety_annotator(db: None) -> Any:
    return factories.annotator(username="carol", tracks=["helpfulness", "safety"])


@pytest.fixture
def exporter(db: None) -> Any:
    return factories.UserFactory(username="erin_exporter", is_exporter=True)


def _client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(batch_admin: Any) -> Client:
    return _client_for(batch_admin)


@pytest.fixture
def annotator_client(annotator: Any) -> Client:
    return _client_for(annotator)


@pytest.fixture
def redis_client() -> Iterator[Any]:
    """A client on the test Redis database, emptied before and after the test."""
    import redis
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
