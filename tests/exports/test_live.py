"""A live dialogue exports like any multi-turn conversation: each turn is its own item, whose prompt holds
every earlier turn with the answers its author preferred."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from annotate.batches.live import live_dialogue_continue, live_dialogue_end, live_dialogue_start
from annotate.batches.models import Item, ItemStatus, Response, ResponseStatus
from annotate.endpoints import tasks
from annotate.judgments.services import judgment_submit
from tests import factories
from tests.exports.conftest import Data


@pytest.fixture(autouse=True)
def _no_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.response_generate, "delay", lambda response_id: None)


def answered(item: Item) -> None:
    """Store the turn's responses as a worker would have."""
    for response in Response.objects.filter(item=item):
        response.content = f"Answer {response.slot} to turn {item.turn_index}"
        response.status = ResponseStatus.OK
        response.generated_at = timezone.now()
        response.model_name = "stub-7b"
        response.save()
    Item.objects.filter(pk=item.pk).update(status=ItemStatus.READY)


def test_a_two_turn_live_dialogue_exports_each_turn_with_its_context(data: Data, export: Any) -> None:
    alice = factories.annotator(username="alice")
    batch = factories.BatchFactory(prompt_source="live")
    batch.sampling_configs.set([data.config_a, data.config_b])

    turn0 = live_dialogue_start(annotator=alice, batch_id=batch.pk, prompt="What is RLHF?")
    answered(turn0.item)
    first = judgment_submit(
        annotator=alice,
        assignment_id=turn0.assignment.pk,
        data=factories.pairwise_answer(turn0.assignment, "ex-key-0001", pick=1),
    ).judgment
    turn1 = live_dialogue_continue(
        annotator=alice, dialogue_id=turn0.dialogue.pk, prompt="And DPO?", turn_index=1
    )
    answered(turn1.item)
    second = judgment_submit(
        annotator=alice,
        assignment_id=turn1.assignment.pk,
        data=factories.pairwise_answer(turn1.assignment, "ex-key-0002"),
    ).judgment
    live_dialogue_end(annotator=alice, dialogue_id=turn0.dialogue.pk)

    rows = {row["judgment_id"]: row for row in export().rows}
    assert set(rows) == {first.pk, second.pk}
    assert rows[first.pk]["prompt"] == [{"role": "user", "content": "What is RLHF?"}]
    assert rows[second.pk]["prompt"] == [
        {"role": "user", "content": "What is RLHF?"},
        {"role": "assistant", "content": first.chosen.content},
        {"role": "user", "content": "And DPO?"},
    ]
    assert rows[second.pk]["chosen"] == [{"role": "assistant", "content": second.chosen.content}]
    assert rows[second.pk]["rejected"] == [{"role": "assistant", "content": second.rejected.content}]
    assert rows[first.pk]["item_id"] == turn0.item.pk and rows[second.pk]["item_id"] == turn1.item.pk

    flat = {row["judgment_id"]: row for row in export(schema="pairwise_flat").rows}
    assert flat[second.pk]["prompt"] == "And DPO?"
