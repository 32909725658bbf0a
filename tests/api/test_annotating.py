"""Annotating through the API: guidelines, claim, submit (with Idempotency-Key), skip, flag."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.core.choices import Mode, Track
from annotate.judgments.models import Judgment
from tests import factories
from tests.api.conftest import make_token, token_client

pytestmark = pytest.mark.django_db


def read_guidelines(client: APIClient, batch_id: int) -> None:
    version = client.get(f"/api/v1/batches/{batch_id}/guidelines/").json()["version"]
    assert client.post(f"/api/v1/batches/{batch_id}/guidelines/", {"version": version}).status_code == 200


def claim(client: APIClient, batch_id: int) -> dict[str, Any]:
    response = client.post(f"/api/v1/batches/{batch_id}/claim/")
    assert response.status_code == 200, response.content
    return response.json()


def submit_url(assignment_id: int) -> str:
    return f"/api/v1/assignments/{assignment_id}/submit/"


@pytest.fixture
def alice_api(annotator: Any, api_as: Callable[[Any], APIClient]) -> APIClient:
    return api_as(annotator)


def test_claim_needs_the_guidelines_read_first(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=2)
    refused = alice_api.post(f"/api/v1/batches/{batch.pk}/claim/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "guidelines_unread"
    guidelines = alice_api.get(f"/api/v1/batches/{batch.pk}/guidelines/").json()
    assert guidelines["must_read"] is True and "Pick the more helpful" in guidelines["guidelines"]
    stale = alice_api.post(f"/api/v1/batches/{batch.pk}/guidelines/", {"version": guidelines["version"] + 1})
    assert stale.status_code == 409
    read_guidelines(alice_api, batch.pk)
    assert alice_api.post(f"/api/v1/batches/{batch.pk}/claim/").status_code == 200


def test_claim_gives_the_responses_in_shown_order_and_never_model_names(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=2)
    read_guidelines(alice_api, batch.pk)
    response = alice_api.post(f"/api/v1/batches/{batch.pk}/claim/")
    body = response.json()
    assignment = Assignment.objects.get(pk=body["id"])
    assert [r["id"] for r in body["responses"]] == [int(pk) for pk in assignment.positions]
    assert [r["label"] for r in body["responses"]] == ["A", "B"]
    assert [r["position"] for r in body["responses"]] == [0, 1]
    assert body["conversation"] == assignment.item.conversation
    assert body["mode"] == "pairwise" and body["status"] == "active"
    assert "<strong>bold</strong>" in body["responses"][0]["content_html"]
    text = response.content.decode()
    assert "model-0" not in text and "model-1" not in text
    assert "model_name" not in text and "sampling_config" not in text and "slot" not in text
    # Claiming again while holding the lease gives the same assignment back.
    assert claim(alice_api, batch.pk)["id"] == body["id"]


def test_submit_then_replay_with_the_same_idempotency_key_gives_one_judgment(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=2)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    answer = {"chosen": assignment["responses"][1]["id"], "strength": "better", "rationale": "B is right."}
    first = alice_api.post(submit_url(assignment["id"]), answer, HTTP_IDEMPOTENCY_KEY="k-123")
    assert first.status_code == 201, first.content
    again = alice_api.post(submit_url(assignment["id"]), answer, HTTP_IDEMPOTENCY_KEY="k-123")
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Judgment.objects.count() == 1
    judgment = Judgment.objects.get()
    assert judgment.chosen_id == answer["chosen"] and judgment.position_chosen == 1
    assert judgment.idempotency_key.startswith("hdr:")  # derived from the header: the body had none
    assert Assignment.objects.get(pk=assignment["id"]).status == AssignmentStatus.SUBMITTED


def test_the_same_key_with_another_body_is_refused_with_422(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=2)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    chosen = assignment["responses"][0]["id"]
    url = submit_url(assignment["id"])
    assert (
        alice_api.post(url, {"chosen": chosen, "strength": "better"}, HTTP_IDEMPOTENCY_KEY="k-1").status_code
        == 201
    )
    other = alice_api.post(url, {"chosen": chosen, "strength": "slightly_better"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_mismatch"
    assert Judgment.objects.get().strength == "better"


def test_a_key_used_on_another_path_is_a_mismatch(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=2)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    skip = alice_api.post(
        f"/api/v1/assignments/{assignment['id']}/skip/", {"reason": "unclear"}, HTTP_IDEMPOTENCY_KEY="k-9"
    )
    assert skip.status_code == 200
    response = alice_api.post(f"/api/v1/batches/{batch.pk}/claim/", HTTP_IDEMPOTENCY_KEY="k-9")
    assert response.status_code == 422


def test_the_body_key_alone_makes_a_replay_return_the_stored_judgment(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=2)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    answer = {
        "idempotency_key": "body-key-1",
        "chosen": assignment["responses"][0]["id"],
        "strength": "better",
    }
    first = alice_api.post(submit_url(assignment["id"]), answer)
    assert first.status_code == 201
    replay = alice_api.post(submit_url(assignment["id"]), answer)
    assert replay.status_code == 200 and replay.json() == first.json()
    assert Judgment.objects.get().idempotency_key == "body-key-1"


def test_a_submit_without_any_key_is_refused_naming_the_field(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=1)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    response = alice_api.post(submit_url(assignment["id"]), {"chosen": assignment["responses"][0]["id"]})
    assert response.status_code == 400
    assert "idempotency_key" in response.json()["error"]["fields"]


def test_an_invalid_judgment_is_a_400_naming_each_field(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=1)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    response = alice_api.post(
        submit_url(assignment["id"]), {"idempotency_key": "abcdefgh", "chosen": 999999, "strength": "huge"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"chosen", "strength"}
    assert Judgment.objects.count() == 0
    assert Assignment.objects.get(pk=assignment["id"]).status == AssignmentStatus.ACTIVE


def test_a_ranking_batch_takes_a_ranking(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=1, mode=Mode.RANKING, responses_per_item=4)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    ids = [r["id"] for r in assignment["responses"]]
    partial = alice_api.post(
        submit_url(assignment["id"]), {"idempotency_key": "rank-0001", "ranking": ids[:3]}
    )
    assert partial.status_code == 400 and "ranking" in partial.json()["error"]["fields"]
    ranked = alice_api.post(
        submit_url(assignment["id"]), {"idempotency_key": "rank-0001", "ranking": list(reversed(ids))}
    )
    assert ranked.status_code == 201
    assert ranked.json()["ranking"] == list(reversed(ids))


def test_the_safety_track_needs_a_label_for_every_response(safety_annotator: Any, api_as: Any) -> None:
    client = api_as(safety_annotator)
    batch = factories.ready_batch(items=1, track=Track.SAFETY)
    read_guidelines(client, batch.pk)
    assignment = claim(client, batch.pk)
    a, b = (r["id"] for r in assignment["responses"])
    url = submit_url(assignment["id"])
    answer: dict[str, Any] = {"idempotency_key": "safe-0001", "chosen": a, "strength": "better"}
    missing = client.post(url, {**answer, "safety_labels": {str(a): "safe"}})
    assert missing.status_code == 400 and "safety_labels" in missing.json()["error"]["fields"]
    unsafe_choice = client.post(url, {**answer, "safety_labels": {str(a): "unsafe", str(b): "safe"}})
    assert unsafe_choice.status_code == 400
    assert "confirm_unsafe_choice" in unsafe_choice.json()["error"]["fields"]
    done = client.post(url, {**answer, "safety_labels": {str(a): "safe", str(b): "unsafe"}})
    assert done.status_code == 201
    assert done.json()["safety_bin"] == "chosen_safe_other_unsafe"


def test_skip_needs_a_reason_and_frees_the_place(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=1)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    url = f"/api/v1/assignments/{assignment['id']}/skip/"
    blank = alice_api.post(url, {"reason": "  "})
    assert blank.status_code == 400 and "reason" in blank.json()["error"]["fields"]
    skipped = alice_api.post(url, {"reason": "Not in English", "flag": "broken", "note": "garbled"})
    assert skipped.status_code == 200, skipped.content
    assert skipped.json()["status"] == "skipped" and skipped.json()["flag"] == "broken"
    # Nothing else for alice: the batch's only item was hers once.
    assert alice_api.post(f"/api/v1/batches/{batch.pk}/claim/").status_code == 204
    late = alice_api.post(submit_url(assignment["id"]), {"idempotency_key": "late-0001", "chosen": 1})
    assert late.status_code == 409 and late.json()["error"]["code"] == "already_skipped"


def test_flag_without_skipping(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=1)
    read_guidelines(alice_api, batch.pk)
    assignment = claim(alice_api, batch.pk)
    flagged = alice_api.post(f"/api/v1/assignments/{assignment['id']}/flag/", {"flag": "offensive"})
    assert flagged.status_code == 200
    assert flagged.json()["flag"] == "offensive" and flagged.json()["status"] == "active"


def test_overlap_is_honoured_through_the_api(annotator: Any, other_annotator: Any, api_as: Any) -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    alice, bob = api_as(annotator), api_as(other_annotator)
    read_guidelines(alice, batch.pk)
    read_guidelines(bob, batch.pk)
    assert alice.post(f"/api/v1/batches/{batch.pk}/claim/").status_code == 200
    assert bob.post(f"/api/v1/batches/{batch.pk}/claim/").status_code == 204


def test_claims_on_a_paused_batch_are_refused(alice_api: APIClient) -> None:
    batch = factories.ready_batch(items=1, status="paused")
    read_guidelines(alice_api, batch.pk)
    response = alice_api.post(f"/api/v1/batches/{batch.pk}/claim/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "batch_not_open"


def test_an_admin_who_is_not_qualified_cannot_claim(batch_admin: Any, api_as: Any) -> None:
    batch = factories.ready_batch(items=1)
    response = api_as(batch_admin).post(f"/api/v1/batches/{batch.pk}/claim/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_qualified"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_write_once(annotator: Any) -> None:
    """Two submits with the same Idempotency-Key at the same moment: one judgment, the same answer twice."""
    batch = factories.ready_batch(items=1)
    secret = make_token(annotator)
    first = token_client(secret)
    read_guidelines(first, batch.pk)
    assignment = claim(first, batch.pk)
    answer = {"chosen": assignment["responses"][0]["id"], "strength": "better"}
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def post() -> None:
        try:
            client = token_client(secret)
            barrier.wait()
            results.append(client.post(submit_url(assignment["id"]), answer, HTTP_IDEMPOTENCY_KEY="same-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [201, 201, 201, 201]
    assert len({r.content for r in results}) == 1
    assert sum(1 for r in results if r.get("Idempotent-Replayed") == "true") == 3
    assert Judgment.objects.count() == 1
