"""Nothing the annotator answered is lost or stored twice: reloads, double submits, a dropped connection,
an expired session."""

from __future__ import annotations

from playwright.sync_api import expect

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.core.choices import Strength
from annotate.judgments.models import Judgment
from tests import factories
from tests.browser.conftest import Workbench


def test_a_reload_mid_item_restores_the_answer_and_keeps_the_clock(wb: Workbench) -> None:
    user = factories.annotator(username="olga", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, guidelines="")
    page = wb.page
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    chosen = wb.response_id("B")

    page.keyboard.press("b")
    page.keyboard.press("e")
    page.fill("#rationale", "B answers the question; A wanders off.")
    page.wait_for_function(
        "k => JSON.parse(localStorage.getItem(k) || '{}').rationale?.length > 0", arg=f"wb:a:{first}"
    )
    page.wait_for_timeout(300)  # let the clock run a little before the reload
    page.reload()

    expect(page.locator("input[name=chosen][data-label=B]")).to_be_checked()
    expect(page.locator("input[name=strength][value=slightly_better]")).to_be_checked()
    expect(page.locator("#rationale")).to_have_value("B answers the question; A wanders off.")
    expect(page.locator("#responses > .response-card[data-label=B]")).to_have_class("response-card is-chosen")
    kept = wb.local(f"wb:a:{first}")
    assert kept["chosen"] == str(chosen) and kept["timeMs"] >= 300

    page.keyboard.press("Enter")
    wb.wait_for_new_item(first)
    judgment = Judgment.objects.get(annotator=user)
    assert (judgment.chosen_id, judgment.strength) == (chosen, Strength.SLIGHTLY_BETTER)
    assert judgment.rationale == "B answers the question; A wanders off."
    assert judgment.time_spent_ms >= 300
    assert wb.local(f"wb:a:{first}") is None


def test_double_click_and_double_submit_store_one_judgment(wb: Workbench) -> None:
    user = factories.annotator(username="pia", tracks=["helpfulness"])
    batch = factories.ready_batch(items=3, guidelines="")
    page = wb.page
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    wb.login(user, start=f"/b/{batch.pk}/")
    posts.clear()
    first = wb.assignment_id()

    page.keyboard.press("b")
    page.keyboard.press("q")
    page.dblclick("#submit-button")
    wb.wait_for_new_item(first)
    second = wb.assignment_id()
    assert Judgment.objects.filter(annotator=user).count() == 1
    assert posts == [wb.url(f"/a/{first}/submit/")]

    page.keyboard.press("a")
    page.keyboard.press("q")
    page.evaluate(
        "() => { const f = document.querySelector('#judgment-form'); f.requestSubmit(); f.requestSubmit(); }"
    )
    wb.wait_for_new_item(second)
    assert Judgment.objects.filter(annotator=user).count() == 2
    assert posts[1:] == [wb.url(f"/a/{second}/submit/")]
    assert Judgment.objects.get(assignment_id=second).chosen_id is not None
    # The third item was not touched by a stray second submit.
    assert Assignment.objects.get(pk=wb.assignment_id()).status == AssignmentStatus.ACTIVE


def test_offline_submit_is_kept_and_sent_when_the_connection_is_back(wb: Workbench) -> None:
    user = factories.annotator(username="quinn", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, guidelines="")
    page = wb.page
    wb.allow_console(r"ERR_INTERNET_DISCONNECTED")
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    key = page.input_value("input[name=idempotency_key]")
    status = page.locator("#connection-status")

    page.keyboard.press("a")
    page.keyboard.press("w")
    wb.context.set_offline(True)
    page.keyboard.press("Enter")
    expect(status).to_contain_text(
        "Offline — your answer is kept and will be sent when the connection is back"
    )
    kept = wb.local("wb:pending")
    assert kept["key"] == key and kept["assignment"] == str(first)
    assert ["chosen", str(wb.response_id("A"))] in kept["fields"]
    assert not any(name == "csrfmiddlewaretoken" for name, _ in kept["fields"])
    assert wb.assignment_id() == first
    assert not Judgment.objects.exists()

    wb.context.set_offline(False)
    wb.wait_for_new_item(first)
    expect(status).to_be_hidden()
    judgment = Judgment.objects.get(annotator=user)
    assert (judgment.assignment_id, judgment.idempotency_key) == (first, key)
    assert wb.local("wb:pending") is None


def test_an_expired_session_keeps_the_answer_until_signed_in_again(wb: Workbench) -> None:
    user = factories.annotator(username="rosa", tracks=["helpfulness"])
    batch = factories.ready_batch(items=2, guidelines="")
    page = wb.page
    wb.allow_console(r"status of 401 \(Unauthorized\) @ .*/submit/$")
    wb.login(user, start=f"/b/{batch.pk}/")
    first = wb.assignment_id()
    key = page.input_value("input[name=idempotency_key]")
    status = page.locator("#connection-status")

    page.keyboard.press("b")
    page.keyboard.press("r")
    wb.context.clear_cookies(name="sessionid")
    page.keyboard.press("Enter")
    expect(status).to_contain_text(
        "Your session has ended — sign in again; your answer is kept and will be sent"
    )
    link = status.get_by_role("link", name="Sign in again")
    expect(link).to_have_attribute("href", f"/accounts/login/?next=%2Fa%2F{first}%2F")
    assert wb.local("wb:pending")["key"] == key
    assert not Judgment.objects.exists()

    link.click()
    expect(page.locator("#connection-status")).to_contain_text("will be sent once you have signed in")
    page.fill("#id_username", user.username)
    page.fill("#id_password", factories.PASSWORD)
    page.press("#id_password", "Enter")
    # Back on the item page, the kept answer goes out at once and the next item is swapped in.
    page.wait_for_url(wb.url(f"/a/{first}/"))
    wb.wait_for_new_item(first)
    expect(page).not_to_have_url(wb.url(f"/a/{first}/"))
    judgment = Judgment.objects.get(annotator=user)
    assert (judgment.assignment_id, judgment.idempotency_key) == (first, key)
    assert judgment.strength == Strength.NEGLIGIBLY_BETTER_OR_UNSURE
    assert wb.local("wb:pending") is None
