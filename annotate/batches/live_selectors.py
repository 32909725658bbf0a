"""Reads for live dialogues: where a dialogue stands (generating, judging, judged ...) and its responses'
progress, for the workbench pages and the API. Everything is read from the database, so a reload shows
the same state as before it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db.models import Count, F, Q
from django.utils.safestring import mark_safe

from annotate.accounts.models import User
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.live import answer_of, last_turn
from annotate.batches.models import (
    Batch,
    Dialogue,
    DialogueStatus,
    Item,
    ItemStatus,
    Response,
    ResponseStatus,
)
from annotate.batches.services import responses_ensure_rendered

LABELS = "ABCDEFGHI"


class Phase:
    GENERATING = "generating"  # responses still being written (some may have failed: see `failed`)
    JUDGING = "judging"  # all responses ready; the author's judgment is due
    JUDGED = "judged"  # the author judged the last turn: continue or end
    SKIPPED = "skipped"  # the author skipped the last turn: the dialogue cannot go on from it
    DISCARDED = "discarded"  # the author gave up on the last turn while it was generating


@dataclass(frozen=True)
class ResponseProgress:
    id: int
    label: str
    status: str
    html: str  # sanitized when stored (responses_ensure_rendered); empty until ok
    error: str


@dataclass(frozen=True)
class DialogueState:
    dialogue: Dialogue
    item: Item
    assignment: Assignment | None
    phase: str
    responses: list[ResponseProgress] = field(default_factory=list)
    answer: Response | None = None

    @property
    def ended(self) -> bool:
        return self.dialogue.status == DialogueStatus.ENDED

    @property
    def total(self) -> int:
        return len(self.responses)

    @property
    def ready(self) -> int:
        return sum(1 for r in self.responses if r.status == ResponseStatus.OK)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.responses if r.status == ResponseStatus.FAILED)

    @property
    def waiting(self) -> int:
        return sum(1 for r in self.responses if r.status == ResponseStatus.PENDING)

    @property
    def next_turn(self) -> int:
        return self.item.turn_index + 1

    @property
    def can_continue(self) -> bool:
        return self.phase == Phase.JUDGED and not self.ended and self.answer is not None


def dialogue_state(dialogue: Dialogue) -> DialogueState:
    item = last_turn(dialogue)
    if item is None:  # pragma: no cover - a dialogue is created with its first turn
        raise Dialogue.DoesNotExist
    assignment = Assignment.objects.filter(item=item, annotator_id=dialogue.author_id).first()
    responses = {r.pk: r for r in Response.objects.filter(item=item)}
    rendered = responses_ensure_rendered([r for r in responses.values() if r.status == ResponseStatus.OK])
    order = [int(pk) for pk in assignment.positions] if assignment else sorted(responses)
    shown = [
        ResponseProgress(
            id=pk,
            label=LABELS[i],
            status=responses[pk].status,
            # content_html was sanitized by nh3 when it was stored (responses_ensure_rendered).
            html=mark_safe(rendered.get(pk, "")),
            error=responses[pk].error if responses[pk].status == ResponseStatus.FAILED else "",
        )
        for i, pk in enumerate(pk for pk in order if pk in responses)
    ]
    answer = None
    if item.status == ItemStatus.DROPPED:
        phase = Phase.DISCARDED
    elif assignment is not None and assignment.status == AssignmentStatus.SUBMITTED:
        phase = Phase.JUDGED
        answer = answer_of(item, dialogue.author_id)
    elif assignment is not None and assignment.status == AssignmentStatus.SKIPPED:
        phase = Phase.SKIPPED
    elif item.status == ItemStatus.PENDING:
        phase = Phase.GENERATING
    else:
        phase = Phase.JUDGING
    return DialogueState(
        dialogue=dialogue, item=item, assignment=assignment, phase=phase, responses=shown, answer=answer
    )


def own_dialogue(user: User, dialogue_id: uuid.UUID) -> Dialogue | None:
    return Dialogue.objects.select_related("batch").filter(pk=dialogue_id, author=user).first()


@dataclass(frozen=True)
class DialogueSummary:
    dialogue: Dialogue
    turns: int
    first_prompt: str


def recent_dialogues(user: User, batch: Batch, limit: int = 10) -> list[DialogueSummary]:
    dialogues = list(
        Dialogue.objects.filter(author=user, batch=batch)
        .annotate(n_turns=Count("turns"))
        .order_by("-created_at")[:limit]
    )
    firsts = dict(
        Item.objects.filter(dialogue__in=dialogues, turn_index=0).values_list("dialogue_id", "conversation")
    )
    return [
        DialogueSummary(
            dialogue=d,
            turns=d.n_turns,  # type: ignore[attr-defined]
            first_prompt=str((firsts.get(d.pk) or [{}])[0].get("content", "")),
        )
        for d in dialogues
    ]


def others_waiting(user: User, batch: Batch) -> int:
    """Ready items of the batch that still want judgments and that this annotator never had (others'
    live prompts, when the overlap is above 1)."""
    return (
        Item.objects.filter(batch=batch, status=ItemStatus.READY, taken__lt=F("wanted"))
        .exclude(Q(assignments__annotator=user))
        .count()
    )
