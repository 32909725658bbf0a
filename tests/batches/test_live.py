"""Live prompts (annotate/batches/live.py) on PostgreSQL: starting a dialogue, its responses and lease,
overlap, continuing with the preferred answer, replays, ending, retrying and discarding a turn.

Generation runs in process through the real task service against the loopback stub (no broker here):
`generate(item)` delivers each pending response once, as a worker would.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.assignments.services import assignment_claim_next
from annotate.batches import live
from annotate.batches.live_selectors import Phase, dialogue_state, others_waiting
from annotate.batches.models import (
    BatchStatus,
    Dialogue,
    DialogueStatus,
    Item,
    ItemSource,
    ItemStatus,
    PromptSource,
    Response,
    ResponseStatus,
)
from annotate.batches.services import batch_start_generation
from annotate.core.errors import ConflictError, DomainError
from annotate.endpoints import tasks
from annotate.judgments.services import JudgmentInput, judgment_submit
from tests import factories
from tests.stub_openai import Reply, StubOpenAI

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Response ids whose generation task was sent (on commit); no broker is used here."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.response_generate, "delay", lambda response_id: ids.append(response_id))
    return ids


@pytest.fixture
def configs(stub: StubOpenAI, allow_loopback: None, redis_client: Any) -> list[Any]:
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, model="stub-7b", timeout_s=2.0)
    return [
        factories.SamplingConfigFactory(endpoint=endpoint, label=f"t{i}", temperature=0.2 + 0.3 * i)
        for i in range(4)
    ]


def live_batch(configs: list[Any], *, k: int = 2, overlap: int = 1, **fields: Any) -> Any:
    mode = "pairwise" if k == 2 else "ranking"
    batch = factories.BatchFactory(
        prompt_source=PromptSource.LIVE, mode=mode, responses_per_item=k, overlap=overlap, **fields
    )
    batch.sampling_configs.set(configs)
    return batch


@pytest.fixture
def batch(configs: list[Any]) -> Any:
    return live_batch(configs)


def generate(item: Item) -> None:
    factories.generate_pending(item.pk)
    item.refresh_from_db()


def start(user: Any, batch: Any, prompt: str = "What is a reward model?", **kw: Any) -> live.LiveTurn:
    return live.live_dialogue_start(annotator=user, batch_id=batch.pk, prompt=prompt, **kw)


def judge_pairwise(user: Any, assignment: Assignment, pick: int = 0) -> Any:
    assignment.refresh_from_db()
    answer = factories.pairwise_answer(assignment, f"judge-{assignment.pk}", pick=pick)
    return judgment_submit(annotator=user, assignment_id=assignment.pk, data=answer).judgment


def test_a_prompt_becomes_a_live_item_with_k_pending_responses_and_the_authors_lease(
    annotator: Any, batch: Any, configs: list[Any], sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        turn = start(annotator, batch, "  Explain **DPO** in one line.  ")
    item = turn.item
    assert turn.created
    assert item.source == ItemSource.LIVE and item.dialogue_id == turn.dialogue.pk and item.turn_index == 0
    assert item.conversation == [{"role": "user", "content": "Explain **DPO** in one line."}]
    assert item.status == ItemStatus.PENDING and item.created_by == annotator
    assert (item.wanted, item.taken) == (1, 1)
    responses = list(Response.objects.filter(item=item).order_by("slot"))
    assert [r.slot for r in responses] == [0, 1]
    assert all(r.status == ResponseStatus.PENDING for r in responses)
    assert len({r.sampling_config_id for r in responses}) == 2  # different configs
    assert sorted(sent) == sorted(r.pk for r in responses)  # only this item's, after commit
    lease = turn.assignment
    assert lease.annotator == annotator and lease.item == item and lease.status == AssignmentStatus.ACTIVE
    assert sorted(int(p) for p in lease.positions) == sorted(r.pk for r in responses)
    assert turn.dialogue.status == DialogueStatus.OPEN and turn.dialogue.author == annotator


def test_nothing_is_enqueued_when_the_transaction_rolls_back(
    annotator: Any, batch: Any, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        live.live_dialogue_start(annotator=annotator, batch_id=batch.pk, prompt="Hi")
        raise RuntimeError("rolled back")
    assert sent == [] and not Item.objects.exists() and not Dialogue.objects.exists()


def test_one_items_responses_come_from_different_configs_in_a_ranking_batch(
    annotator: Any, configs: list[Any]
) -> None:
    batch = live_batch(configs, k=4)
    item = start(annotator, batch).item
    assert len(set(Response.objects.filter(item=item).values_list("sampling_config_id", flat=True))) == 4


def test_a_double_submitted_prompt_creates_one_dialogue(annotator: Any, batch: Any) -> None:
    first = start(annotator, batch, "Same", idempotency_key="k-1")
    again = start(annotator, batch, "Same", idempotency_key="k-1")
    assert not again.created
    assert (again.dialogue.pk, again.item.pk, again.assignment.pk) == (
        first.dialogue.pk,
        first.item.pk,
        first.assignment.pk,
    )
    assert Item.objects.count() == 1 and Dialogue.objects.count() == 1


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "empty"), ("   \n  ", "empty"), ("x" * 11, "too long: 11 characters, at most 10")],
)
def test_bad_prompts_are_refused_with_a_clear_message_and_nothing_written(
    annotator: Any, batch: Any, settings: Any, prompt: str, message: str
) -> None:
    settings.LIVE_PROMPT_MAX_CHARS = 10
    with pytest.raises(DomainError) as caught:
        start(annotator, batch, prompt)
    assert caught.value.field == "prompt" and message in caught.value.message
    assert not Item.objects.exists() and not Dialogue.objects.exists()


def test_only_open_live_batches_of_a_qualified_annotator_take_prompts(
    annotator: Any, safety_annotator: Any, configs: list[Any]
) -> None:
    imported = factories.BatchFactory()
    with pytest.raises(ConflictError) as caught:
        start(annotator, imported)
    assert caught.value.code == "not_live"
    closed = live_batch(configs, status=BatchStatus.PAUSED)
    with pytest.raises(ConflictError) as caught:
        start(annotator, closed)
    assert caught.value.code == "batch_not_open"
    safety = live_batch(configs, track="safety")
    with pytest.raises(live.NotFound):
        start(annotator, safety)  # alice is not qualified for safety
    assert start(safety_annotator, safety).created


def test_a_batch_without_an_enabled_config_refuses_and_writes_nothing(
    annotator: Any, configs: list[Any]
) -> None:
    batch = live_batch(configs)
    configs[0].endpoint.enabled = False
    configs[0].endpoint.save()
    with pytest.raises(ConflictError) as caught:
        start(annotator, batch)
    assert caught.value.code == "no_sampling_config"
    assert not Dialogue.objects.exists() and not Item.objects.exists()


def test_a_second_prompt_waits_until_the_open_item_is_done(annotator: Any, batch: Any) -> None:
    start(annotator, batch)
    with pytest.raises(ConflictError) as caught:
        start(annotator, batch, "Another")
    assert caught.value.code == "lease_active"
    assert Item.objects.count() == 1


def test_two_annotators_may_write_the_same_prompt(annotator: Any, other_annotator: Any, batch: Any) -> None:
    a = start(annotator, batch, "Hello")
    b = start(other_annotator, batch, "Hello")
    assert a.item.pk != b.item.pk and a.item.content_hash != b.item.content_hash


def test_the_author_judges_their_item_and_others_see_it_only_when_ready_and_overlap_allows(
    annotator: Any, other_annotator: Any, configs: list[Any]
) -> None:
    solo = live_batch(configs, overlap=1)
    shared = live_batch(configs, overlap=2)
    solo_item = start(annotator, solo).item
    shared_item = start(annotator, shared).item
    # Pending: nobody else is offered it.
    assert assignment_claim_next(annotator=other_annotator, batch_id=shared.pk) is None
    assert others_waiting(other_annotator, shared) == 0
    generate(solo_item)
    generate(shared_item)
    assert solo_item.status == shared_item.status == ItemStatus.READY
    assert solo.status == BatchStatus.OPEN  # stays open: no "generating" phase for live batches
    assert assignment_claim_next(annotator=other_annotator, batch_id=solo.pk) is None  # overlap 1
    assert others_waiting(other_annotator, shared) == 1
    other = assignment_claim_next(annotator=other_annotator, batch_id=shared.pk)
    assert other is not None and other.item_id == shared_item.pk
    # The author's own claim renews their lease on their item, never a second one.
    mine = assignment_claim_next(annotator=annotator, batch_id=shared.pk)
    assert mine is not None and mine.item_id == shared_item.pk
    assert Assignment.objects.filter(item=shared_item).count() == 2


def test_continuing_adds_the_next_turn_with_the_chosen_answer_as_the_assistant(
    annotator: Any, batch: Any
) -> None:
    turn0 = start(annotator, batch, "Name a prime.")
    with pytest.raises(ConflictError) as caught:
        live.live_dialogue_continue(annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt="And another?")
    assert caught.value.code == "turn_not_judged"
    generate(turn0.item)
    judgment = judge_pairwise(annotator, turn0.assignment, pick=1)
    state = dialogue_state(turn0.dialogue)
    assert state.phase == Phase.JUDGED and state.can_continue and state.answer == judgment.chosen

    turn1 = live.live_dialogue_continue(
        annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt=" And another? ", turn_index=1
    )
    assert turn1.created and turn1.item.dialogue_id == turn0.dialogue.pk and turn1.item.turn_index == 1
    assert turn1.item.conversation == [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": judgment.chosen.content},
        {"role": "user", "content": "And another?"},
    ]
    assert turn1.assignment.annotator == annotator and turn1.assignment.status == AssignmentStatus.ACTIVE
    assert Response.objects.filter(item=turn1.item, status=ResponseStatus.PENDING).count() == 2
    assert dialogue_state(turn0.dialogue).phase == Phase.GENERATING

    # The same turn sent again is a replay; another text for it is a conflict; no third item.
    again = live.live_dialogue_continue(
        annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt="And another?", turn_index=1
    )
    assert not again.created and again.item.pk == turn1.item.pk
    with pytest.raises(ConflictError) as caught:
        live.live_dialogue_continue(
            annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt="Something else", turn_index=1
        )
    assert caught.value.code == "turn_exists"
    with pytest.raises(DomainError) as bad:
        live.live_dialogue_continue(
            annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt="x", turn_index=5
        )
    assert bad.value.field == "turn"
    assert Item.objects.filter(dialogue=turn0.dialogue).count() == 2


def test_a_ranking_turn_continues_with_the_top_ranked_answer(annotator: Any, configs: list[Any]) -> None:
    batch = live_batch(configs, k=3)
    turn0 = start(annotator, batch)
    generate(turn0.item)
    order = [int(p) for p in reversed(turn0.assignment.positions)]
    judgment_submit(
        annotator=annotator,
        assignment_id=turn0.assignment.pk,
        data=JudgmentInput(idempotency_key="rank-key-1", ranking=order),
    )
    turn1 = live.live_dialogue_continue(annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt="More")
    assert turn1.item.conversation[1] == {
        "role": "assistant",
        "content": Response.objects.get(pk=order[0]).content,
    }


def test_only_the_author_can_continue_and_an_ended_dialogue_stays_ended(
    annotator: Any, other_annotator: Any, batch: Any
) -> None:
    turn0 = start(annotator, batch)
    generate(turn0.item)
    judge_pairwise(annotator, turn0.assignment)
    with pytest.raises(live.NotFound):
        live.live_dialogue_continue(annotator=other_annotator, dialogue_id=turn0.dialogue.pk, prompt="Mine?")
    with pytest.raises(live.NotFound):
        live.live_dialogue_end(annotator=other_annotator, dialogue_id=turn0.dialogue.pk)
    ended = live.live_dialogue_end(annotator=annotator, dialogue_id=turn0.dialogue.pk)
    assert ended.status == DialogueStatus.ENDED and ended.ended_at is not None
    assert (
        live.live_dialogue_end(annotator=annotator, dialogue_id=turn0.dialogue.pk).ended_at == ended.ended_at
    )
    with pytest.raises(ConflictError) as caught:
        live.live_dialogue_continue(annotator=annotator, dialogue_id=turn0.dialogue.pk, prompt="More")
    assert caught.value.code == "dialogue_ended"
    assert not dialogue_state(ended).can_continue


def test_a_dialogue_has_at_most_live_max_turns(annotator: Any, batch: Any, settings: Any) -> None:
    settings.LIVE_MAX_TURNS = 2
    turn = start(annotator, batch)
    for index in (1, 2):
        generate(turn.item)
        judge_pairwise(annotator, turn.assignment)
        if index == 2:
            with pytest.raises(ConflictError) as caught:
                live.live_dialogue_continue(annotator=annotator, dialogue_id=turn.dialogue.pk, prompt="Again")
            assert caught.value.code == "too_many_turns"
        else:
            turn = live.live_dialogue_continue(
                annotator=annotator, dialogue_id=turn.dialogue.pk, prompt="Again"
            )


def test_a_failed_response_shows_its_error_and_retry_requeues_only_this_items(
    annotator: Any, other_annotator: Any, batch: Any, stub: StubOpenAI, sent: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    stub.handler = lambda call: Reply.error(400, "the model refused the request")
    mine = start(annotator, batch)
    theirs = start(other_annotator, batch, "Theirs")
    generate(mine.item)
    generate(theirs.item)
    state = dialogue_state(mine.dialogue)
    assert state.phase == Phase.GENERATING and state.failed == 2 and state.waiting == 0
    assert all("the model refused the request" in r.error for r in state.responses)
    sent.clear()
    stub.handler = None
    with django_capture_on_commit_callbacks(execute=True):
        assert live.live_turn_retry(annotator=annotator, dialogue_id=mine.dialogue.pk) == 2
    assert sorted(sent) == sorted(Response.objects.filter(item=mine.item).values_list("pk", flat=True))
    assert Response.objects.filter(item=theirs.item, status=ResponseStatus.FAILED).count() == 2
    generate(mine.item)
    assert mine.item.status == ItemStatus.READY
    assert dialogue_state(mine.dialogue).phase == Phase.JUDGING


def test_discarding_a_turn_drops_it_frees_the_lease_and_ends_the_dialogue(
    annotator: Any, batch: Any, stub: StubOpenAI
) -> None:
    stub.handler = lambda call: Reply.error(400)
    turn = start(annotator, batch)
    generate(turn.item)
    dialogue = live.live_turn_discard(annotator=annotator, dialogue_id=turn.dialogue.pk)
    turn.item.refresh_from_db()
    turn.assignment.refresh_from_db()
    assert turn.item.status == ItemStatus.DROPPED and turn.item.taken == 0
    assert turn.assignment.status == AssignmentStatus.SKIPPED
    assert dialogue.status == DialogueStatus.ENDED
    assert dialogue_state(dialogue).phase == Phase.DISCARDED
    assert start(annotator, batch, "A fresh start").created  # the lease is free again


def test_a_ready_turn_cannot_be_discarded(annotator: Any, batch: Any) -> None:
    turn = start(annotator, batch)
    generate(turn.item)
    with pytest.raises(ConflictError):
        live.live_turn_discard(annotator=annotator, dialogue_id=turn.dialogue.pk)


def test_the_database_keeps_one_item_per_dialogue_turn(annotator: Any, batch: Any) -> None:
    turn = start(annotator, batch)
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(
            batch=batch,
            conversation=[{"role": "user", "content": "other text"}],
            source=ItemSource.LIVE,
            dialogue=turn.dialogue,
            turn_index=0,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.create(
            batch=batch, conversation=[{"role": "user", "content": "no dialogue"}], source="live"
        )


def test_starting_a_live_batch_opens_it_and_needs_a_config(configs: list[Any]) -> None:
    batch = live_batch(configs, status=BatchStatus.DRAFT)
    assert batch_start_generation(batch_id=batch.pk).opened
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN and batch.opened_at is not None
    empty = live_batch([], status=BatchStatus.DRAFT)
    with pytest.raises(DomainError) as caught:
        batch_start_generation(batch_id=empty.pk)
    assert caught.value.code == "no_sampling_config"
