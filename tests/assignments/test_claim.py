"""Claiming the next item: leases, overlap, the annotator's cursor, expiry, gold items and guidelines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from annotate.accounts.models import Qualification, User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.assignments.services import (
    NotFound,
    assignment_claim_next,
    assignment_skip,
    assignments_expire_stale,
    guidelines_mark_seen,
    guidelines_needed,
)
from annotate.batches.models import Batch, BatchStatus, Item, ItemStatus
from annotate.batches.services import batch_update_guidelines
from annotate.core.choices import Mode, Track
from annotate.core.errors import ConflictError
from annotate.judgments.services import judgment_submit
from tests import factories

pytestmark = pytest.mark.django_db


def claim(user: User, batch: Batch) -> Assignment | None:
    return assignment_claim_next(annotator=user, batch_id=batch.pk)


def finish(user: User, assignment: Assignment) -> None:
    """Submit a valid pairwise judgment, so the annotator may take their next item."""
    judgment_submit(
        annotator=user,
        assignment_id=assignment.pk,
        data=factories.pairwise_answer(assignment, f"answer-key-{assignment.pk}"),
    )


def close_lease(assignment: Assignment) -> None:
    """Mark a lease submitted without a judgment: a cheap way to move on in claim-only loops."""
    Assignment.objects.filter(pk=assignment.pk).update(
        status=AssignmentStatus.SUBMITTED, finished_at=timezone.now()
    )


def items_of(batch: Batch) -> list[Item]:
    return list(Item.objects.filter(batch=batch).order_by("id"))


def taken(item: Item) -> int:
    return Item.objects.get(pk=item.pk).taken


# --- the own lease ---------------------------------------------------------------------------------


def test_claim_returns_the_annotators_active_lease_and_extends_it(annotator: User) -> None:
    batch = factories.ready_batch(items=3, lease_minutes=30)
    first = claim(annotator, batch)
    assert first is not None
    earlier = timezone.now() - timedelta(minutes=5)
    Assignment.objects.filter(pk=first.pk).update(
        leased_at=earlier - timedelta(minutes=1), expires_at=earlier
    )

    again = claim(annotator, batch)

    assert again is not None
    assert again.pk == first.pk
    stored = Assignment.objects.get(pk=first.pk)
    assert stored.expires_at > timezone.now() + timedelta(minutes=29)
    assert Assignment.objects.filter(annotator=annotator, batch=batch).count() == 1
    assert taken(first.item) == 1


def test_claim_renews_the_owners_lapsed_lease_that_was_not_yet_swept(annotator: User) -> None:
    batch = factories.ready_batch(items=2)
    first = claim(annotator, batch)
    assert first is not None
    factories.lapse_lease(first)

    again = claim(annotator, batch)

    assert again is not None
    assert again.pk == first.pk
    stored = Assignment.objects.get(pk=first.pk)
    assert stored.status == AssignmentStatus.ACTIVE
    assert stored.expires_at > timezone.now()
    assert taken(first.item) == 1


# --- which item -------------------------------------------------------------------------------------


def test_claim_never_gives_an_item_twice_to_one_annotator(annotator: User) -> None:
    batch = factories.ready_batch(items=5, overlap=2)
    served: list[int] = []
    for _ in range(5):
        assignment = claim(annotator, batch)
        assert assignment is not None
        served.append(assignment.item_id)
        finish(annotator, assignment)

    assert sorted(served) == [item.pk for item in items_of(batch)]
    assert claim(annotator, batch) is None


def test_claim_honours_overlap(annotator: User, other_annotator: User) -> None:
    batch = factories.ready_batch(items=1, overlap=2)
    third = factories.annotator(username="dave", tracks=[Track.HELPFULNESS], password=None)
    first, second = claim(annotator, batch), claim(other_annotator, batch)
    assert first is not None
    assert second is not None
    assert first.item_id == second.item_id

    assert claim(third, batch) is None
    finish(annotator, first)
    assert claim(third, batch) is None  # a submitted judgment keeps its place
    assert taken(first.item) == 2


def test_a_skip_frees_the_place_for_others_but_never_comes_back_to_the_skipper(
    annotator: User, other_annotator: User
) -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    mine = claim(annotator, batch)
    assert mine is not None
    assert claim(other_annotator, batch) is None

    assignment_skip(annotator=annotator, assignment_id=mine.pk, reason="I do not know the topic.")
    assert taken(mine.item) == 0
    assert claim(annotator, batch) is None

    theirs = claim(other_annotator, batch)
    assert theirs is not None
    assert theirs.item_id == mine.item_id
    assert taken(mine.item) == 1


def test_a_skipped_item_with_room_left_is_not_served_again_to_the_skipper(annotator: User) -> None:
    batch = factories.ready_batch(items=2, overlap=3)
    first = claim(annotator, batch)
    assert first is not None
    assignment_skip(annotator=annotator, assignment_id=first.pk, reason="Unclear prompt.")
    second = claim(annotator, batch)
    assert second is not None
    assert second.item_id != first.item_id
    finish(annotator, second)
    assert claim(annotator, batch) is None


@pytest.mark.parametrize("status", [ItemStatus.PENDING, ItemStatus.DROPPED])
def test_claim_never_serves_an_item_that_is_not_ready(annotator: User, status: str) -> None:
    batch = factories.BatchFactory(overlap=1)
    not_ready = factories.ready_item(batch, 1)
    Item.objects.filter(pk=not_ready.pk).update(status=status)
    ready = factories.ready_item(batch, 2)

    assignment = claim(annotator, batch)
    assert assignment is not None
    assert assignment.item_id == ready.pk
    finish(annotator, assignment)
    assert claim(annotator, batch) is None


@pytest.mark.parametrize(
    "status", [BatchStatus.DRAFT, BatchStatus.GENERATING, BatchStatus.PAUSED, BatchStatus.CLOSED]
)
def test_claim_refuses_a_batch_that_is_not_open(annotator: User, status: str) -> None:
    batch = factories.ready_batch(items=2, status=status)
    with pytest.raises(ConflictError) as exc:
        claim(annotator, batch)
    assert exc.value.code == "batch_not_open"
    assert not Assignment.objects.exists()


def test_claim_hides_a_batch_of_a_track_the_annotator_is_not_qualified_for(annotator: User) -> None:
    batch = factories.ready_batch(items=2, track=Track.SAFETY)
    with pytest.raises(NotFound):
        claim(annotator, batch)


def test_claim_hides_a_safety_batch_until_the_annotator_consented(db: None) -> None:
    user = factories.annotator(username="sam", tracks=[Track.SAFETY], password=None)
    Qualification.objects.filter(user=user, track=Track.SAFETY).update(consented_at=None)
    batch = factories.ready_batch(items=2, track=Track.SAFETY)
    with pytest.raises(NotFound):
        claim(user, batch)

    Qualification.objects.filter(user=user, track=Track.SAFETY).update(consented_at=timezone.now())
    assert claim(user, batch) is not None


def test_claim_hides_a_batch_once_the_qualification_is_revoked(annotator: User) -> None:
    batch = factories.ready_batch(items=2)
    assert claim(annotator, batch) is not None
    Qualification.objects.filter(user=annotator).update(revoked_at=timezone.now())
    with pytest.raises(NotFound):
        claim(annotator, batch)


def test_claim_of_an_unknown_batch_is_not_found(annotator: User) -> None:
    with pytest.raises(NotFound):
        assignment_claim_next(annotator=annotator, batch_id=987654)


# --- positions --------------------------------------------------------------------------------------


def test_positions_are_a_random_permutation_of_the_items_responses(annotator: User) -> None:
    batch = factories.ready_batch(items=40)
    orders: set[bool] = set()
    for _ in range(40):
        assignment = claim(annotator, batch)
        assert assignment is not None
        in_slot_order = list(assignment.item.responses.order_by("slot").values_list("pk", flat=True))
        assert sorted(assignment.positions) == sorted(in_slot_order)
        assert Assignment.objects.get(pk=assignment.pk).positions == assignment.positions
        orders.add(list(assignment.positions) == in_slot_order)
        close_lease(assignment)
    # Both orders must occur: the chance that 40 fair shuffles all agree is 2 ** -39.
    assert orders == {True, False}


def test_ranking_positions_are_permutations_that_vary(annotator: User) -> None:
    batch = factories.ready_batch(items=20, mode=Mode.RANKING, responses_per_item=4)
    seen_orders: set[tuple[int, ...]] = set()
    for _ in range(20):
        assignment = claim(annotator, batch)
        assert assignment is not None
        slots = dict(assignment.item.responses.values_list("pk", "slot"))
        assert sorted(assignment.positions) == sorted(slots)
        seen_orders.add(tuple(slots[pk] for pk in assignment.positions))
        close_lease(assignment)
    assert len(seen_orders) > 1


# --- the cursor -------------------------------------------------------------------------------------


def test_claim_serves_the_first_open_item_above_the_annotators_cursor(
    annotator: User, other_annotator: User
) -> None:
    batch = factories.ready_batch(items=4, overlap=1)
    i0, i1, i2, i3 = items_of(batch)
    mine = claim(annotator, batch)
    assert mine is not None
    assert mine.item_id == i0.pk
    finish(annotator, mine)
    theirs = claim(other_annotator, batch)
    assert theirs is not None
    assert theirs.item_id == i1.pk

    mine = claim(annotator, batch)
    assert mine is not None
    assert mine.item_id == i2.pk
    finish(annotator, mine)
    mine = claim(annotator, batch)
    assert mine is not None
    assert mine.item_id == i3.pk


def test_claim_serves_holes_below_the_cursor_once_nothing_is_left_above(
    annotator: User, other_annotator: User
) -> None:
    batch = factories.ready_batch(items=4, overlap=1)
    i0, i1, i2, i3 = items_of(batch)
    theirs = claim(other_annotator, batch)
    assert theirs is not None
    assert theirs.item_id == i0.pk
    mine = claim(annotator, batch)
    assert mine is not None
    assert mine.item_id == i1.pk
    finish(annotator, mine)
    # i0 becomes a hole below my cursor (i1), an item I never had.
    assignment_skip(annotator=other_annotator, assignment_id=theirs.pk, reason="Not my field.")

    served = []
    for _ in range(3):
        mine = claim(annotator, batch)
        assert mine is not None
        served.append(mine.item_id)
        finish(annotator, mine)

    assert served == [i2.pk, i3.pk, i0.pk]
    assert claim(annotator, batch) is None


# --- expiry -----------------------------------------------------------------------------------------


def test_another_annotators_claim_releases_a_lapsed_lease_and_takes_its_item(
    annotator: User, other_annotator: User
) -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    lapsed = claim(annotator, batch)
    assert lapsed is not None
    assert claim(other_annotator, batch) is None  # still leased
    factories.lapse_lease(lapsed)

    theirs = claim(other_annotator, batch)

    assert theirs is not None
    assert theirs.item_id == lapsed.item_id
    assert Assignment.objects.get(pk=lapsed.pk).status == AssignmentStatus.EXPIRED
    assert taken(lapsed.item) == 1  # released (-1), then taken again (+1)


def test_a_claim_serves_open_items_before_releasing_lapsed_leases(
    annotator: User, other_annotator: User
) -> None:
    """Releasing lapsed leases is the periodic job's work; a claim does it only when nothing else is open
    (so the hot path skips the probe, and a batch is never reported done while a lapsed lease holds an
    item)."""
    batch = factories.ready_batch(items=2, overlap=1)
    lapsed = claim(annotator, batch)
    assert lapsed is not None
    factories.lapse_lease(lapsed)

    theirs = claim(other_annotator, batch)

    assert theirs is not None
    assert theirs.item_id != lapsed.item_id
    assert Assignment.objects.get(pk=lapsed.pk).status == AssignmentStatus.ACTIVE
    third = factories.annotator()
    again = claim(third, batch)
    assert again is not None
    assert again.item_id == lapsed.item_id  # nothing else open: released and served
    assert Assignment.objects.get(pk=lapsed.pk).status == AssignmentStatus.EXPIRED


def test_a_claim_releases_lapsed_leases_of_its_own_batch_only(annotator: User, other_annotator: User) -> None:
    batch, elsewhere = factories.ready_batch(items=1, overlap=1), factories.ready_batch(items=1)
    lapsed_here = claim(annotator, batch)
    lapsed_there = claim(annotator, elsewhere)
    assert lapsed_here is not None
    assert lapsed_there is not None
    factories.lapse_lease(lapsed_here)
    factories.lapse_lease(lapsed_there)

    theirs = claim(other_annotator, batch)

    assert theirs is not None
    assert theirs.item_id == lapsed_here.item_id
    assert Assignment.objects.get(pk=lapsed_here.pk).status == AssignmentStatus.EXPIRED
    assert taken(lapsed_here.item) == 1
    assert Assignment.objects.get(pk=lapsed_there.pk).status == AssignmentStatus.ACTIVE
    assert taken(lapsed_there.item) == 1


def test_expire_stale_releases_lapsed_leases_across_batches_and_counts_them(
    annotator: User, other_annotator: User
) -> None:
    first_batch = factories.ready_batch(items=2, overlap=2)
    second_batch = factories.ready_batch(items=2, overlap=2)
    lapsed = [
        claim(annotator, first_batch),
        claim(annotator, second_batch),
        claim(other_annotator, first_batch),
    ]
    fresh = claim(other_annotator, second_batch)
    assert fresh is not None
    for assignment in lapsed:
        assert assignment is not None
        factories.lapse_lease(assignment)

    assert assignments_expire_stale() == 3

    for assignment in lapsed:
        assert assignment is not None
        assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.EXPIRED
    assert Assignment.objects.get(pk=fresh.pk).status == AssignmentStatus.ACTIVE
    assert {item.pk: item.taken for item in Item.objects.all() if item.taken} == {fresh.item_id: 1}
    assert assignments_expire_stale() == 0


def test_expire_stale_works_through_more_leases_than_one_chunk(db: None) -> None:
    batch = factories.ready_batch(items=3, overlap=5)
    users = [factories.quick_annotator(f"chunk{n}") for n in range(5)]
    leases = [claim(user, batch) for user in users]  # lapsed only now: each claim sweeps its batch first
    for assignment in leases:
        assert assignment is not None
        factories.lapse_lease(assignment)

    assert assignments_expire_stale(limit=2) == 5
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()
    assert sum(Item.objects.values_list("taken", flat=True)) == 0


def test_too_many_active_leases_across_batches_are_refused(annotator: User, settings: Any) -> None:
    settings.MAX_ACTIVE_LEASES_PER_ANNOTATOR = 2
    batches = [factories.ready_batch(items=2) for _ in range(3)]
    first = claim(annotator, batches[0])
    assert first is not None
    assert claim(annotator, batches[1]) is not None

    with pytest.raises(ConflictError) as exc:
        claim(annotator, batches[2])
    assert exc.value.code == "too_many_leases"
    assert claim(annotator, batches[0]) is not None  # the current lease of a batch is still served

    finish(annotator, first)
    assert claim(annotator, batches[2]) is not None


# --- gold items -------------------------------------------------------------------------------------


def gold_batch(*, gold_rate: float, regular: int, gold: int, overlap: int) -> Batch:
    batch = factories.ready_batch(items=regular, overlap=overlap, gold_rate=gold_rate)
    for n in range(gold):
        factories.ready_item(
            batch, 10_000 + n, is_gold=True, gold_expected={"slot": 0, "min_strength": "better"}
        )
    Item.objects.filter(batch=batch, is_gold=True).update(wanted=1000)
    return batch


def test_gold_items_are_interleaved_at_the_batchs_rate(db: None) -> None:
    batch = gold_batch(gold_rate=0.2, regular=60, gold=50, overlap=10)
    users = [factories.quick_annotator(f"gold{n}") for n in range(10)]
    gold_ids = set(Item.objects.filter(batch=batch, is_gold=True).values_list("pk", flat=True))
    claims = golds = 0
    for user in users:
        for _ in range(50):
            assignment = claim(user, batch)
            assert assignment is not None
            claims += 1
            golds += assignment.item_id in gold_ids
            close_lease(assignment)
    # 500 claims at p = 0.2: the standard deviation of the share is 0.018, so +-0.06 is about 3.4 sigma
    # (a false failure about once in 1,500 runs).
    assert claims == 500
    assert 0.14 <= golds / claims <= 0.26


def test_a_batch_without_a_gold_rate_never_serves_gold(annotator: User) -> None:
    batch = gold_batch(gold_rate=0.0, regular=10, gold=10, overlap=1)
    served = []
    while (assignment := claim(annotator, batch)) is not None:
        served.append(assignment.item)
        close_lease(assignment)
        assert len(served) <= 20
    assert len(served) == 10
    assert not any(item.is_gold for item in served)


def test_gold_items_serve_when_the_regular_ones_run_out(annotator: User) -> None:
    batch = gold_batch(gold_rate=0.1, regular=2, gold=3, overlap=1)
    served = []
    while (assignment := claim(annotator, batch)) is not None:
        served.append(assignment.item)
        close_lease(assignment)
        assert len(served) <= 10
    assert len(served) == 5
    assert sum(item.is_gold for item in served) == 3


# --- guidelines -------------------------------------------------------------------------------------


def test_guidelines_are_needed_until_seen_and_again_after_a_new_version(annotator: User) -> None:
    batch = factories.ready_batch(items=1)
    assert guidelines_needed(annotator=annotator, batch=batch)

    guidelines_mark_seen(annotator=annotator, batch=batch)
    assert not guidelines_needed(annotator=annotator, batch=batch)

    batch = batch_update_guidelines(batch_id=batch.pk, guidelines="# New guidelines\n\nRead again.")
    assert batch.guidelines_version == 2
    assert guidelines_needed(annotator=annotator, batch=Batch.objects.get(pk=batch.pk))

    guidelines_mark_seen(annotator=annotator, batch=batch)
    assert not guidelines_needed(annotator=annotator, batch=Batch.objects.get(pk=batch.pk))


def test_guidelines_seen_by_one_annotator_are_still_needed_by_another(
    annotator: User, other_annotator: User
) -> None:
    batch = factories.ready_batch(items=1)
    guidelines_mark_seen(annotator=annotator, batch=batch)
    assert guidelines_needed(annotator=other_annotator, batch=batch)


def test_a_batch_without_guidelines_needs_no_reading(annotator: User) -> None:
    batch = factories.ready_batch(items=1, guidelines="   ")
    assert not guidelines_needed(annotator=annotator, batch=batch)


def test_a_lease_records_the_guidelines_version_it_was_taken_under(annotator: User) -> None:
    batch = factories.ready_batch(items=2)
    batch_update_guidelines(batch_id=batch.pk, guidelines="Version two.")
    assignment = claim(annotator, batch)
    assert assignment is not None
    assert assignment.guidelines_version == 2
