"""The annotator's path: sign in, start a batch, read the guidelines, judge pairwise items by keyboard."""

from __future__ import annotations

from playwright.sync_api import expect

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.core.choices import Strength
from annotate.judgments.models import Judgment
from tests import factories
from tests.browser.conftest import Workbench


def test_sign_in_start_a_batch_and_read_the_guidelines_first(wb: Workbench) -> None:
    user = factories.annotator(username="gina", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, name="Weekly helpfulness 7")
    page = wb.page

    wb.goto("/")
    expect(page).to_have_url(wb.url("/accounts/login/?next=/"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("button[type=submit]")

    expect(page).to_have_url(wb.url("/"))
    card = page.locator(f".batch-card[data-batch='{batch.pk}']")
    expect(card).to_contain_text("Weekly helpfulness 7")
    expect(card).to_contain_text("Pairwise")
    card.get_by_role("link", name="Start").click()

    expect(page).to_have_url(wb.url(f"/b/{batch.pk}/guidelines/"))
    expect(page.locator("article.md h1")).to_have_text("Guidelines")
    page.get_by_role("button", name="I have read the guidelines, start").click()

    expect(page).to_have_url(wb.url(f"/a/{wb.assignment_id()}/"))
    expect(wb.section).to_have_attribute("data-state", "item")
    expect(page.locator("#responses > .response-card")).to_have_count(2)
    assert Assignment.objects.get(annotator=user).status == AssignmentStatus.ACTIVE

    # G opens the guidelines again; going back to work returns to the same item.
    item_url = page.url
    page.keyboard.press("g")
    expect(page).to_have_url(wb.url(f"/b/{batch.pk}/guidelines/"))
    page.get_by_role("button", name="Back to work").click()
    expect(page).to_have_url(item_url)


def test_responses_are_formatted_on_every_view(wb: Workbench) -> None:
    user = factories.annotator(username="otto", tracks=["helpfulness"])
    batch = factories.ready_batch(items=1, guidelines="")
    page = wb.page
    wb.login(user, start=f"/b/{batch.pk}/")
    expect(page.locator("#responses .response-body.rendered strong")).to_have_count(2)
    page.reload()
    expect(page.locator("#responses .response-body.rendered strong")).to_have_count(2, timeout=2000)


def test_judge_pairwise_with_the_keyboard_only(wb: Workbench) -> None:
    user = factories.annotator(username="hank", tracks=["helpfulness"])
    batch = factories.ready_batch(items=3, guidelines="")
    page = wb.page
    wb.login(user, start=f"/b/{batch.pk}/")
    expect(wb.section).to_have_attribute("data-state", "item")
    first = wb.assignment_id()
    chosen, other = wb.response_id("B"), wb.response_id("A")
    wb.mark_window()

    page.keyboard.press("b")
    page.keyboard.press("w")
    expect(page.locator("input[name=chosen][data-label=B]")).to_be_checked()
    expect(page.locator("input[name=strength][value=better]")).to_be_checked()
    expect(page.locator("#responses > .response-card[data-label=B]")).to_have_class("response-card is-chosen")
    page.keyboard.press("Enter")

    wb.wait_for_new_item(first)
    second = wb.assignment_id()
    assert second != first
    expect(page).to_have_url(wb.url(f"/a/{second}/"))
    expect(page.locator("#submit-status")).to_have_text("Saved")
    assert wb.window_survived(), "the next item must come without a full page load"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

    judgments = list(Judgment.objects.filter(annotator=user))
    assert len(judgments) == 1
    judgment = judgments[0]
    assert judgment.assignment_id == first
    assert (judgment.chosen_id, judgment.rejected_id) == (chosen, other)
    assert judgment.strength == Strength.BETTER
    assert judgment.time_spent_ms > 0
    # The new item starts clean: nothing chosen, and its autosave is its own.
    expect(page.locator("input[name=chosen]:checked")).to_have_count(0)
    assert wb.local(f"wb:a:{first}") is None


def test_shortcuts_are_off_while_typing_and_dialogs_open(wb: Workbench) -> None:
    user = factories.annotator(username="ivy", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, guidelines="")
    page = wb.page
    wb.allow_console(r"status of 400 \(Bad Request\) @ .*/submit/$")
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()

    page.focus("#rationale")
    page.keyboard.type("a b q")
    expect(page.locator("#rationale")).to_have_value("a b q")
    expect(page.locator("input[name=chosen]:checked")).to_have_count(0)
    page.keyboard.press("Enter")  # a new line in the rationale, not a submit
    page.keyboard.press("Escape")  # leaves the textarea
    page.keyboard.press("a")
    expect(page.locator("input[name=chosen][data-label=A]")).to_be_checked()

    page.keyboard.press("Control+b")  # modifier combos are the browser's
    expect(page.locator("input[name=chosen][data-label=A]")).to_be_checked()

    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("b")
    expect(page.locator("input[name=chosen][data-label=A]")).to_be_checked()
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()

    page.keyboard.press("t")
    expect(page.locator("#responses .response-body.raw").first).to_be_visible()
    expect(page.locator(".conversation .raw").first).to_be_visible()
    page.keyboard.press("t")
    expect(page.locator("#responses .response-body.raw").first).to_be_hidden()
    page.locator("#responses .raw-toggle").first.press("Enter")  # one card only
    expect(page.locator("#responses .response-body.raw")).to_have_count(2)
    expect(page.locator("#responses .response-body.raw:visible")).to_have_count(1)

    # Ctrl+Enter in the rationale submits (a strength is still missing: the server says so).
    page.focus("#rationale")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".form-errors li[data-field=strength]")).to_be_visible()
    expect(page.locator(".form-errors")).to_be_focused()
    expect(page.locator("input[name=chosen][data-label=A]")).to_be_checked()
    expect(page.locator("#rationale")).to_have_value("a b q\n")
    assert wb.assignment_id() == first
    assert not Judgment.objects.exists()

    page.keyboard.press("r")
    page.keyboard.press("Enter")
    wb.wait_for_new_item(first)
    judgment = Judgment.objects.get(annotator=user)
    assert judgment.strength == Strength.NEGLIGIBLY_BETTER_OR_UNSURE
    assert judgment.rationale == "a b q"
