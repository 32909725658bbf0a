"""Live prompts in Chromium, with a real Celery worker generating from the loopback stub: write a prompt,
watch the responses arrive, reload in between, judge by keyboard, continue a second turn (one response
fails first and is retried), end the dialogue. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotate.batches.models import Dialogue, DialogueStatus, Item, ItemStatus
from tests import factories
from tests.browser.conftest import Workbench
from tests.generation.conftest import Worker
from tests.stub_openai import Call, Reply, StubOpenAI

pytestmark = pytest.mark.celery_worker
GENERATION_WAIT_MS = 30_000


def test_write_watch_judge_continue_and_end_a_live_dialogue(
    wb: Workbench, stub: StubOpenAI, start_worker: Callable[..., Worker], artifacts_dir: Path
) -> None:
    def answer(call: Call) -> Reply:
        last = call.body["messages"][-1]["content"]
        slow = call.body.get("temperature", 0) > 0.5  # the second config answers later
        if last.startswith("Second turn") and slow and call.attempt == 1:
            return Reply.error(400, "the model is overloaded with this prompt")
        return Reply.ok(
            f"**Answer** ({'slow' if slow else 'fast'}) to: {last}",
            delay_s=2.5 if slow and call.attempt == 1 else 0.1,
        )

    stub.handler = answer
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, model="stub-13b", timeout_s=10.0)
    configs = [
        factories.SamplingConfigFactory(endpoint=endpoint, label="cool", temperature=0.2),
        factories.SamplingConfigFactory(endpoint=endpoint, label="warm", temperature=0.9),
    ]
    batch = factories.BatchFactory(prompt_source="live", name="Live helpfulness", guidelines="")
    batch.sampling_configs.set(configs)
    user = factories.annotator(username="lena", tracks=["helpfulness"])
    start_worker("live-browser", concurrency=4)
    page = wb.page

    wb.login(user, start=f"/b/{batch.pk}/")
    expect(page).to_have_url(wb.url(f"/b/{batch.pk}/live/"))
    box = page.locator("#live-prompt")
    expect(box).to_be_focused()

    # Sending nothing is refused with a message; the page keeps working.
    wb.allow_console(r"status of 400 \(Bad Request\) @ .*/live/$")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#prompt-error")).to_have_text("Write a prompt first: it is empty.")

    # Typing letters that are shortcuts on the item page only types them.
    page.locator("#live-prompt").click()
    page.keyboard.type("Is a fast answer ever better? s f ? g")
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page).to_have_url(wb.url(f"/b/{batch.pk}/live/"))
    expect(page.locator(".live-count")).to_contain_text("37 /")
    page.screenshot(path=str(artifacts_dir / "live-1-prompt.png"), full_page=True)
    page.keyboard.press("Control+Enter")

    expect(page).to_have_url(re.compile(r"/live/[0-9a-f-]{36}/$"))
    dialogue = Dialogue.objects.get()
    expect(page).to_have_url(wb.url(f"/live/{dialogue.pk}/"))
    status = page.locator("#live-status")
    # The fast response arrives first, the slow one later: the count moves on its own.
    expect(status).to_contain_text("1 of 2", timeout=GENERATION_WAIT_MS)
    expect(page.locator(".live-response.is-ok .md strong")).to_have_text("Answer")
    page.screenshot(path=str(artifacts_dir / "live-2-progress.png"), full_page=True)
    page.reload()  # the state lives on the server
    expect(page).to_have_url(wb.url(f"/live/{dialogue.pk}/"))
    expect(page.locator("#live-status")).to_contain_text("of 2")

    # Both ready: the item page, judged like any pairwise item, by keyboard.
    expect(page).to_have_url(
        wb.url(f"/a/{Item.objects.get().assignments.get().pk}/"), timeout=GENERATION_WAIT_MS
    )
    expect(wb.section).to_have_attribute("data-state", "item")
    expect(page.locator("#responses > .response-card")).to_have_count(2)
    page.keyboard.press("b")
    page.keyboard.press("w")
    page.screenshot(path=str(artifacts_dir / "live-3-judge.png"), full_page=True)
    page.keyboard.press("Enter")

    # Back at the dialogue: the preferred answer is the assistant's turn; continue or end.
    expect(page).to_have_url(wb.url(f"/live/{dialogue.pk}/"))
    expect(page.locator("#live-judged")).to_be_visible()
    expect(page.locator(".conversation .turn-assistant")).to_have_count(1)
    page.reload()
    expect(page.locator("#live-continue-form")).to_be_visible()
    expect(page.locator("#live-prompt")).to_be_focused()
    page.screenshot(path=str(artifacts_dir / "live-4-continue.png"), full_page=True)
    page.keyboard.type("Second turn: say more.")
    page.keyboard.press("Control+Enter")

    # One response fails at first: its error and a Retry button show, and polling stops.
    expect(page.locator(".live-response.is-failed")).to_contain_text(
        "overloaded with this prompt", timeout=GENERATION_WAIT_MS
    )
    expect(page.locator("#live-status")).to_contain_text("1 of 2")
    page.screenshot(path=str(artifacts_dir / "live-5-failed.png"), full_page=True)
    page.get_by_role("button", name="Retry the failed response").click()
    turn1 = Item.objects.get(dialogue=dialogue, turn_index=1)
    expect(page).to_have_url(wb.url(f"/a/{turn1.assignments.get().pk}/"), timeout=GENERATION_WAIT_MS)
    expect(page.locator(".conversation .turn")).to_have_count(3)
    page.keyboard.press("a")
    page.keyboard.press("e")
    page.keyboard.press("Enter")

    expect(page).to_have_url(wb.url(f"/live/{dialogue.pk}/"))
    page.get_by_role("button", name="End the dialogue").click()
    expect(page.locator("#live-ended")).to_contain_text("ended after 2 turns")
    page.screenshot(path=str(artifacts_dir / "live-6-ended.png"), full_page=True)
    page.locator("#live-new").click()
    expect(page).to_have_url(wb.url(f"/b/{batch.pk}/live/"))
    expect(page.locator(".live-dialogues li")).to_have_count(1)

    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.ENDED
    turns = list(Item.objects.filter(dialogue=dialogue).order_by("turn_index"))
    assert [t.status for t in turns] == [ItemStatus.READY, ItemStatus.READY]
    assert [m["role"] for m in turns[1].conversation] == ["user", "assistant", "user"]
    assert turns[1].conversation[0]["content"] == "Is a fast answer ever better? s f ? g"
    assert turns[1].conversation[2]["content"] == "Second turn: say more."
