"""Stored XSS through what admins and annotators type (batch names and descriptions, guidelines,
rationales, flag notes, usernames and names, endpoint names, sampling config labels and system prompts):
inert in the workbench and in the admin, in a real Chromium.

Every payload calls `window.__xss_marker(N)` if it ever runs; the trap is installed before each page's own
scripts. The admin's CSP allows inline script (Django's admin needs it), so there escaping is all that
stands between a payload and the browser: a miss would run here.
"""

from __future__ import annotations

from playwright.sync_api import expect

from annotate.assignments import services as assignments
from annotate.assignments.models import Assignment
from annotate.batches import services as batch_services
from annotate.core.models import AuditEvent
from annotate.judgments.services import judgment_submit
from tests import factories
from tests.browser.conftest import Workbench
from tests.xss_payloads import XSS_MARKER, XSS_PAYLOADS

INIT = f"window.__xss_calls = []; window.{XSS_MARKER} = (n) => window.__xss_calls.push(n);"


def short(limit: int) -> list[str]:
    return [p for p in XSS_PAYLOADS if len(p) <= limit and "__xss_marker" in p]


FIRE_EVENTS = """() => {
  for (const el of document.querySelectorAll('body *')) {
    for (const type of ['mouseover', 'mouseenter', 'focus', 'click']) {
      if (type === 'click' && (el.closest('a[href], button, input, form, label, select, summary'))) continue;
      el.dispatchEvent(new Event(type, {bubbles: false}));
    }
  }
}"""


def _check(wb: Workbench, path: str) -> None:
    """Load the page and fire the events that hostile markup would hook (mouseover, focus, click on
    plain elements): nothing may call the trap."""
    wb.goto(path)
    expect(wb.page.locator("body")).to_be_visible()
    assert wb.page.evaluate("window.__xss_calls") == [], path
    wb.page.evaluate(FIRE_EVENTS)
    assert wb.page.evaluate("window.__xss_calls") == [], path


def test_typed_text_is_inert_in_the_workbench_and_the_admin(wb: Workbench) -> None:
    names = short(200)
    labels = short(100)
    assert len(names) >= 15 and len(labels) >= 8
    hostile_user = factories.annotator(
        username=names[0][:150], first_name=labels[1][:150], last_name=labels[2][:150]
    )
    endpoint = factories.ModelEndpointFactory(name=labels[3])
    configs = [
        factories.SamplingConfigFactory(endpoint=endpoint, label=label, system_prompt=XSS_PAYLOADS[i])
        for i, label in enumerate(labels[4:8])
    ]
    batches = []
    for n, name in enumerate(names[:6]):
        batch = factories.ready_batch(
            items=2,
            name=name,
            description=XSS_PAYLOADS[n + 10],
            guidelines="\n\n".join(XSS_PAYLOADS[n * 8 : n * 8 + 8]),
        )
        batch.sampling_configs.set(configs[:2])
        batches.append(batch)
    # Judgments with hostile rationales and flag notes, by the hostile user.
    for n, batch in enumerate(batches[:3]):
        assignments.guidelines_mark_seen(annotator=hostile_user, batch=batch)
        assignment = assignments.assignment_claim_next(annotator=hostile_user, batch_id=batch.pk)
        assert assignment is not None
        note = XSS_PAYLOADS[n + 20][:500]
        assignments.assignment_flag(
            annotator=hostile_user, assignment_id=assignment.pk, flag="broken", note=note
        )
        rationale = "\n".join(XSS_PAYLOADS[n * 5 : n * 5 + 5])
        answer = factories.pairwise_answer(assignment, f"xss-key-{n}-abcdef", rationale=rationale)
        judgment_submit(annotator=hostile_user, assignment_id=assignment.pk, data=answer)
    admin = factories.UserFactory(username="xss_admin", is_staff=True, is_superuser=True)
    for batch in batches[:3]:  # audit events whose object names are hostile
        batch_services.batch_set_status(batch_id=batch.pk, status="paused", actor=hostile_user)
        batch_services.batch_set_status(batch_id=batch.pk, status="open", actor=admin)
    judgment = hostile_user.judgments.first()
    assignment = Assignment.objects.filter(annotator=hostile_user).first()
    assert judgment is not None and assignment is not None

    wb.page.add_init_script(INIT)
    wb.login(hostile_user, start="/")
    home = wb.page.locator("main")
    for batch in batches:
        expect(home.get_by_text(batch.name, exact=True).first).to_be_visible()
    assert wb.page.evaluate("window.__xss_calls") == []
    for batch in batches[3:]:
        _check(wb, f"/b/{batch.pk}/guidelines/")
        _check(wb, f"/b/{batch.pk}/")
    _check(wb, "/accounts/tokens/")

    wb.context.clear_cookies()
    wb.goto("/accounts/login/?next=/admin/")
    wb.page.fill("#id_username", admin.username)
    wb.page.fill("#id_password", factories.PASSWORD)
    with wb.page.expect_navigation():
        wb.page.press("#id_password", "Enter")
    expect(wb.page.locator("#site-name")).to_be_visible()
    for path in [
        "/admin/",
        "/admin/batches/batch/",
        *(f"/admin/batches/batch/{b.pk}/change/" for b in batches[:2]),
        "/admin/accounts/user/",
        f"/admin/accounts/user/{hostile_user.pk}/change/",
        "/admin/accounts/qualification/",
        "/admin/endpoints/modelendpoint/",
        f"/admin/endpoints/modelendpoint/{endpoint.pk}/change/",
        "/admin/endpoints/samplingconfig/",
        f"/admin/endpoints/samplingconfig/{configs[0].pk}/change/",
        "/admin/judgments/judgment/",
        f"/admin/judgments/judgment/{judgment.pk}/change/",
        "/admin/assignments/assignment/",
        f"/admin/assignments/assignment/{assignment.pk}/change/",
        "/admin/batches/item/",
        "/admin/core/auditevent/",
        f"/admin/core/auditevent/{AuditEvent.objects.first().pk}/change/",  # type: ignore[union-attr]
    ]:
        _check(wb, path)
    # The batch admin's own search box echoes the query back.
    _check(wb, "/admin/batches/batch/?q=" + "%3Cscript%3Ewindow.__xss_marker(1)%3C%2Fscript%3E")
    assert wb.page.evaluate("typeof window.__xss_marker") == "function"  # the trap was armed all along
