"""Submitting judgments: validation of what the annotator sent, and the one transaction that stores it.

The same functions serve the workbench pages and the API, so both follow one set of rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotate.accounts.models import User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.assignments.services import (
    NotFound,
    Progress,
    progress_count_submit,
    reserve_place_for_late_submit,
)
from annotate.assignments.store import assignment_finish, own_assignment_for_submit
from annotate.core.choices import Mode, SafetyBin, SafetyLabel, Strength, Track, safety_bin
from annotate.core.errors import ConflictError, DomainError
from annotate.judgments.models import Judgment
from annotate.judgments.store import judgment_insert
from annotate.quality.services import quality_judgment_recorded

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
MAX_RATIONALE = 5000
MAX_TIME_SPENT_MS = 24 * 60 * 60 * 1000


class JudgmentInvalid(DomainError):
    """One or more fields are wrong; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, code="invalid", field=first_field)
        self.errors = errors

    def as_dict(self) -> dict[str, object]:
        return {
            "error": {
                "code": self.code,
                "message": "; ".join(self.errors.values()),
                "fields": {k: [v] for k, v in self.errors.items()},
            }
        }


@dataclass
class JudgmentInput:
    """What the annotator answered, in response ids, before it is checked against the assignment."""

    idempotency_key: str
    chosen: int | None = None
    strength: str = ""
    ranking: list[int] | None = None
    safety_labels: dict[int, str] = field(default_factory=dict)
    rationale: str = ""
    time_spent_ms: int | None = None
    confirm_unsafe_choice: bool = False


def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def judgment_input_from_form(data: Mapping[str, Any]) -> JudgmentInput:
    """Reads the workbench form's fields (`safety_<response id>` for labels, `ranking` as "id,id,...").
    Shape errors here; meaning errors (ids not of this item) in `judgment_submit`."""
    errors: dict[str, str] = {}
    ranking: list[int] | None = None
    raw_ranking = str(data.get("ranking") or "").strip()
    if raw_ranking:
        try:
            ranking = [int(part) for part in raw_ranking.split(",") if part.strip()]
        except ValueError:
            errors["ranking"] = "The ranking must be a list of response ids."
    labels: dict[int, str] = {}
    for key, value in data.items():
        if key.startswith("safety_") and key[7:].isdigit() and value:
            labels[int(key[7:])] = str(value)
    raw_time = data.get("time_spent_ms")
    time_spent = _int_or_none(raw_time)
    if raw_time not in (None, "") and time_spent is None:
        errors["time_spent_ms"] = "Time spent must be a whole number of milliseconds."
    raw_chosen = data.get("chosen")
    chosen = _int_or_none(raw_chosen)
    if raw_chosen not in (None, "") and chosen is None:
        errors["chosen"] = "Choose one of the responses."
    if errors:
        raise JudgmentInvalid(errors)
    return JudgmentInput(
        idempotency_key=str(data.get("idempotency_key") or ""),
        chosen=chosen,
        strength=str(data.get("strength") or ""),
        ranking=ranking,
        safety_labels=labels,
        rationale=str(data.get("rationale") or ""),
        time_spent_ms=time_spent,
        confirm_unsafe_choice=str(data.get("confirm_unsafe_choice") or "") in {"1", "true", "on", "yes"},
    )


@dataclass(frozen=True)
class Validated:
    chosen: int | None
    rejected: int | None
    strength: str
    ranking: list[int] | None
    safety_labels: dict[str, str] | None
    safety_bin: str
    flagged: bool
    position_chosen: int | None


def validate_judgment(assignment: Assignment, data: JudgmentInput) -> Validated:
    """Checks an answer against the assignment (mode, track, this item's responses). Raises
    JudgmentInvalid naming every wrong field at once, so a form can show them all."""
    batch = assignment.batch
    shown: list[int] = [int(pk) for pk in assignment.positions]
    errors: dict[str, str] = {}
    chosen = rejected = None
    strength = ""
    ranking: list[int] | None = None
    position_chosen = None

    if batch.mode == Mode.PAIRWISE:
        if data.chosen is None:
            errors["chosen"] = "Choose which response is better."
        elif data.chosen not in shown:
            errors["chosen"] = "The chosen response is not one of this item's responses."
        else:
            chosen = data.chosen
            rejected = next(pk for pk in shown if pk != chosen)
            position_chosen = shown.index(chosen)
        if data.strength not in Strength.values:
            errors["strength"] = (
                "Say how much better: significantly, better, slightly, or negligibly / unsure."
            )
        else:
            strength = data.strength
    else:
        if not data.ranking:
            errors["ranking"] = "Order all the responses from best to worst."
        elif sorted(data.ranking) != sorted(shown) or len(set(data.ranking)) != len(shown):
            errors["ranking"] = f"The ranking must list each of the {len(shown)} responses exactly once."
        else:
            ranking = list(data.ranking)

    labels: dict[str, str] | None = None
    bin_value = ""
    flagged = False
    if batch.track == Track.SAFETY:
        missing = [pk for pk in shown if data.safety_labels.get(pk) not in SafetyLabel.values]
        extra = set(data.safety_labels) - set(shown)
        if missing or extra:
            errors["safety_labels"] = "Label every response as safe or unsafe."
        else:
            labels = {str(pk): data.safety_labels[pk] for pk in shown}
            if chosen is not None and rejected is not None:
                bin_value = safety_bin(
                    labels[str(chosen)] == SafetyLabel.SAFE, labels[str(rejected)] == SafetyLabel.SAFE
                ).value
                flagged = bin_value == SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE
                if flagged and not data.confirm_unsafe_choice:
                    errors["confirm_unsafe_choice"] = (
                        "You prefer the response you labelled unsafe over a safe one. Confirm that this is "
                        "what you mean; it will be recorded and flagged for review."
                    )
    elif data.safety_labels:
        errors["safety_labels"] = "Safety labels belong to the safety track only."

    if len(data.rationale) > MAX_RATIONALE:
        errors["rationale"] = f"The rationale is limited to {MAX_RATIONALE} characters."
    if data.time_spent_ms is not None and not 0 <= data.time_spent_ms <= MAX_TIME_SPENT_MS:
        errors["time_spent_ms"] = "Time spent is out of range."
    if errors:
        raise JudgmentInvalid(errors)
    return Validated(
        chosen=chosen,
        rejected=rejected,
        strength=strength,
        ranking=ranking,
        safety_labels=labels,
        safety_bin=bin_value,
        flagged=flagged,
        position_chosen=position_chosen,
    )


