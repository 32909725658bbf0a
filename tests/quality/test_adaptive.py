"""Adaptive overlap through the real claim and submit services: items whose first judgments disagree get
more judgments (up to the ceiling), items whose judgments agree do not."""

from __future__ import annotations

from typing import Any

import pytest

from annotate.assignments.services import assignment_claim_next
from annotate.batches.models import AdaptiveRule, Item
from annotate.batches.services import batch_set_overlap
from annotate.core.errors import DomainError
from annotate.judgments.services import JudgmentInput, judgment_submit
from tests import factories

pytestmark = pytest.mark.django_db


def _judge(user: Any, batch_id: int, prefer_slot: int) -> Item:
    """Claim the next item and prefer the response in `prefer_slot`; returns the item judged."""
    assignment = assignment_claim_next(annotator=user, batch_id=batch_id)
    assert assignment is not None, f"{user.username} found nothing to claim"
    chosen = assignment.item.responses.get(slot=prefer_slot).pk
    judgment_submit(
        annotator=user,
        assignment_id=assignment.pk,
        data=JudgmentInput(idempotency_key=f"k-{assignment.pk:06d}", chosen=chosen, strength="better"),
    )
    return assignment.item


def _annotators(n: int) -> list[Any]:
    return [factories.quick_annotator(f"ann{i}") for i in range(n)]


def test_disagreeing_items_get_extra_judgments_and_agreeing_ones_do_not() -> None:
    batch = factories.ready_batch(
        items=2,
        overlap=2,
        adaptive_overlap=True,
        overlap_ceiling=4,
        adaptive_rule=AdaptiveRule.UNTIL_MAJORITY,
    )
    split, clear = Item.objects.filter(batch=batch).order_by("pk")
    a, b, c, d = _annotators(4)
    # a and b judge both items (in id order): they disagree on the first, agree on the second.
    assert _judge(a, batch.pk, 0) == split
    assert _judge(b, batch.pk, 1) == split
    assert _judge(a, batch.pk, 0) == clear
    assert _judge(b, batch.pk, 0) == clear
    split.refresh_from_db()
    clear.refresh_from_db()
    assert (split.wanted, clear.wanted) == (3, 2)
    # c gets the disputed item only; the clear one is full.
    assert _judge(c, batch.pk, 0) == split
    assert assignment_claim_next(annotator=c, batch_id=batch.pk) is None
    split.refresh_from_db()
    assert (split.wanted, split.taken) == (3, 3)  # 2-1 is a strict majority: settled
    assert assignment_claim_next(annotator=d, batch_id=batch.pk) is None
    assert split.assignments.count() == 3 and clear.assignments.count() == 2


def test_unanimous_rule_asks_until_the_ceiling() -> None:
    batch = factories.ready_batch(
        items=1,
        overlap=2,
        adaptive_overlap=True,
        overlap_ceiling=3,
        adaptive_rule=AdaptiveRule.UNTIL_UNANIMOUS,
    )
    item = Item.objects.get(batch=batch)
    a, b, c, d = _annotators(4)
    _judge(a, batch.pk, 0)
    _judge(b, batch.pk, 1)
    _judge(c, batch.pk, 0)  # 2-1: not unanimous, but the ceiling (3) is reached
    item.refresh_from_db()
    assert (item.wanted, item.taken) == (3, 3)
    assert assignment_claim_next(annotator=d, batch_id=batch.pk) is None


def test_no_extra_judgment_before_all_wanted_ones_are_in() -> None:
    batch = factories.ready_batch(items=1, overlap=3, adaptive_overlap=True, overlap_ceiling=5)
    item = Item.objects.get(batch=batch)
    a, b = _annotators(2)
    _judge(a, batch.pk, 0)
    _judge(b, batch.pk, 1)  # 1-1 but a third judgment is still wanted anyway
    item.refresh_from_db()
    assert item.wanted == 3


def test_off_by_default_and_never_for_gold_items() -> None:
    plain = factories.ready_batch(items=1, overlap=2)
    a, b = _annotators(2)
    item = _judge(a, plain.pk, 0)
    _judge(b, plain.pk, 1)
    item.refresh_from_db()
    assert item.wanted == 2

    adaptive = factories.BatchFactory(overlap=2, adaptive_overlap=True, overlap_ceiling=4, gold_rate=1.0)
    gold = factories.ready_item(adaptive, 1, is_gold=True, gold_expected={"slot": 0, "min_strength": None})
    _judge(a, adaptive.pk, 0)
    _judge(b, adaptive.pk, 1)
    gold.refresh_from_db()
    assert gold.wanted == 2


def test_ranking_items_compare_the_response_ranked_first() -> None:
    batch = factories.ready_batch(
        items=1, mode="ranking", responses_per_item=3, overlap=2, adaptive_overlap=True, overlap_ceiling=3
    )
    item = Item.objects.get(batch=batch)
    a, b = _annotators(2)
    for user, first in ((a, 0), (b, 2)):
        assignment = assignment_claim_next(annotator=user, batch_id=batch.pk)
        assert assignment is not None
        slots = dict(item.responses.values_list("slot", "pk"))
        order = [slots[first]] + [pk for slot, pk in sorted(slots.items()) if slot != first]
        judgment_submit(
            annotator=user,
            assignment_id=assignment.pk,
            data=JudgmentInput(idempotency_key=f"k-{assignment.pk:06d}", ranking=order),
        )
    item.refresh_from_db()
    assert item.wanted == 3


def test_overlap_above_the_ceiling_is_refused_naming_the_field() -> None:
    batch = factories.ready_batch(items=1, overlap=2, adaptive_overlap=True, overlap_ceiling=3)
    with pytest.raises(DomainError) as refused:
        batch_set_overlap(batch_id=batch.pk, overlap=4)
    assert refused.value.field == "overlap"
