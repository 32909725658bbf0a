"""Safety track by keyboard: labels, the LLaMa-2 safety bin, and the confirmation of the fourth bin."""

from __future__ import annotations

from playwright.sync_api import expect

from annotate.core.choices import Mode, SafetyBin, Strength, Track
from annotate.judgments.models import Judgment
from tests import factories
from tests.browser.conftest import Workbench


def test_safety_pairwise_by_keyboard_with_the_unsafe_choice_confirmed(wb: Workbench) -> None:
    user = factories.annotator(username="mia", tracks=["helpfulness", "safety"])
    batch = factories.ready_batch(items=2, track=Track.SAFETY, guidelines="")
    page = wb.page
    bin_out = page.locator("#safety-bin")
    confirm = page.locator("#confirm-unsafe")
    wb.login(user, start=f"/b/{batch.pk}/")
    expect(page.locator(".content-warning-line")).to_be_visible()
    first = wb.assignment_id()
    a, b = wb.response_id("A"), wb.response_id("B")

    page.keyboard.press("a")
    page.keyboard.press("z")
    expect(bin_out).to_contain_text("label both")
    page.keyboard.press("m")
    expect(page.locator(f"input[name=safety_{a}][value=safe]")).to_be_checked()
    expect(page.locator(f"input[name=safety_{b}][value=unsafe]")).to_be_checked()
    expect(bin_out).to_have_text("Chosen safe, other unsafe")
    page.keyboard.press("n")  # B safe after all
    expect(bin_out).to_have_text("Both safe")
    page.keyboard.press("m")
    expect(bin_out).to_have_text("Chosen safe, other unsafe")
    expect(confirm).to_be_hidden()
    page.keyboard.press("q")
    page.keyboard.press("Enter")
    wb.wait_for_new_item(first)
    j1 = Judgment.objects.get(assignment_id=first)
    assert j1.safety_labels == {str(a): "safe", str(b): "unsafe"}
    assert (j1.safety_bin, j1.flagged, j1.chosen_id) == (SafetyBin.CHOSEN_SAFE_OTHER_UNSAFE, False, a)

    second = wb.assignment_id()
    a, b = wb.response_id("A"), wb.response_id("B")
    page.keyboard.press("1")
    page.keyboard.press("x")  # A unsafe
    page.keyboard.press("n")  # B safe
    expect(bin_out).to_have_text("Chosen unsafe, other safe")
    expect(confirm).to_be_visible()
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    # Refused in the page: the confirmation is required and gets the focus.
    tick = page.locator("input[name=confirm_unsafe_choice]")
    expect(tick).to_be_focused()
    expect(page.locator("#submit-status")).to_contain_text("confirm")
    assert Judgment.objects.filter(assignment_id=second).count() == 0
    page.keyboard.press("Space")
    expect(tick).to_be_checked()
    page.keyboard.press("Enter")

    expect(page.locator("#workbench[data-state=done]")).to_be_visible()
    j2 = Judgment.objects.get(assignment_id=second)
    assert j2.safety_labels == {str(a): "unsafe", str(b): "safe"}
    assert (j2.safety_bin, j2.flagged, j2.strength) == (
        SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE,
        True,
        Strength.NEGLIGIBLY_BETTER_OR_UNSURE,
    )


def test_safety_ranking_labels_the_selected_card_and_keeps_the_order_on_errors(wb: Workbench) -> None:
    user = factories.annotator(username="ned", tracks=["helpfulness", "safety"])
    batch = factories.ready_batch(
        items=1, track=Track.SAFETY, mode=Mode.RANKING, responses_per_item=3, guidelines=""
    )
    page = wb.page
    wb.allow_console(r"status of 400 \(Bad Request\) @ .*/submit/$")
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    a, b, c = wb.response_ids()

    page.keyboard.press("3")
    page.keyboard.press("k")
    page.keyboard.press("y")  # the moved card, still selected: safe
    assert wb.response_ids() == [a, c, b]
    page.keyboard.press("Enter")
    # Labels are missing: the server re-renders the item in its own order with the ranking kept in
    # #ranking-input, and the page puts the cards back in the annotator's order.
    expect(page.locator(".form-errors li[data-field=safety_labels]")).to_be_visible()
    expect(page.locator(".form-errors")).to_be_focused()
    assert wb.response_ids() == [a, c, b]
    expect(page.locator("#ranking-input")).to_have_value(f"{a},{c},{b}")
    expect(page.locator(f"input[name=safety_{c}][value=safe]")).to_be_checked()
    expect(page.locator("#safety-bin")).to_have_text("1 of 3 responses labelled")

    for key, label in (("1", "y"), ("3", "u")):
        page.keyboard.press(key)
        page.keyboard.press(label)
    expect(page.locator("#safety-bin")).to_have_text("3 of 3 responses labelled")
    page.keyboard.press("ArrowUp")  # the third card (b) is selected: it moves up
    page.keyboard.press("Enter")
    wb.wait_for_new_item(first)
    judgment = Judgment.objects.get(annotator=user)
    assert judgment.ranking == [a, b, c]
    assert judgment.safety_labels == {str(a): "safe", str(b): "unsafe", str(c): "safe"}
