"""The data model's invariants hold in the database itself, whatever code writes the rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Batch, Item
from annotate.core.choices import Mode, SafetyBin, Strength, Track
from annotate.judgments.models import Judgment
from tests import factories

pytestmark = pytest.mark.django_db


def make_assignment(item: Item, user, status: str = AssignmentStatus.ACTIVE) -> Assignment:  # type: ignore[no-untyped-def]
    now = timezone.now()
    return Assignment.objects.create(
        item=item,
        batch=item.batch,
        annotator=user,
        status=status,
        leased_at=now,
        expires_at=now + timedelta(minutes=30),
        finished_at=None if status == AssignmentStatus.ACTIVE else now,
        positions=list(item.responses.values_list("pk", flat=True)),
    )


def pairwise_judgment(assignment: Assignment, **overrides) -> Judgment:  # type: ignore[no-untyped-def]
    first, second = assignment.item.responses.all()[:2]
    fields = {
        "assignment": assignment,
        "item": assignment.item,
        "batch": assignment.batch,
        "annotator": assignment.annotator,
        "track": assignment.batch.track,
        "mode": Mode.PAIRWISE,
        "chosen": first,
        "rejected": second,
        "strength": Strength.BETTER,
        "idempotency_key": f"key-{assignment.pk}",
    }
    fields.update(overrides)
    return Judgment.objects.create(**fields)


def assert_integrity_error(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_an_annotator_cannot_get_the_same_item_twice(annotator) -> None:  # type: ignore[no-untyped-def]
    item = factories.ready_item(factories.BatchFactory(overlap=3), 1)
    make_assignment(item, annotator, status=AssignmentStatus.SKIPPED)
    assert_integrity_error(lambda: make_assignment(item, annotator))


def test_an_annotator_holds_one_active_lease_per_batch(annotator) -> None:  # type: ignore[no-untyped-def]
    batch = factories.BatchFactory(overlap=2)
    first, second = factories.ready_item(batch, 1), factories.ready_item(batch, 2)
    make_assignment(first, annotator)
    assert_integrity_error(lambda: make_assignment(second, annotator))
    # Once the first is finished, the next lease in the batch is allowed.
    Assignment.objects.filter(item=first).update(
        status=AssignmentStatus.SUBMITTED, finished_at=timezone.now()
    )
    make_assignment(second, annotator)


def test_an_assignment_has_at_most_one_judgment(annotator) -> None:  # type: ignore[no-untyped-def]
    assignment = make_assignment(factories.ready_item(factories.BatchFactory(), 1), annotator)
    pairwise_judgment(assignment)
    assert_integrity_error(lambda: pairwise_judgment(assignment, idempotency_key="another-key"))


def test_an_idempotency_key_is_used_once_per_annotator(annotator) -> None:  # type: ignore[no-untyped-def]
    batch = factories.BatchFactory(overlap=1)
    a1 = make_assignment(factories.ready_item(batch, 1), annotator, status=AssignmentStatus.SUBMITTED)
    other_batch = factories.BatchFactory()
    a2 = make_assignment(factories.ready_item(other_batch, 2), annotator)
    pairwise_judgment(a1, idempotency_key="same")
    assert_integrity_error(lambda: pairwise_judgment(a2, idempotency_key="same"))


@pytest.mark.parametrize("strength", ["much_better", "BETTER", "negligibly"])
def test_an_invalid_strength_is_refused_by_the_database(annotator, strength: str) -> None:  # type: ignore[no-untyped-def]
    assignment = make_assignment(factories.ready_item(factories.BatchFactory(), 1), annotator)
    assert_integrity_error(lambda: pairwise_judgment(assignment, strength=strength))


def test_an_invalid_strength_fails_model_validation(annotator) -> None:  # type: ignore[no-untyped-def]
    assignment = make_assignment(factories.ready_item(factories.BatchFactory(), 1), annotator)
    judgment = Judgment(
        assignment=assignment,
        item=assignment.item,
        batch=assignment.batch,
        annotator=annotator,
        track=Track.HELPFULNESS,
        mode=Mode.PAIRWISE,
        chosen=assignment.item.responses.first(),
        rejected=assignment.item.responses.last(),
        strength="much_better",
        idempotency_key="k",
    )
    with pytest.raises(ValidationError) as exc:
        judgment.full_clean()
    assert "strength" in exc.value.message_dict


def test_a_pairwise_judgment_needs_two_different_responses_and_a_strength(annotator) -> None:  # type: ignore[no-untyped-def]
    assignment = make_assignment(factories.ready_item(factories.BatchFactory(), 1), annotator)
    first = assignment.item.responses.first()
    assert_integrity_error(lambda: pairwise_judgment(assignment, rejected=first, chosen=first))
    assert_integrity_error(lambda: pairwise_judgment(assignment, strength=""))
    assert_integrity_error(lambda: pairwise_judgment(assignment, ranking=[1, 2]))


def test_a_helpfulness_judgment_carries_no_safety_labels(annotator) -> None:  # type: ignore[no-untyped-def]
    assignment = make_assignment(factories.ready_item(factories.BatchFactory(), 1), annotator)
    assert_integrity_error(lambda: pairwise_judgment(assignment, safety_labels={"1": "safe"}))
    assert_integrity_error(lambda: pairwise_judgment(assignment, safety_bin=SafetyBin.BOTH_SAFE))


def test_a_safety_judgment_needs_labels_and_flags_only_the_unsafe_chosen_bin(safety_annotator) -> None:  # type: ignore[no-untyped-def]
    batch = factories.BatchFactory(track=Track.SAFETY)
    assignment = make_assignment(factories.ready_item(batch, 1), safety_annotator)
    assert_integrity_error(lambda: pairwise_judgment(assignment, track=Track.SAFETY))
    assert_integrity_error(
        lambda: pairwise_judgment(
            assignment, track=Track.SAFETY, safety_labels={}, safety_bin=SafetyBin.BOTH_SAFE, flagged=True
        )
    )
    judgment = pairwise_judgment(
        assignment,
        track=Track.SAFETY,
        safety_labels={"a": "unsafe", "b": "safe"},
        safety_bin=SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE,
        flagged=True,
    )
    assert judgment.flagged


@pytest.mark.parametrize(
    ("mode", "k"), [(Mode.PAIRWISE, 3), (Mode.PAIRWISE, 1), (Mode.RANKING, 1), (Mode.RANKING, 10)]
)
def test_k_out_of_range_is_refused(mode: str, k: int) -> None:
    batch = Batch(name="b", track=Track.HELPFULNESS, mode=mode, responses_per_item=k)
    with pytest.raises(ValidationError) as exc:
        batch.full_clean()
    assert "responses_per_item" in exc.value.message_dict
    assert_integrity_error(
        lambda: Batch.objects.create(name="b", track=Track.HELPFULNESS, mode=mode, responses_per_item=k)
    )


@pytest.mark.parametrize("k", [2, 4, 9])
def test_k_in_range_is_accepted_for_ranking(k: int) -> None:
    batch = Batch(name="b", track=Track.HELPFULNESS, mode=Mode.RANKING, responses_per_item=k)
    batch.full_clean()
    batch.save()


def test_an_item_never_holds_more_leases_than_it_wants() -> None:
    item = factories.ready_item(factories.BatchFactory(overlap=2), 1)
    assert_integrity_error(lambda: Item.objects.filter(pk=item.pk).update(taken=3))


def test_a_conversation_appears_once_per_batch() -> None:
    batch = factories.BatchFactory()
    factories.ready_item(batch, 1)
    assert_integrity_error(lambda: factories.ready_item(batch, 1))
    factories.ready_item(factories.BatchFactory(), 1)  # another batch may hold the same conversation


def test_a_response_slot_is_unique_per_item() -> None:
    item = factories.ready_item(factories.BatchFactory(), 1)
    response = item.responses.first()
    response.pk = None
    assert_integrity_error(response.save)
