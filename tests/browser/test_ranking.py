"""Ranking K responses: by keyboard, by drag and drop; an untouched order is never taken as an answer."""

from __future__ import annotations

from playwright.sync_api import expect

from annotate.core.choices import Mode
from annotate.judgments.models import Judgment
from tests import factories
from tests.browser.conftest import Workbench


def _badges(wb: Workbench) -> list[str]:
    return wb.page.eval_on_selector_all(
        "#responses > .response-card",
        "els => els.map(e => e.querySelector('.rank-badge').textContent + ' '"
        " + e.querySelector('h2 kbd').textContent)",
    )


def test_rank_four_responses_with_the_keyboard(wb: Workbench) -> None:
    user = factories.annotator(username="jude", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, mode=Mode.RANKING, responses_per_item=4, guidelines="")
    page = wb.page
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    a, b, c, d = wb.response_ids()
    expect(page.locator("#ranking-input")).to_have_value("")

    page.keyboard.press("3")
    selected = page.locator(f"#response-{c}")
    expect(selected).to_be_focused()
    expect(selected).to_have_class("response-card is-selected")
    expect(page.locator("#ranking-input")).to_have_value("")  # selecting is not ranking
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(selected).to_be_focused()
    assert wb.response_ids() == [c, a, b, d]
    expect(page.locator("#ranking-status")).to_contain_text("moved to rank 1 of 4")
    page.keyboard.press("4")
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert wb.response_ids() == [c, a, d, b]
    page.keyboard.press("2")
    page.keyboard.press("ArrowDown")
    assert wb.response_ids() == [c, d, a, b]
    assert _badges(wb) == ["#1 1", "#2 2", "#3 3", "#4 4"]

    # A reload puts the cards back in the annotator's order (autosave), ranking kept.
    page.reload()
    assert wb.response_ids() == [c, d, a, b]
    expect(page.locator("#ranking-input")).to_have_value(f"{c},{d},{a},{b}")
    assert _badges(wb) == ["#1 1", "#2 2", "#3 3", "#4 4"]
    page.keyboard.press("o")
    expect(page.locator("#ranking-input")).to_have_value(f"{c},{d},{a},{b}")
    expect(page.locator("#ranking-status")).to_contain_text("Order confirmed")

    page.keyboard.press("Enter")
    wb.wait_for_new_item(first)
    judgment = Judgment.objects.get(annotator=user)
    assert judgment.ranking == [c, d, a, b]
    assert judgment.chosen_id is None


def test_rank_by_drag_and_drop_and_refuse_an_untouched_order(wb: Workbench) -> None:
    user = factories.annotator(username="kim", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, mode=Mode.RANKING, responses_per_item=4, guidelines="")
    page = wb.page
    wb.allow_console(r"status of 400 \(Bad Request\) @ .*/submit/$")
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    a, b, c, d = wb.response_ids()

    # Submitting the order as shown (never touched) is refused: it would record position bias.
    page.keyboard.press("Enter")
    expect(page.locator(".form-errors li[data-field=ranking]")).to_be_visible()
    assert not Judgment.objects.exists()
    assert wb.response_ids() == [a, b, c, d]

    # Drag A onto the lower half of C: A lands after C.
    target = page.locator(f"#response-{c}")
    box = target.bounding_box()
    assert box is not None
    page.drag_and_drop(
        f"#response-{a} .response-head h2",
        f"#response-{c}",
        target_position={"x": box["width"] / 2, "y": box["height"] - 8},
    )
    assert wb.response_ids() == [b, c, a, d]
    expect(page.locator("#ranking-input")).to_have_value(f"{b},{c},{a},{d}")
    assert _badges(wb) == ["#1 1", "#2 2", "#3 3", "#4 4"]
    expect(page.locator(f"#response-{a} .rank-badge")).to_have_text("#3")

    # And D onto the upper half of B: D becomes first.
    page.drag_and_drop(
        f"#response-{d} .response-head h2", f"#response-{b}", target_position={"x": 40, "y": 6}
    )
    assert wb.response_ids() == [d, b, c, a]

    # The up/down buttons work too.
    page.click(f"#response-{a} [data-move=up]")
    assert wb.response_ids() == [d, b, a, c]
    expect(page.locator("#ranking-input")).to_have_value(f"{d},{b},{a},{c}")

    page.click("#submit-button")
    wb.wait_for_new_item(first)
    assert Judgment.objects.get(annotator=user).ranking == [d, b, a, c]
