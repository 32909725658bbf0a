"""Browser tests: a real Chromium (Playwright) against pytest-django's live server on 127.0.0.1.

Every test gets a `wb` helper that watches the page: console errors, uncaught exceptions, JavaScript
dialogs and requests to any origin other than the live server fail the test at teardown unless the test
declared them expected (`wb.allow_console(...)`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, Request, expect

from annotate.batches.models import Batch, Item, ItemStatus, Response, ResponseStatus
from tests import factories

# pytest-django's live_server reads this when it starts (unless --liveserver is given): 127.0.0.1, not
# "localhost", so the browser and the server agree on one address and one cookie origin.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

HERE = Path(__file__).resolve().parent
WAIT_MS = 10_000
expect.set_options(timeout=WAIT_MS)

# Console lines that are never a defect of ours.
ALWAYS_IGNORED = (
    re.compile(r"favicon\.ico"),
    re.compile(r"\[: unexpected operator"),  # Debian's chromium wrapper script
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1366, "height": 900}, "locale": "en-GB"}


@pytest.fixture(autouse=True)
def _fast_sign_in(settings: Any) -> None:
    # Each test signs in through the real form; repeated runs within the rate-limit window must not
    # lock the test users out (the limit itself is tested elsewhere), and a deliberately slow password
    # hash would only slow the suite down.
    settings.LOGIN_ATTEMPTS_PER_WINDOW = 10_000
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Workbench:
    """The page under test, its server, and what it has seen."""

    page: Page
    context: BrowserContext
    base: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def goto(self, path: str) -> None:
        self.page.goto(self.url(path))

    def allow_console(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def login(self, user: Any, *, start: str = "/") -> None:
        """Sign in through the real form, with the keyboard (Enter submits)."""
        self.goto(f"/accounts/login/?next={start}")
        self.page.fill("#id_username", user.username)
        self.page.fill("#id_password", factories.PASSWORD)
        with self.page.expect_navigation():
            self.page.press("#id_password", "Enter")
        expect(self.page.locator("body[data-authenticated='1']")).to_have_count(1)

    # --- the item page -------------------------------------------------------------------------------

    @property
    def section(self) -> Any:
        return self.page.locator("#workbench")

    def assignment_id(self) -> int:
        return int(self.section.get_attribute("data-assignment") or 0)

    def response_ids(self) -> list[int]:
        """Response ids in on-screen order."""
        return [
            int(x)
            for x in self.page.eval_on_selector_all(
                "#responses > .response-card", "els => els.map(e => e.dataset.responseId)"
            )
        ]

    def response_id(self, label: str) -> int:
        return int(
            self.page.get_attribute(f"#responses > .response-card[data-label='{label}']", "data-response-id")
            or 0
        )

    def wait_for_new_item(self, previous: int) -> None:
        """Wait until the section shows another assignment (or is no longer an item)."""
        self.page.wait_for_function(
            "prev => { const s = document.querySelector('#workbench');"
            " return s && s.dataset.ready !== undefined && s.dataset.assignment !== String(prev)"
            " || (s && s.dataset.state !== 'item'); }",
            arg=previous,
            timeout=WAIT_MS,
        )

    def mark_window(self) -> None:
        """A marker that only survives if no full page load happens."""
        self.page.evaluate("window.__wbNoReload = 'still-here'")

    def window_survived(self) -> bool:
        return self.page.evaluate("window.__wbNoReload === 'still-here'")

    def local(self, key: str) -> Any:
        return self.page.evaluate("k => JSON.parse(localStorage.getItem(k))", key)

    # --- teardown checks -----------------------------------------------------------------------------

    def unexpected_console(self) -> list[str]:
        return [
            line for line in self.console if not any(p.search(line) for p in (*ALWAYS_IGNORED, *self.allowed))
        ]

    def foreign_requests(self) -> list[str]:
        origin = urlsplit(self.base)
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                out.append(url)
        return out


@pytest.fixture
def wb(page: Page, context: BrowserContext, live_server: Any) -> Iterator[Workbench]:
    bench = Workbench(page=page, context=context, base=live_server.url)
    page.set_default_timeout(WAIT_MS)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            bench.console.append(f"{msg.type}: {msg.text} @ {msg.location.get('url', '')}")

    def on_dialog(dialog: Dialog) -> None:
        bench.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(request: Request) -> None:
        bench.requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: bench.errors.append(str(exc)))
    page.on("dialog", on_dialog)
    context.on("request", on_request)
    yield bench
    assert bench.errors == [], f"uncaught page errors: {bench.errors}"
    assert bench.dialogs == [], f"unexpected JavaScript dialogs: {bench.dialogs}"
    assert bench.unexpected_console() == [], f"unexpected console output: {bench.unexpected_console()}"
    assert bench.foreign_requests() == [], f"requests outside the live server: {bench.foreign_requests()}"


# --- data -------------------------------------------------------------------------------------------


def item_with(batch: Batch, conversation: list[dict[str, str]], contents: list[str]) -> Item:
    """An item of `batch` with the given conversation and one response per entry of `contents`."""
    item = Item.objects.create(
        batch=batch, conversation=conversation, status=ItemStatus.READY, wanted=batch.overlap
    )
    now = timezone.now()
    Response.objects.bulk_create(
        [
            Response(
                item=item,
                slot=slot,
                model_name=f"model-{slot}",
                content=content,
                status=ResponseStatus.OK,
                generated_at=now,
            )
            for slot, content in enumerate(contents)
        ]
    )
    return item


# The live-prompt browser test generates through the loopback stub with a real worker.
from tests.endpoints.conftest import allow_loopback, stub  # noqa: E402, F401 - shared fixtures
from tests.generation.conftest import start_worker, worker_env  # noqa: E402, F401 - shared fixtures
