"""Skip and flag dialogs, by keyboard; the conflict section's link to the next item."""

from __future__ import annotations

from playwright.sync_api import expect

from annotate.assignments import services as assignments
from annotate.assignments.models import Assignment, AssignmentFlag, AssignmentStatus
from annotate.judgments.models import Judgment
from tests import factories
from tests.browser.conftest import Workbench


def test_flag_then_skip_with_the_keyboard(wb: Workbench) -> None:
    user = factories.annotator(username="uma", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, guidelines="")
    page = wb.page
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    wb.mark_window()

    page.keyboard.press("f")
    dialog = page.locator("#flag-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("s")  # shortcuts are off while a dialog is open
    expect(page.locator("#skip-dialog")).to_be_hidden()
    page.focus("#flag-dialog input[name=flag][value=broken]")
    page.keyboard.press("Space")
    page.focus("#flag-note")
    page.keyboard.type("Response B stops mid-sentence")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#submit-status")).to_contain_text("Flagged as broken")
    assignment = Assignment.objects.get(pk=first)
    assert (assignment.flag, assignment.flag_note) == (AssignmentFlag.BROKEN, "Response B stops mid-sentence")
    assert assignment.status == AssignmentStatus.ACTIVE
    assert wb.assignment_id() == first

    page.keyboard.press("s")
    expect(page.locator("#skip-dialog")).to_be_visible()
    expect(page.locator("#skip-reason")).to_be_focused()
    page.keyboard.type("The prompt is unclear")
    page.keyboard.press("Enter")
    wb.wait_for_new_item(first)
    assert wb.window_survived()
    assignment.refresh_from_db()
    assert (assignment.status, assignment.skip_reason) == (AssignmentStatus.SKIPPED, "The prompt is unclear")
    assert not Judgment.objects.exists()

    page.keyboard.press("s")
    page.keyboard.press("Escape")
    expect(page.locator("#skip-dialog")).to_be_hidden()
    page.locator("[data-action=skip]").click()
    expect(page.locator("#skip-dialog")).to_be_visible()
    page.locator("#skip-dialog [data-action=close-dialog]").click()
    expect(page.locator("#skip-dialog")).to_be_hidden()
    expect(page.locator("[data-action=skip]")).to_be_focused()


def test_a_conflict_is_shown_and_the_next_item_loads_in_place(wb: Workbench) -> None:
    user = factories.annotator(username="vic", tracks=["helpfulness"])
    batch = factories.ready_batch(items=3, guidelines="")
    page = wb.page
    wb.allow_console(r"status of 409 \(Conflict\) @ .*/submit/$")
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    wb.mark_window()
    # The item is skipped elsewhere (another tab) while this page still shows it.
    assignments.assignment_skip(annotator=user, assignment_id=first, reason="other tab")

    page.keyboard.press("a")
    page.keyboard.press("w")
    page.keyboard.press("Enter")
    conflict = page.locator("#workbench[data-state=conflict]")
    expect(conflict).to_contain_text("You skipped this item.")
    expect(conflict.locator("a[data-next-item]")).to_be_focused()
    assert wb.local("wb:pending") is None and wb.local(f"wb:a:{first}") is None

    page.keyboard.press("Enter")
    expect(page.locator("#workbench[data-state=item]")).to_be_visible()
    assert wb.assignment_id() != first
    expect(page).to_have_url(wb.url(f"/a/{wb.assignment_id()}/"))
    assert wb.window_survived()
    assert not Judgment.objects.exists()
