"""The API docs page in a real Chromium: Swagger UI renders every operation from our own static files,
under our Content-Security-Policy, with no request to another origin and no console error."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest

os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_render_from_our_own_origin_under_the_csp(live_server: Any, page: Any) -> None:
    problems: list[str] = []
    origins: set[str] = set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: origins.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 45
    assert page.get_by_text("/api/v1/batches/{batch_id}/claim/").count() >= 1
    problems = [p for p in problems if "favicon" not in p and "unexpected operator" not in p]
    assert problems == []
    assert origins == {urlsplit(live_server.url).netloc}
