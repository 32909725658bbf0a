"""The live-prompt pages over HTTP: write a prompt, follow its progress, judge, continue, end; errors,
replays, CSRF and access. Responses are generated in process through the real task service against the
loopback stub (the real-worker flow is in test_live_worker.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Dialogue, DialogueStatus, Item, ItemStatus, Response, ResponseStatus
from annotate.endpoints import tasks
from tests import factories
from tests.stub_openai import Reply, StubOpenAI

pytestmark = pytest.mark.django_db
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr(tasks.response_generate, "delay", lambda response_id: ids.append(response_id))
    return ids


@pytest.fixture
def batch(stub: StubOpenAI, allow_loopback: None, redis_client: Any) -> Any:
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, model="stub-7b", timeout_s=2.0)
    configs = [factories.SamplingConfigFactory(endpoint=endpoint, label=f"t{i}") for i in range(2)]
    batch = factories.BatchFactory(prompt_source="live", name="Live week 1")
    batch.sampling_configs.set(configs)
    return batch


def generate(item: Item, only: int | None = None) -> None:
    factories.generate_pending(item.pk, only=only)


def read_guidelines(client: Client, batch: Any) -> None:
    client.post(reverse("workbench:guidelines", args=[batch.pk]))


def write(client: Client, batch: Any, prompt: str, key: str = "prompt-key-01") -> Any:
    return client.post(
        reverse("workbench:live_prompt", args=[batch.pk]), {"prompt": prompt, "idempotency_key": key}
    )


def only_dialogue() -> Dialogue:
    return Dialogue.objects.get()


def test_a_live_batch_starts_at_the_prompt_page_with_its_own_small_script(
    annotator_client: Client, batch: Any
) -> None:
    batch_url = reverse("workbench:batch", args=[batch.pk])
    assert annotator_client.get(batch_url)["Location"] == reverse("workbench:guidelines", args=[batch.pk])
    read_guidelines(annotator_client, batch)
    prompt_url = reverse("workbench:live_prompt", args=[batch.pk])
    assert annotator_client.get(batch_url)["Location"] == prompt_url
    assert annotator_client.get(batch_url, **FETCH)["X-Navigate"] == prompt_url
    body = annotator_client.get(prompt_url).content.decode()
    assert 'name="prompt"' in body and re.search(r'name="idempotency_key" value="[0-9a-f]{32}"', body)
    assert "js/live.js" in body and "css/live.css" in body
    assert 'id="workbench"' not in body  # the item page's single-key shortcuts stay off here
    item_page = factories.ready_batch(items=1, guidelines="")
    assert (
        "js/live.js"
        not in annotator_client.get(
            reverse("workbench:batch", args=[item_page.pk]), follow=True
        ).content.decode()
    )


def test_an_imported_batch_has_no_prompt_page(annotator_client: Client) -> None:
    batch = factories.ready_batch(items=1)
    assert annotator_client.get(reverse("workbench:live_prompt", args=[batch.pk])).status_code == 404


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "Write a prompt first: it is empty."),
        ("  ", "Write a prompt first: it is empty."),
        ("x" * 31, "too long: 31 characters, at most 30"),
    ],
)
def test_a_bad_prompt_is_shown_again_with_its_message(
    annotator_client: Client, batch: Any, settings: Any, prompt: str, message: str
) -> None:
    settings.LIVE_PROMPT_MAX_CHARS = 30
    read_guidelines(annotator_client, batch)
    response = write(annotator_client, batch, prompt, key="kept-key-0001")
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and 'aria-invalid="true"' in body
    assert 'value="kept-key-0001"' in body  # the corrected prompt is still the same submission
    assert not Item.objects.exists()


def test_writing_a_prompt_shows_its_progress_then_the_item_to_judge(
    annotator_client: Client, batch: Any, stub: StubOpenAI, sent: list[int]
) -> None:
    stub.handler = lambda call: Reply.ok("<script>alert(1)</script>An **answer**.")
    read_guidelines(annotator_client, batch)
    response = write(annotator_client, batch, "Hello <b>models</b>")
    dialogue = only_dialogue()
    dialogue_url = reverse("workbench:live_dialogue", args=[dialogue.pk])
    assert response.status_code == 302 and response["Location"] == dialogue_url
    item = Item.objects.get(dialogue=dialogue)
    assignment = Assignment.objects.get(item=item)
    # A double submit of the same form: the same dialogue, no second item.
    assert write(annotator_client, batch, "Hello <b>models</b>")["Location"] == dialogue_url
    assert Item.objects.count() == 1

    page = annotator_client.get(dialogue_url).content.decode()
    status_url = reverse("workbench:live_status", args=[dialogue.pk])
    assert f'hx-get="{status_url}"' in page and 'hx-trigger="every 1s"' in page
    assert "<strong>0 of 2</strong> responses ready" in page
    assert "Hello &lt;b&gt;models&lt;/b&gt;" in page or "Hello <b>models</b>" not in page
    # Everything about the batch leads back here while it generates (a reload included).
    assert annotator_client.get(reverse("workbench:batch", args=[batch.pk]))["Location"] == dialogue_url
    assert (
        annotator_client.get(reverse("workbench:assignment", args=[assignment.pk]))["Location"]
        == dialogue_url
    )
    assert annotator_client.get(reverse("workbench:live_prompt", args=[batch.pk]))["Location"] == reverse(
        "workbench:batch", args=[batch.pk]
    )

    generate(item, only=1)
    fragment = annotator_client.get(status_url, **HTMX).content.decode()
    assert fragment.lstrip().startswith('<div id="live-status"') and "<strong>1 of 2</strong>" in fragment
    assert "<strong>answer</strong>" in fragment and "<script>alert" not in fragment
    generate(item)
    done = annotator_client.get(status_url, **HTMX)
    assignment_url = reverse("workbench:assignment", args=[assignment.pk])
    assert done["HX-Redirect"] == assignment_url
    assert annotator_client.get(dialogue_url)["Location"] == assignment_url
    assert annotator_client.get(reverse("workbench:batch", args=[batch.pk]))["Location"] == assignment_url
    item_page = annotator_client.get(assignment_url).content.decode()
    assert 'id="judgment-form"' in item_page and 'data-state="item"' in item_page


def submit_pairwise(client: Client, assignment: Assignment, key: str, pick: int = 0) -> Any:
    assignment.refresh_from_db()
    data = {"idempotency_key": key, "chosen": int(assignment.positions[pick]), "strength": "better"}
    return client.post(reverse("workbench:submit", args=[assignment.pk]), data, **FETCH)


def test_after_judging_the_author_continues_the_dialogue_then_ends_it(
    annotator_client: Client, batch: Any
) -> None:
    read_guidelines(annotator_client, batch)
    write(annotator_client, batch, "First question")
    dialogue = only_dialogue()
    dialogue_url = reverse("workbench:live_dialogue", args=[dialogue.pk])
    turn0 = Item.objects.get(dialogue=dialogue)
    generate(turn0)
    lease = Assignment.objects.get(item=turn0)
    submitted = submit_pairwise(annotator_client, lease, "judge-key-0001", pick=1)
    assert submitted.status_code == 200 and submitted["X-Navigate"] == dialogue_url
    assert submitted["X-Judgment-Id"] and submitted["X-Replayed"] == "0"
    chosen = Response.objects.get(pk=int(Assignment.objects.get(pk=lease.pk).positions[1]))
    # A plain form (no script) is redirected there too; a replay of the submit as well.
    again = annotator_client.post(
        reverse("workbench:submit", args=[lease.pk]),
        {"idempotency_key": "judge-key-0001", "chosen": chosen.pk, "strength": "better"},
    )
    assert again["Location"] == dialogue_url

    page = annotator_client.get(dialogue_url).content.decode()
    assert 'name="turn" value="1"' in page and "Continue the dialogue" in page and "End the dialogue" in page
    assert "the answer you preferred" in page

    continue_url = reverse("workbench:live_continue", args=[dialogue.pk])
    empty = annotator_client.post(continue_url, {"prompt": "", "turn": "1"})
    assert empty.status_code == 400 and "Write a prompt first: it is empty." in empty.content.decode()
    bad_turn = annotator_client.post(continue_url, {"prompt": "x", "turn": "abc"})
    assert bad_turn.status_code == 400 and "not valid" in bad_turn.content.decode()
    assert (
        annotator_client.post(continue_url, {"prompt": "Follow-up", "turn": "1"})["Location"] == dialogue_url
    )
    assert (
        annotator_client.post(continue_url, {"prompt": "Follow-up", "turn": "1"})["Location"] == dialogue_url
    )
    turn1 = Item.objects.get(dialogue=dialogue, turn_index=1)
    assert Item.objects.filter(dialogue=dialogue).count() == 2
    assert turn1.conversation == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": chosen.content},
        {"role": "user", "content": "Follow-up"},
    ]
    assert "<strong>0 of 2</strong>" in annotator_client.get(dialogue_url).content.decode()
    generate(turn1)
    lease1 = Assignment.objects.get(item=turn1)
    assert submit_pairwise(annotator_client, lease1, "judge-key-0002")["X-Navigate"] == dialogue_url

    end = annotator_client.post(reverse("workbench:live_end", args=[dialogue.pk]))
    assert end["Location"] == dialogue_url
    ended = annotator_client.get(dialogue_url).content.decode()
    assert "This dialogue has ended after 2 turns" in ended and 'id="live-new"' in ended
    assert "Continue the dialogue" not in ended
    late = annotator_client.post(continue_url, {"prompt": "One more", "turn": "2"})
    assert late.status_code == 409 and "has ended" in late.content.decode()
    assert Dialogue.objects.get().status == DialogueStatus.ENDED
    # The batch now offers a new prompt, and lists the dialogue.
    prompt_page = annotator_client.get(
        reverse("workbench:batch", args=[batch.pk]), follow=True
    ).content.decode()
    assert "Your dialogues in this batch" in prompt_page and "First question" in prompt_page


def test_a_failed_response_offers_retry_and_discard(
    annotator_client: Client, batch: Any, stub: StubOpenAI, sent: list[int]
) -> None:
    stub.handler = lambda call: Reply.error(400, "context length exceeded")
    read_guidelines(annotator_client, batch)
    write(annotator_client, batch, "Too long for the model")
    dialogue = only_dialogue()
    item = Item.objects.get(dialogue=dialogue)
    generate(item)
    fragment = annotator_client.get(
        reverse("workbench:live_status", args=[dialogue.pk]), **HTMX
    ).content.decode()
    assert "2 failed" in fragment and "context length exceeded" in fragment
    assert 'id="live-retry"' in fragment and "hx-trigger" not in fragment  # no more polling
    sent.clear()
    stub.handler = None
    retried = annotator_client.post(reverse("workbench:live_retry", args=[dialogue.pk]))
    assert retried.status_code == 302
    assert Response.objects.filter(item=item, status=ResponseStatus.PENDING).count() == 2
    generate(item)
    item.refresh_from_db()
    assert item.status == ItemStatus.READY


def test_discard_ends_the_dialogue_and_frees_the_batch(
    annotator_client: Client, batch: Any, stub: StubOpenAI
) -> None:
    stub.handler = lambda call: Reply.error(400)
    read_guidelines(annotator_client, batch)
    write(annotator_client, batch, "Doomed")
    dialogue = only_dialogue()
    generate(Item.objects.get(dialogue=dialogue))
    annotator_client.post(reverse("workbench:live_discard", args=[dialogue.pk]))
    page = annotator_client.get(reverse("workbench:live_dialogue", args=[dialogue.pk])).content.decode()
    assert "You discarded this turn" in page
    assert annotator_client.get(reverse("workbench:batch", args=[batch.pk]))["Location"] == reverse(
        "workbench:live_prompt", args=[batch.pk]
    )


def test_posts_need_the_csrf_token(annotator: Any, batch: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    client.post(reverse("workbench:guidelines", args=[batch.pk]))  # refused too; mark seen directly
    from annotate.assignments.services import guidelines_mark_seen

    guidelines_mark_seen(annotator=annotator, batch=batch)
    page = client.get(reverse("workbench:live_prompt", args=[batch.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert write(client, batch, "No token").status_code == 403
    assert not Item.objects.exists()
    ok = client.post(
        reverse("workbench:live_prompt", args=[batch.pk]),
        {"prompt": "With token", "idempotency_key": "csrf-key-001", "csrfmiddlewaretoken": token},
    )
    assert ok.status_code == 302 and Item.objects.count() == 1


def test_a_dialogue_is_its_authors_only(annotator_client: Client, other_annotator: Any, batch: Any) -> None:
    read_guidelines(annotator_client, batch)
    write(annotator_client, batch, "Mine")
    dialogue = only_dialogue()
    other = Client()
    other.force_login(other_annotator)
    for name in ("live_dialogue", "live_status"):
        assert other.get(reverse(f"workbench:{name}", args=[dialogue.pk])).status_code == 404
    for name in ("live_continue", "live_end", "live_retry", "live_discard"):
        assert (
            other.post(reverse(f"workbench:{name}", args=[dialogue.pk]), {"prompt": "x"}).status_code == 404
        )
    assert Dialogue.objects.get().status == DialogueStatus.OPEN


def test_with_overlap_others_judge_a_ready_prompt_and_go_back_to_writing(
    annotator_client: Client, other_annotator: Any, batch: Any
) -> None:
    batch.overlap = 2
    batch.save()
    read_guidelines(annotator_client, batch)
    write(annotator_client, batch, "Shared prompt")
    item = Item.objects.get()
    other = Client()
    other.force_login(other_annotator)
    read_guidelines(other, batch)
    prompt_url = reverse("workbench:live_prompt", args=[batch.pk])
    assert 'id="others-waiting"' not in other.get(prompt_url).content.decode()  # not ready: not offered
    generate(item)
    assert "1 prompt written by others waits" in other.get(prompt_url).content.decode()
    taken = other.get(reverse("workbench:live_judge_others", args=[batch.pk]))
    lease = Assignment.objects.get(item=item, annotator=other_annotator)
    assert taken["Location"] == reverse("workbench:assignment", args=[lease.pk])
    done = submit_pairwise(other, lease, "other-key-0001")
    assert done.status_code == 200 and done["X-Navigate"] == prompt_url  # not the author: no continue offer
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.SUBMITTED
    nothing = other.get(reverse("workbench:live_judge_others", args=[batch.pk])).content.decode()
    assert "Nobody else" in nothing


def test_the_home_card_says_live_and_the_admin_shows_dialogues_with_their_turns(
    annotator_client: Client, staff_client: Client, batch: Any
) -> None:
    home = annotator_client.get(reverse("workbench:home")).content.decode()
    assert "Live prompts: you write them" in home and "Write a prompt" in home
    read_guidelines(annotator_client, batch)
    write(annotator_client, batch, "Admin, look at <this>")
    dialogue = only_dialogue()
    assert staff_client.get(reverse("admin:batches_dialogue_changelist")).status_code == 200
    page = staff_client.get(reverse("admin:batches_dialogue_change", args=[dialogue.pk])).content.decode()
    assert "Admin, look at &lt;this&gt;" in page
