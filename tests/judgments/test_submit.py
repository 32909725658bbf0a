"""Submitting judgments: validation, idempotency, safety bins, late submits, skips and flags."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from annotate.accounts.models import User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.assignments.services import (
    NotFound,
    Progress,
    assignment_claim_next,
    assignment_flag,
    assignment_skip,
    assignments_expire_stale,
)
from annotate.batches.models import Batch, Item
from annotate.core.choices import Mode, SafetyBin, Strength, Track
from annotate.core.errors import ConflictError, DomainError
from annotate.judgments.models import Judgment
from annotate.judgments.services import (
    JudgmentInput,
    JudgmentInvalid,
    judgment_input_from_form,
    judgment_submit,
)
from tests import factories

pytestmark = pytest.mark.django_db

KEY = "submit-key-0001"


def lease(user: User, batch: Batch) -> Assignment:
    assignment = assignment_claim_next(annotator=user, batch_id=batch.pk)
    assert assignment is not None
    return assignment


def submit(user: User, assignment: Assignment, data: JudgmentInput) -> Any:
    return judgment_submit(annotator=user, assignment_id=assignment.pk, data=data)


def status_of(assignment: Assignment) -> str:
    return Assignment.objects.get(pk=assignment.pk).status


def taken(assignment: Assignment) -> int:
    return Item.objects.get(pk=assignment.item_id).taken


@pytest.fixture
def batch(db: None) -> Batch:
    return factories.ready_batch(items=3, overlap=2)


# --- pairwise ---------------------------------------------------------------------------------------


def test_a_valid_pairwise_submit_stores_the_judgment_and_finishes_the_lease(
    annotator: User, batch: Batch
) -> None:
    assignment = lease(annotator, batch)
    right, left = assignment.positions[1], assignment.positions[0]

    result = submit(
        annotator,
        assignment,
        JudgmentInput(
            idempotency_key=KEY,
            chosen=right,
            strength=Strength.SIGNIFICANTLY_BETTER,
            rationale="  Clearer and correct.  ",
            time_spent_ms=4200,
        ),
    )

    assert not result.replayed
    judgment = Judgment.objects.get()
    assert judgment.pk == result.judgment.pk
    assert judgment.chosen_id == right
    assert judgment.rejected_id == left
    assert judgment.strength == Strength.SIGNIFICANTLY_BETTER
    assert judgment.position_chosen == 1
    assert judgment.mode == Mode.PAIRWISE
    assert judgment.track == Track.HELPFULNESS
    assert (judgment.item_id, judgment.batch_id, judgment.annotator_id) == (
        assignment.item_id,
        batch.pk,
        annotator.pk,
    )
    assert judgment.rationale == "Clearer and correct."
    assert judgment.time_spent_ms == 4200
    assert judgment.safety_labels is None
    assert judgment.safety_bin == ""
    stored = Assignment.objects.get(pk=assignment.pk)
    assert stored.status == AssignmentStatus.SUBMITTED
    assert stored.finished_at is not None
    assert taken(assignment) == 1  # the submitted judgment keeps its place


def test_choosing_the_left_response_records_position_zero(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    result = submit(annotator, assignment, factories.pairwise_answer(assignment, KEY, pick=0))
    assert result.judgment.position_chosen == 0
    assert result.judgment.chosen_id == assignment.positions[0]


def test_the_same_idempotency_key_twice_stores_one_judgment(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    first = submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))
    again = submit(annotator, assignment, factories.pairwise_answer(assignment, KEY, pick=1))

    assert not first.replayed
    assert again.replayed
    assert again.judgment.pk == first.judgment.pk
    assert again.judgment.chosen_id == assignment.positions[0]  # the stored answer, not the replay's
    assert Judgment.objects.count() == 1


def test_another_key_on_a_submitted_assignment_is_a_conflict(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))
    with pytest.raises(ConflictError) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, "another-key-0002"))
    assert exc.value.code == "already_submitted"
    assert Judgment.objects.count() == 1


def test_a_key_reused_on_another_assignment_is_a_conflict(annotator: User, batch: Batch) -> None:
    first = lease(annotator, batch)
    submit(annotator, first, factories.pairwise_answer(first, KEY))
    second = lease(annotator, batch)
    with pytest.raises(ConflictError) as exc:
        submit(annotator, second, factories.pairwise_answer(second, KEY))
    assert exc.value.code == "idempotency_key_reused"
    assert status_of(second) == AssignmentStatus.ACTIVE
    assert Judgment.objects.count() == 1


def test_another_annotator_may_use_the_same_key(annotator: User, other_annotator: User, batch: Batch) -> None:
    mine, theirs = lease(annotator, batch), lease(other_annotator, batch)
    submit(annotator, mine, factories.pairwise_answer(mine, KEY))
    result = submit(other_annotator, theirs, factories.pairwise_answer(theirs, KEY))
    assert not result.replayed
    assert Judgment.objects.count() == 2


@pytest.mark.parametrize("key", ["", "short", "x" * 65, "has space 123", "semi;colon-key"])
def test_a_submit_needs_a_well_formed_idempotency_key(annotator: User, batch: Batch, key: str) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(JudgmentInvalid) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, key))
    assert set(exc.value.errors) == {"idempotency_key"}
    assert exc.value.field == "idempotency_key"
    assert not Judgment.objects.exists()


def test_a_missing_strength_is_refused_naming_the_field(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(JudgmentInvalid) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, KEY, strength=""))
    assert set(exc.value.errors) == {"strength"}
    assert status_of(assignment) == AssignmentStatus.ACTIVE
    assert not Judgment.objects.exists()


def test_an_unknown_strength_is_refused(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(JudgmentInvalid) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, KEY, strength="much_better"))
    assert set(exc.value.errors) == {"strength"}


def test_a_chosen_response_of_another_item_is_refused(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    foreign = Item.objects.exclude(pk=assignment.item_id).filter(batch=batch).first().responses.first()
    with pytest.raises(JudgmentInvalid) as exc:
        submit(
            annotator, assignment, JudgmentInput(idempotency_key=KEY, chosen=foreign.pk, strength="better")
        )
    assert set(exc.value.errors) == {"chosen"}
    assert not Judgment.objects.exists()


def test_every_wrong_field_is_named_at_once(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(JudgmentInvalid) as exc:
        submit(
            annotator,
            assignment,
            JudgmentInput(idempotency_key=KEY, rationale="x" * 5001, time_spent_ms=-1),
        )
    assert set(exc.value.errors) == {"chosen", "strength", "rationale", "time_spent_ms"}
    assert set(exc.value.as_dict()["error"]["fields"]) == set(exc.value.errors)


def test_safety_labels_on_a_helpfulness_batch_are_refused(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    labels = dict.fromkeys(assignment.positions, "safe")
    with pytest.raises(JudgmentInvalid) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, KEY, safety_labels=labels))
    assert set(exc.value.errors) == {"safety_labels"}


# --- ranking ----------------------------------------------------------------------------------------


@pytest.fixture
def ranking_batch(db: None) -> Batch:
    return factories.ready_batch(items=2, mode=Mode.RANKING, responses_per_item=4)


def test_a_valid_ranking_is_stored_in_the_given_order(annotator: User, ranking_batch: Batch) -> None:
    assignment = lease(annotator, ranking_batch)
    order = [int(pk) for pk in reversed(assignment.positions)]

    result = submit(annotator, assignment, JudgmentInput(idempotency_key=KEY, ranking=order))

    judgment = Judgment.objects.get(pk=result.judgment.pk)
    assert judgment.mode == Mode.RANKING
    assert judgment.ranking == order
    assert judgment.chosen_id is None
    assert judgment.strength == ""
    assert status_of(assignment) == AssignmentStatus.SUBMITTED


def ranking_with_duplicate(ids: list[int]) -> list[int]:
    return [ids[0], ids[0], ids[1], ids[2]]


def ranking_with_one_missing(ids: list[int]) -> list[int]:
    return ids[:3]


def ranking_with_a_stranger(ids: list[int]) -> list[int]:
    return [*ids[:3], 999_999]


def ranking_with_an_extra(ids: list[int]) -> list[int]:
    return [*ids, 999_999]


@pytest.mark.parametrize(
    "broken",
    [ranking_with_duplicate, ranking_with_one_missing, ranking_with_a_stranger, ranking_with_an_extra],
)
def test_a_ranking_must_list_each_response_exactly_once(
    annotator: User, ranking_batch: Batch, broken: Callable[[list[int]], list[int]]
) -> None:
    assignment = lease(annotator, ranking_batch)
    ids = [int(pk) for pk in assignment.positions]
    with pytest.raises(JudgmentInvalid) as exc:
        submit(annotator, assignment, JudgmentInput(idempotency_key=KEY, ranking=broken(ids)))
    assert set(exc.value.errors) == {"ranking"}
    assert not Judgment.objects.exists()


def test_a_missing_ranking_is_refused(annotator: User, ranking_batch: Batch) -> None:
    assignment = lease(annotator, ranking_batch)
    with pytest.raises(JudgmentInvalid) as exc:
        submit(annotator, assignment, JudgmentInput(idempotency_key=KEY))
    assert set(exc.value.errors) == {"ranking"}


# --- safety -----------------------------------------------------------------------------------------


@pytest.fixture
def safety_batch(db: None) -> Batch:
    return factories.ready_batch(items=2, track=Track.SAFETY)


@pytest.mark.parametrize(
    ("chosen_label", "other_label", "expected_bin"),
    [
        ("safe", "unsafe", SafetyBin.CHOSEN_SAFE_OTHER_UNSAFE),
        ("safe", "safe", SafetyBin.BOTH_SAFE),
        ("unsafe", "unsafe", SafetyBin.BOTH_UNSAFE),
    ],
)
def test_a_safety_judgment_stores_its_labels_and_bin(
    safety_annotator: User, safety_batch: Batch, chosen_label: str, other_label: str, expected_bin: str
) -> None:
    assignment = lease(safety_annotator, safety_batch)
    chosen, other = assignment.positions
    labels = {chosen: chosen_label, other: other_label}

    result = submit(
        safety_annotator, assignment, factories.pairwise_answer(assignment, KEY, safety_labels=labels)
    )

    judgment = Judgment.objects.get(pk=result.judgment.pk)
    assert judgment.track == Track.SAFETY
    assert judgment.safety_labels == {str(chosen): chosen_label, str(other): other_label}
    assert judgment.safety_bin == expected_bin
    assert not judgment.flagged


def test_choosing_the_unsafe_response_over_a_safe_one_needs_confirmation(
    safety_annotator: User, safety_batch: Batch
) -> None:
    assignment = lease(safety_annotator, safety_batch)
    chosen, other = assignment.positions
    labels = {chosen: "unsafe", other: "safe"}

    with pytest.raises(JudgmentInvalid) as exc:
        submit(safety_annotator, assignment, factories.pairwise_answer(assignment, KEY, safety_labels=labels))
    assert set(exc.value.errors) == {"confirm_unsafe_choice"}
    assert not Judgment.objects.exists()

    result = submit(
        safety_annotator,
        assignment,
        factories.pairwise_answer(assignment, KEY, safety_labels=labels, confirm_unsafe_choice=True),
    )
    judgment = Judgment.objects.get(pk=result.judgment.pk)
    assert judgment.safety_bin == SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE
    assert judgment.flagged


@pytest.mark.parametrize("labelled", [0, 1])
def test_a_safety_judgment_needs_a_label_for_every_response(
    safety_annotator: User, safety_batch: Batch, labelled: int
) -> None:
    assignment = lease(safety_annotator, safety_batch)
    labels = dict.fromkeys(assignment.positions[:labelled], "safe")
    with pytest.raises(JudgmentInvalid) as exc:
        submit(safety_annotator, assignment, factories.pairwise_answer(assignment, KEY, safety_labels=labels))
    assert set(exc.value.errors) == {"safety_labels"}


def test_a_safety_label_outside_safe_and_unsafe_is_refused(
    safety_annotator: User, safety_batch: Batch
) -> None:
    assignment = lease(safety_annotator, safety_batch)
    chosen, other = assignment.positions
    labels = {chosen: "safe", other: "maybe"}
    with pytest.raises(JudgmentInvalid) as exc:
        submit(safety_annotator, assignment, factories.pairwise_answer(assignment, KEY, safety_labels=labels))
    assert set(exc.value.errors) == {"safety_labels"}


def test_a_safety_label_for_a_response_not_shown_is_refused(
    safety_annotator: User, safety_batch: Batch
) -> None:
    assignment = lease(safety_annotator, safety_batch)
    labels = dict.fromkeys(assignment.positions, "safe") | {999_999: "unsafe"}
    with pytest.raises(JudgmentInvalid) as exc:
        submit(safety_annotator, assignment, factories.pairwise_answer(assignment, KEY, safety_labels=labels))
    assert set(exc.value.errors) == {"safety_labels"}


def test_a_safety_ranking_stores_labels_without_a_bin(safety_annotator: User) -> None:
    batch = factories.ready_batch(items=1, track=Track.SAFETY, mode=Mode.RANKING, responses_per_item=3)
    assignment = lease(safety_annotator, batch)
    order = [int(pk) for pk in assignment.positions]
    labels = dict.fromkeys(order, "unsafe")
    result = submit(
        safety_annotator, assignment, JudgmentInput(idempotency_key=KEY, ranking=order, safety_labels=labels)
    )
    assert result.judgment.safety_labels == {str(pk): "unsafe" for pk in order}
    assert result.judgment.safety_bin == ""
    assert not result.judgment.flagged


# --- late submits -----------------------------------------------------------------------------------


def test_a_late_submit_is_accepted_while_the_item_has_room(annotator: User) -> None:
    batch = factories.ready_batch(items=1, overlap=2)
    assignment = lease(annotator, batch)
    factories.lapse_lease(assignment)
    assert assignments_expire_stale() == 1
    assert status_of(assignment) == AssignmentStatus.EXPIRED
    assert taken(assignment) == 0

    result = submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))

    assert not result.replayed
    assert status_of(assignment) == AssignmentStatus.SUBMITTED
    assert taken(assignment) == 1


def test_a_lapsed_lease_not_yet_swept_is_still_accepted(annotator: User) -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    assignment = lease(annotator, batch)
    factories.lapse_lease(assignment)
    submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))
    assert status_of(assignment) == AssignmentStatus.SUBMITTED
    assert taken(assignment) == 1
    assert assignments_expire_stale() == 0


def test_a_late_submit_is_refused_once_the_item_filled_up(annotator: User, other_annotator: User) -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    assignment = lease(annotator, batch)
    factories.lapse_lease(assignment)
    assignments_expire_stale()
    replacement = lease(other_annotator, batch)
    assert replacement.item_id == assignment.item_id

    with pytest.raises(ConflictError) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))

    assert exc.value.code == "lease_expired"
    assert not Judgment.objects.exists()
    assert status_of(assignment) == AssignmentStatus.EXPIRED
    assert taken(assignment) == 1


def test_an_invalid_late_submit_does_not_take_a_place(annotator: User) -> None:
    batch = factories.ready_batch(items=1, overlap=1)
    assignment = lease(annotator, batch)
    factories.lapse_lease(assignment)
    assignments_expire_stale()
    with pytest.raises(JudgmentInvalid):
        submit(annotator, assignment, factories.pairwise_answer(assignment, KEY, strength=""))
    assert taken(assignment) == 0
    assert status_of(assignment) == AssignmentStatus.EXPIRED


# --- whose assignment, skips and flags --------------------------------------------------------------


def test_submitting_another_annotators_assignment_is_not_found(
    annotator: User, other_annotator: User, batch: Batch
) -> None:
    theirs = lease(other_annotator, batch)
    with pytest.raises(NotFound):
        submit(annotator, theirs, factories.pairwise_answer(theirs, KEY))
    assert status_of(theirs) == AssignmentStatus.ACTIVE
    assert not Judgment.objects.exists()


def test_skipping_or_flagging_another_annotators_assignment_is_not_found(
    annotator: User, other_annotator: User, batch: Batch
) -> None:
    theirs = lease(other_annotator, batch)
    with pytest.raises(NotFound):
        assignment_skip(annotator=annotator, assignment_id=theirs.pk, reason="Not mine.")
    with pytest.raises(NotFound):
        assignment_flag(annotator=annotator, assignment_id=theirs.pk, flag="broken")
    stored = Assignment.objects.get(pk=theirs.pk)
    assert (stored.status, stored.flag) == (AssignmentStatus.ACTIVE, "")


def test_a_skipped_assignment_cannot_be_submitted(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    assignment_skip(annotator=annotator, assignment_id=assignment.pk, reason="Outside my expertise.")
    with pytest.raises(ConflictError) as exc:
        submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))
    assert exc.value.code == "already_skipped"
    assert not Judgment.objects.exists()
    assert taken(assignment) == 0


def test_a_skip_records_the_reason_and_gives_the_place_back(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    skipped = assignment_skip(annotator=annotator, assignment_id=assignment.pk, reason="  Too long.  ")
    stored = Assignment.objects.get(pk=assignment.pk)
    assert stored.status == AssignmentStatus.SKIPPED
    assert stored.skip_reason == "Too long."
    assert stored.finished_at is not None
    assert skipped.pk == assignment.pk
    assert taken(assignment) == 0
    assignment_skip(annotator=annotator, assignment_id=assignment.pk, reason="Again.")  # a replay
    assert taken(assignment) == 0


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_skip_needs_a_reason(annotator: User, batch: Batch, reason: str) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(DomainError) as exc:
        assignment_skip(annotator=annotator, assignment_id=assignment.pk, reason=reason)
    assert exc.value.field == "reason"
    assert status_of(assignment) == AssignmentStatus.ACTIVE
    assert taken(assignment) == 1


def test_a_submitted_assignment_cannot_be_skipped(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    submit(annotator, assignment, factories.pairwise_answer(assignment, KEY))
    with pytest.raises(ConflictError) as exc:
        assignment_skip(annotator=annotator, assignment_id=assignment.pk, reason="Changed my mind.")
    assert exc.value.code == "already_submitted"
    assert taken(assignment) == 1


def test_skipping_an_expired_lease_does_not_give_its_place_back_twice(
    annotator: User, other_annotator: User
) -> None:
    batch = factories.ready_batch(items=1, overlap=2)
    mine, theirs = lease(annotator, batch), lease(other_annotator, batch)
    factories.lapse_lease(mine)
    assignments_expire_stale()
    assert taken(mine) == 1
    assignment_skip(annotator=annotator, assignment_id=mine.pk, reason="Came back too late.")
    assert taken(mine) == 1
    assert status_of(theirs) == AssignmentStatus.ACTIVE


@pytest.mark.parametrize("flag", ["", "spam", "BROKEN"])
def test_a_flag_must_be_one_of_the_known_values(annotator: User, batch: Batch, flag: str) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(DomainError) as exc:
        assignment_flag(annotator=annotator, assignment_id=assignment.pk, flag=flag)
    assert exc.value.field == "flag"
    assert Assignment.objects.get(pk=assignment.pk).flag == ""


def test_a_flag_is_stored_with_its_note_and_keeps_the_lease(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    assignment_flag(annotator=annotator, assignment_id=assignment.pk, flag="offensive", note="  Slur in B. ")
    stored = Assignment.objects.get(pk=assignment.pk)
    assert (stored.flag, stored.flag_note, stored.status) == (
        "offensive",
        "Slur in B.",
        AssignmentStatus.ACTIVE,
    )


def test_a_flag_note_is_limited(annotator: User, batch: Batch) -> None:
    assignment = lease(annotator, batch)
    with pytest.raises(DomainError) as exc:
        assignment_flag(annotator=annotator, assignment_id=assignment.pk, flag="broken", note="n" * 1001)
    assert exc.value.field == "note"


# --- the workbench form -----------------------------------------------------------------------------


def test_form_input_reads_safety_labels_ranking_and_numbers() -> None:
    data = judgment_input_from_form(
        {
            "idempotency_key": KEY,
            "chosen": "12",
            "strength": "better",
            "ranking": "3, 1,2",
            "safety_12": "safe",
            "safety_13": "unsafe",
            "safety_14": "",
            "safety_x": "safe",
            "safety": "unsafe",
            "time_spent_ms": "1500",
            "rationale": "Because.",
            "confirm_unsafe_choice": "on",
        }
    )
    assert data.idempotency_key == KEY
    assert data.chosen == 12
    assert data.strength == "better"
    assert data.ranking == [3, 1, 2]
    assert data.safety_labels == {12: "safe", 13: "unsafe"}
    assert data.time_spent_ms == 1500
    assert data.rationale == "Because."
    assert data.confirm_unsafe_choice


def test_form_input_without_optional_fields_has_empty_defaults() -> None:
    data = judgment_input_from_form({"idempotency_key": KEY})
    assert data.chosen is None
    assert data.ranking is None
    assert data.safety_labels == {}
    assert data.time_spent_ms is None
    assert not data.confirm_unsafe_choice


@pytest.mark.parametrize(
    ("field", "value"),
    [("ranking", "a,b"), ("ranking", "1,two,3"), ("time_spent_ms", "soon"), ("chosen", "left")],
)
def test_form_input_refuses_malformed_numbers(field: str, value: str) -> None:
    with pytest.raises(JudgmentInvalid) as exc:
        judgment_input_from_form({"idempotency_key": KEY, field: value})
    assert set(exc.value.errors) == {field}


def test_form_input_round_trips_through_a_submit(safety_annotator: User, safety_batch: Batch) -> None:
    assignment = lease(safety_annotator, safety_batch)
    chosen, other = assignment.positions
    form = {
        "idempotency_key": KEY,
        "chosen": str(chosen),
        "strength": "slightly_better",
        f"safety_{chosen}": "safe",
        f"safety_{other}": "unsafe",
    }
    result = submit(safety_annotator, assignment, judgment_input_from_form(form))
    assert result.judgment.safety_bin == SafetyBin.CHOSEN_SAFE_OTHER_UNSAFE
    assert result.judgment.strength == Strength.SLIGHTLY_BETTER


# --- progress counters ------------------------------------------------------------------------------


def test_progress_counts_each_submitted_judgment_once(annotator: User) -> None:
    from annotate.assignments.services import progress_of

    batch = factories.ready_batch(items=4, overlap=1)
    assert progress_of(annotator=annotator, batch=batch) == Progress(today=0, total=0)
    first = lease(annotator, batch)
    result = submit(annotator, first, factories.pairwise_answer(first, "progress-key-1"))
    assert result.progress == Progress(today=1, total=1)
    replay = submit(annotator, first, factories.pairwise_answer(first, "progress-key-1"))
    assert replay.replayed and replay.progress is None
    skipped = lease(annotator, batch)
    assignment_skip(annotator=annotator, assignment_id=skipped.pk, reason="cannot judge")
    second = lease(annotator, batch)
    submit(annotator, second, factories.pairwise_answer(second, "progress-key-2"))

    submitted = Assignment.objects.filter(annotator=annotator, batch=batch, status=AssignmentStatus.SUBMITTED)
    assert submitted.count() == 2
    assert progress_of(annotator=annotator, batch=batch) == Progress(today=2, total=2)


def test_todays_count_starts_again_on_a_new_day(annotator: User) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from annotate.assignments.models import AnnotatorProgress
    from annotate.assignments.services import progress_of

    batch = factories.ready_batch(items=3, overlap=1)
    first = lease(annotator, batch)
    submit(annotator, first, factories.pairwise_answer(first, "day-key-1"))
    AnnotatorProgress.objects.filter(annotator=annotator, batch=batch).update(
        day=timezone.localdate() - timedelta(days=1), today=7
    )
    assert progress_of(annotator=annotator, batch=batch) == Progress(today=0, total=1)
    second = lease(annotator, batch)
    assert submit(annotator, second, factories.pairwise_answer(second, "day-key-2")).progress == Progress(
        today=1, total=2
    )
