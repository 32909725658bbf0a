"""The workbench pages over HTTP (Django's test client): access rules, the submit protocol, errors."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.services import batch_update_guidelines
from annotate.core.choices import Track
from annotate.judgments.models import Judgment
from tests import factories

pytestmark = pytest.mark.django_db
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def start(client: Client, batch_id: int, fetch: bool = True):  # type: ignore[no-untyped-def]
    """Open a batch past its guidelines; returns the item response."""
    client.post(reverse("workbench:guidelines", args=[batch_id]))
    return client.get(reverse("workbench:batch", args=[batch_id]), **(FETCH if fetch else {}))


def page_ids(html: str) -> tuple[int, list[int]]:
    assignment = int(re.search(r'data-assignment="(\d+)"', html).group(1))  # type: ignore[union-attr]
    responses = [int(x) for x in dict.fromkeys(re.findall(r'data-response-id="(\d+)"', html))]
    return assignment, responses


def test_home_lists_only_open_batches_of_my_tracks(annotator_client: Client) -> None:
    mine = factories.ready_batch(items=1, name="Helpful one")
    factories.ready_batch(items=1, name="Safety one", track=Track.SAFETY)
    factories.ready_batch(items=1, name="Closed one", status="closed")
    body = annotator_client.get(reverse("workbench:home")).content.decode()
    assert mine.name in body
    assert "Safety one" not in body
    assert "Closed one" not in body


def test_safety_batches_stay_hidden_until_consent(db: None) -> None:
    user = factories.UserFactory(username="dave")
    from annotate.accounts.models import Qualification

    Qualification.objects.create(user=user, track=Track.SAFETY)
    batch = factories.ready_batch(items=1, name="Risky prompts v1", track=Track.SAFETY)
    client = Client()
    client.force_login(user)
    home = client.get(reverse("workbench:home")).content.decode()
    assert "Risky prompts v1" not in home and "content warning" in home
    assert client.get(reverse("workbench:batch", args=[batch.pk])).status_code == 404
    assert client.post(reverse("workbench:safety_consent"), {}).status_code == 400
    assert client.post(reverse("workbench:safety_consent"), {"agree": "yes"}).status_code == 302
    assert "Risky prompts v1" in client.get(reverse("workbench:home")).content.decode()


def test_a_batch_of_another_track_is_a_404(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=1, track=Track.SAFETY)
    assert annotator_client.get(reverse("workbench:batch", args=[batch.pk])).status_code == 404
    assert annotator_client.get(reverse("workbench:guidelines", args=[batch.pk])).status_code == 404


def test_guidelines_come_first_and_again_once_after_a_new_version(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=3, overlap=1)
    url = reverse("workbench:batch", args=[batch.pk])
    assert annotator_client.get(url)["Location"] == reverse("workbench:guidelines", args=[batch.pk])
    annotator_client.post(reverse("workbench:guidelines", args=[batch.pk]))
    assert annotator_client.get(url)["Location"].startswith("/a/")
    batch_update_guidelines(batch_id=batch.pk, guidelines="New rules")
    assert annotator_client.get(url)["Location"] == reverse("workbench:guidelines", args=[batch.pk])
    annotator_client.post(reverse("workbench:guidelines", args=[batch.pk]))
    assert annotator_client.get(url)["Location"].startswith("/a/")


def test_submit_by_fetch_answers_with_the_next_item(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=2)
    assignment_id, responses = page_ids(start(annotator_client, batch.pk).content.decode())
    data = {"idempotency_key": "key-00000001", "chosen": responses[1], "strength": "slightly_better"}
    response = annotator_client.post(reverse("workbench:submit", args=[assignment_id]), data, **FETCH)
    assert response.status_code == 200
    judgment = Judgment.objects.get(pk=response["X-Judgment-Id"])
    assert (judgment.chosen_id, judgment.rejected_id, judgment.strength) == (
        responses[1],
        responses[0],
        "slightly_better",
    )
    assert judgment.position_chosen == 1
    next_id, _ = page_ids(response.content.decode())
    assert next_id != assignment_id
    assert response["X-Page-Url"] == reverse("workbench:assignment", args=[next_id])


def test_a_replayed_submit_stores_one_judgment(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=3)
    assignment_id, responses = page_ids(start(annotator_client, batch.pk).content.decode())
    data = {"idempotency_key": "key-00000002", "chosen": responses[0], "strength": "better"}
    url = reverse("workbench:submit", args=[assignment_id])
    first = annotator_client.post(url, data, **FETCH)
    second = annotator_client.post(url, data, **FETCH)
    assert first["X-Judgment-Id"] == second["X-Judgment-Id"]
    assert (first["X-Replayed"], second["X-Replayed"]) == ("0", "1")
    assert Judgment.objects.count() == 1
    assert page_ids(first.content.decode())[0] == page_ids(second.content.decode())[0], "same next item"


def test_bad_input_re_renders_the_item_with_messages_and_choices_kept(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=1)
    assignment_id, responses = page_ids(start(annotator_client, batch.pk).content.decode())
    data = {"idempotency_key": "key-00000003", "chosen": responses[0], "rationale": "kept <b>text</b>"}
    response = annotator_client.post(reverse("workbench:submit", args=[assignment_id]), data, **FETCH)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-field="strength"' in body
    assert re.search(rf'value="{responses[0]}"[^>]*checked', body), "the chosen response stays selected"
    assert "kept &lt;b&gt;text&lt;/b&gt;" in body
    assert 'value="key-00000003"' in body, "the same idempotency key is kept"
    assert not Judgment.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"chosen": "abc", "strength": "better"},
        {"chosen": "999999", "strength": "better"},
        {"strength": "much"},
        {"time_spent_ms": "-5"},
        {"time_spent_ms": "soon"},
        {"ranking": "1,2"},
        {"safety_1": "maybe"},
    ],
)
def test_malformed_fields_give_400_never_500(annotator_client: Client, data: dict[str, str]) -> None:
    batch = factories.ready_batch(items=1)
    assignment_id, _ = page_ids(start(annotator_client, batch.pk).content.decode())
    response = annotator_client.post(
        reverse("workbench:submit", args=[assignment_id]),
        {"idempotency_key": "key-00000004", **data},
        **FETCH,
    )
    assert response.status_code == 400
    assert "form-errors" in response.content.decode()


def test_a_plain_form_post_redirects_to_the_next_item(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=2)
    redirect = start(annotator_client, batch.pk, fetch=False)
    assert redirect.status_code == 302
    assignment_id, responses = page_ids(annotator_client.get(redirect["Location"]).content.decode())
    data = {"idempotency_key": "key-00000005", "chosen": responses[0], "strength": "better"}
    response = annotator_client.post(reverse("workbench:submit", args=[assignment_id]), data)
    assert response.status_code == 302
    assert response["Location"] == reverse("workbench:batch", args=[batch.pk])


def test_another_annotators_assignment_is_a_404(annotator_client: Client, other_annotator) -> None:  # type: ignore[no-untyped-def]
    batch = factories.ready_batch(items=1)
    client = Client()
    client.force_login(other_annotator)
    assignment_id, responses = page_ids(start(client, batch.pk).content.decode())
    assert annotator_client.get(reverse("workbench:assignment", args=[assignment_id])).status_code == 404
    data = {"idempotency_key": "key-00000006", "chosen": responses[0], "strength": "better"}
    assert (
        annotator_client.post(reverse("workbench:submit", args=[assignment_id]), data, **FETCH).status_code
        == 404
    )


def test_skip_needs_a_reason_and_frees_the_item(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=2)
    assignment_id, _ = page_ids(start(annotator_client, batch.pk).content.decode())
    url = reverse("workbench:skip", args=[assignment_id])
    assert annotator_client.post(url, {"reason": ""}, **FETCH).status_code == 400
    response = annotator_client.post(url, {"reason": "Cannot judge", "flag": "broken"}, **FETCH)
    assert response.status_code == 200
    assignment = Assignment.objects.get(pk=assignment_id)
    assert (assignment.status, assignment.flag, assignment.item.taken) == (
        AssignmentStatus.SKIPPED,
        "broken",
        0,
    )


def test_an_expired_session_gets_401_json_from_script_requests(client: Client, annotator) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("workbench:submit", args=[1]), {}, **FETCH)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "login_required"
    assert client.get(reverse("workbench:home"))["Location"].startswith("/accounts/login/")


def test_a_missing_csrf_token_is_refused_with_json_for_scripts(annotator) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    response = client.post(reverse("workbench:submit", args=[1]), {}, **FETCH)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


def test_the_batch_done_page_when_nothing_is_left(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=0)
    response = start(annotator_client, batch.pk, fetch=False)
    assert response.status_code == 200
    assert "Batch done" in response.content.decode()


def test_pages_carry_a_csp_without_inline_script(annotator_client: Client) -> None:
    csp = annotator_client.get(reverse("workbench:home"))["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp


def test_model_names_are_never_shown_to_annotators(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=1)
    body = start(annotator_client, batch.pk).content.decode()
    assert "model-0" not in body and "model-1" not in body


def test_login_is_rate_limited(client: Client, annotator, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_ATTEMPTS_PER_WINDOW = 3
    from django.core.cache import cache

    cache.clear()
    statuses = [
        client.post(reverse("login"), {"username": annotator.username, "password": "wrong"}).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    right = client.post(reverse("login"), {"username": annotator.username, "password": factories.PASSWORD})
    assert right.status_code == 429, "even the right password waits for the window"
    cache.clear()