@dataclass(frozen=True)
class Submitted:
    judgment: Judgment
    replayed: bool  # True when this key had already been stored: the same answer is returned again
    assignment: Assignment  # as read under its lock, with batch and item
    progress: Progress | None = None  # the annotator's figures in the batch after this submit (not replays)


def judgment_submit(*, annotator: User, assignment_id: int, data: JudgmentInput) -> Submitted:
    """Store the annotator's judgment of an assignment, exactly once per idempotency key.

    A double click, a retried POST or a replay with the same key returns the stored judgment. A late
    submit of a lease that expired is accepted while its item still has room. The assignment's row lock
    serialises concurrent submits of one assignment, so the second sees the first's result.
    """
    if not IDEMPOTENCY_KEY.match(data.idempotency_key or ""):
        raise JudgmentInvalid(
            {"idempotency_key": "A submission needs an idempotency key of 8-64 characters."}
        )
    with transaction.atomic():
        found = own_assignment_for_submit(annotator.pk, assignment_id, data.idempotency_key)
        if found is None:
            raise NotFound("No such assignment.")
        assignment, previous_id, previous_assignment_id = found
        if previous_id is None and assignment.status != AssignmentStatus.ACTIVE:
            # The join above saw the database as it was when the statement began: if a concurrent submit
            # of this key held the lock then, its judgment is only visible to a fresh read.
            previous_id, previous_assignment_id = (
                Judgment.objects.filter(annotator=annotator, idempotency_key=data.idempotency_key)
                .values_list("pk", "assignment_id")
                .first()
            ) or (None, None)
        if previous_id is not None:
            if previous_assignment_id != assignment.pk:
                raise ConflictError(
                    "This idempotency key was already used for another item.", code="idempotency_key_reused"
                )
            previous = Judgment.objects.select_related("assignment").get(pk=previous_id)
            return Submitted(previous, replayed=True, assignment=assignment)
        if assignment.status == AssignmentStatus.SUBMITTED:
            raise ConflictError(
                "This item was already submitted (perhaps from another tab).", code="already_submitted"
            )
        if assignment.status == AssignmentStatus.SKIPPED:
            raise ConflictError("You skipped this item.", code="already_skipped")
        validated = validate_judgment(assignment, data)
        if assignment.status == AssignmentStatus.EXPIRED:
            reserve_place_for_late_submit(assignment)
        now = timezone.now()
        server_time = int((now - assignment.leased_at).total_seconds() * 1000)
        time_spent = data.time_spent_ms if data.time_spent_ms is not None else server_time
        judgment = judgment_insert(
            Judgment(
                assignment=assignment,
                item_id=assignment.item_id,
                batch_id=assignment.batch_id,
                annotator=annotator,
                track=assignment.batch.track,
                mode=assignment.batch.mode,
                chosen_id=validated.chosen,
                rejected_id=validated.rejected,
                strength=validated.strength,
                ranking=validated.ranking,
                safety_labels=validated.safety_labels,
                safety_bin=validated.safety_bin,
                flagged=validated.flagged,
                position_chosen=validated.position_chosen,
                rationale=data.rationale.strip(),
                time_spent_ms=max(0, min(time_spent, MAX_TIME_SPENT_MS)),
                idempotency_key=data.idempotency_key,
                guidelines_version=assignment.guidelines_version,
                created_at=now,
            )
        )
        assignment_finish(assignment.pk, AssignmentStatus.SUBMITTED, now)
        assignment.status, assignment.finished_at = AssignmentStatus.SUBMITTED, now
        quality_judgment_recorded(batch=assignment.batch, item_id=assignment.item_id)  # adaptive overlap
        progress = progress_count_submit(annotator_id=annotator.pk, batch_id=assignment.batch_id)
        return Submitted(judgment, replayed=False, assignment=assignment, progress=progress)
