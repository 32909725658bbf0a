"""Live prompts: annotators write the prompts of a live batch themselves and continue them turn by turn.

A dialogue's turn is an Item (source "live", the dialogue's id, `turn_index` 0, 1, ...) whose conversation
holds every earlier turn: the user's messages and, as the assistant's, the response its author preferred
(the chosen one, or the top of a ranking). Writing a turn is one transaction: the item, its K pending
responses (configs spread like a batch start's, see `config_rotation`), and the author's lease on the item
(an Assignment), so the author judges their own prompt as LLaMa-2's annotators did. The generation tasks
are sent on commit.

Overlap: the item wants `batch.overlap` judgments and the author's lease already takes one. With overlap
1 nobody else ever sees it; with more, other annotators may claim it like any item, but only once it is
ready (the claim only offers ready items), so nobody waits on someone else's generation.

Idempotency: the first prompt's form carries a key (one dialogue per author and key); a next turn is
identified by its place, (dialogue, turn index), which the database keeps unique. A replay of either
returns what the first request made.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.accounts.models import User
from annotate.accounts.selectors import user_can_annotate_track
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import (
    Batch,
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
from annotate.batches.services import (
    generation_configs,
    item_retry_failed,
    pending_responses,
    responses_enqueue_on_commit,
)
from annotate.core.errors import ConflictError, DomainError
from annotate.judgments.models import Judgment

_random = random.SystemRandom()


class NotFound(DomainError):
    status_code = 404

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_found")


@dataclass(frozen=True)
class LiveTurn:
    """What writing a turn gave: the dialogue, the new item and the author's lease on it. `created` is
    False when the request was a replay and these are what the first one made."""

    dialogue: Dialogue
    item: Item
    assignment: Assignment
    created: bool


def live_prompt_clean(text: object) -> str:
    """The prompt as it will be stored, or a DomainError on the `prompt` field."""
    prompt = str(text or "").replace("\r\n", "\n").strip()
    if not prompt:
        raise DomainError("Write a prompt first: it is empty.", code="required", field="prompt")
    limit = settings.LIVE_PROMPT_MAX_CHARS
    if len(prompt) > limit:
        raise DomainError(
            f"The prompt is too long: {len(prompt):,} characters, at most {limit:,}.",
            code="too_long",
            field="prompt",
        )
    if "\x00" in prompt:
        raise DomainError("The prompt contains a NUL character.", code="invalid", field="prompt")
    return prompt


def _clean_key(key: object) -> str:
    value = str(key or "").strip()
    if not value:
        return uuid.uuid4().hex  # no key given (an API call without one): every request is new
    if len(value) > 64:
        raise DomainError(
            "The idempotency key is at most 64 characters.", code="invalid", field="idempotency_key"
        )
    return value


def _live_batch(annotator: User, batch_id: int) -> Batch:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None or not user_can_annotate_track(annotator, batch.track):
        raise NotFound("No such batch.")
    if batch.prompt_source != PromptSource.LIVE:
        raise ConflictError(
            "This batch judges imported prompts; only live batches take prompts written here.",
            code="not_live",
        )
    return batch


def _check_can_write(batch: Batch, annotator: User) -> None:
    if batch.status != BatchStatus.OPEN:
        raise ConflictError("This batch is not open for annotation right now.", code="batch_not_open")
    active = Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.ACTIVE)
    if active.filter(batch=batch).exists():
        raise ConflictError(
            "You have an item open in this batch: judge or skip it before writing a new prompt.",
            code="lease_active",
        )
    if active.count() >= settings.MAX_ACTIVE_LEASES_PER_ANNOTATOR:
        raise ConflictError(
            "You hold too many open items in other batches; finish or skip them first.",
            code="too_many_leases",
        )


def _write_turn(
    *, batch: Batch, dialogue: Dialogue, annotator: User, conversation: list[dict[str, str]], turn_index: int
) -> LiveTurn:
    """The item of one turn, its pending responses and the author's lease on it. Inside the caller's
    transaction; the generation tasks are sent when it commits."""
    configs = generation_configs(batch)
    if not configs:
        raise ConflictError(
            "This batch has no enabled model to answer prompts right now; tell its admin.",
            code="no_sampling_config",
        )
    item = Item.objects.create(
        batch=batch,
        conversation=conversation,
        source=ItemSource.LIVE,
        dialogue=dialogue,
        turn_index=turn_index,
        created_by=annotator,
        status=ItemStatus.PENDING,
        wanted=batch.overlap,
        taken=1,  # the author's lease below
    )
    k = batch.responses_per_item
    responses = Response.objects.bulk_create(pending_responses(item.pk, range(k), configs, item.pk))
    response_ids = [r.pk for r in responses]
    positions = list(response_ids)
    _random.shuffle(positions)
    now = timezone.now()
    assignment = Assignment.objects.create(
        item=item,
        batch=batch,
        annotator=annotator,
        status=AssignmentStatus.ACTIVE,
        leased_at=now,
        expires_at=now + timedelta(minutes=batch.lease_minutes),
        positions=positions,
        guidelines_version=batch.guidelines_version,
    )
    responses_enqueue_on_commit(response_ids)
    return LiveTurn(dialogue=dialogue, item=item, assignment=assignment, created=True)


def _turn(dialogue: Dialogue, turn_index: int) -> LiveTurn | None:
    item = Item.objects.filter(dialogue=dialogue, turn_index=turn_index).first()
    if item is None:
        return None
    assignment = (
        Assignment.objects.filter(item=item, annotator_id=dialogue.author_id).select_related("item").first()
    )
    if assignment is None:  # pragma: no cover - written together; CASCADE removes them together
        return None
    return LiveTurn(dialogue=dialogue, item=item, assignment=assignment, created=False)


def live_dialogue_start(
    *, annotator: User, batch_id: int, prompt: str, idempotency_key: str = ""
) -> LiveTurn:
    """Start a dialogue in a live batch with its first prompt, and lease its item to the author."""
    text = live_prompt_clean(prompt)
    key = _clean_key(idempotency_key)
    batch = _live_batch(annotator, batch_id)
    replay = _replayed_start(annotator, batch, key)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            _check_can_write(batch, annotator)
            dialogue = Dialogue.objects.create(batch=batch, author=annotator, idempotency_key=key)
            return _write_turn(
                batch=batch,
                dialogue=dialogue,
                annotator=annotator,
                conversation=[{"role": "user", "content": text}],
                turn_index=0,
            )
    except IntegrityError:
        # A concurrent twin of this request (same key) won, or another tab of this annotator took the
        # batch's one lease first. The first is a replay; the second a conflict.
        replay = _replayed_start(annotator, batch, key)
        if replay is not None:
            return replay
        raise ConflictError(
            "You have an item open in this batch: judge or skip it before writing a new prompt.",
            code="lease_active",
        ) from None


def _replayed_start(annotator: User, batch: Batch, key: str) -> LiveTurn | None:
    dialogue = Dialogue.objects.filter(author=annotator, idempotency_key=key).first()
    if dialogue is None:
        return None
    if dialogue.batch_id != batch.pk:
        raise ConflictError(
            "This idempotency key was already used for a prompt in another batch.",
            code="idempotency_key_reused",
        )
    return _turn(dialogue, 0)


def answer_of(item: Item, annotator_id: int) -> Response | None:
    """The response the annotator preferred on the item (chosen, or top-ranked), if they judged it."""
    judgment = (
        Judgment.objects.filter(item=item, annotator_id=annotator_id).only("chosen_id", "ranking").first()
    )
    if judgment is None:
        return None
    best = judgment.chosen_id or (int(judgment.ranking[0]) if judgment.ranking else None)
    return Response.objects.filter(pk=best, item=item, status=ResponseStatus.OK).first()


def _own_dialogue(annotator: User, dialogue_id: uuid.UUID | str, *, lock: bool = False) -> Dialogue:
    queryset = Dialogue.objects.filter(pk=dialogue_id, author=annotator)
    if lock:
        queryset = queryset.select_for_update()
    dialogue = queryset.select_related("batch").first()
    if dialogue is None:
        raise NotFound("No such dialogue.")
    return dialogue


def last_turn(dialogue: Dialogue) -> Item | None:
    return Item.objects.filter(dialogue=dialogue).order_by("-turn_index").first()


def live_dialogue_continue(
    *, annotator: User, dialogue_id: uuid.UUID | str, prompt: str, turn_index: int | None = None
) -> LiveTurn:
    """Add the next turn: the conversation so far, the response the author preferred on the last turn as
    the assistant's answer, and the new prompt. `turn_index` (the form sends the index it expects to
    create) makes a double submit a replay rather than a third turn."""
    text = live_prompt_clean(prompt)
    try:
        uuid.UUID(str(dialogue_id))
    except ValueError:
        raise NotFound("No such dialogue.") from None
    with transaction.atomic():
        # The dialogue's row lock serializes its turns: two continues of one dialogue never both pass.
        dialogue = _own_dialogue(annotator, dialogue_id, lock=True)
        last = last_turn(dialogue)
        if last is None:  # pragma: no cover - a dialogue is created with its first turn
            raise NotFound("No such dialogue.")
        expected = last.turn_index + 1
        if turn_index is not None and turn_index < expected:
            existing = _turn(dialogue, turn_index)
            if existing is not None and turn_index > 0 and existing.item.last_user_message == text:
                return existing  # the same turn sent twice
            raise ConflictError(
                "This dialogue has moved on since this page was shown (another tab?); reload it.",
                code="turn_exists",
            )
        if turn_index is not None and turn_index > expected:
            raise DomainError(
                f"This dialogue's next turn is {expected}, not {turn_index}.", code="invalid", field="turn"
            )
        if dialogue.status == DialogueStatus.ENDED:
            raise ConflictError("This dialogue has ended; start a new one.", code="dialogue_ended")
        if expected >= settings.LIVE_MAX_TURNS:
            raise ConflictError(
                f"A dialogue has at most {settings.LIVE_MAX_TURNS} turns; end this one and start a new one.",
                code="too_many_turns",
            )
        answer = answer_of(last, annotator.pk)
        if answer is None:
            raise ConflictError(
                "Judge the responses to the last turn first: the one you prefer becomes the assistant's "
                "answer.",
                code="turn_not_judged",
            )
        conversation = [
            *last.conversation,
            {"role": "assistant", "content": answer.content},
            {"role": "user", "content": text},
        ]
        if len(conversation) > settings.IMPORT_MAX_MESSAGES:
            raise ConflictError(
                "This dialogue is as long as a conversation may be; end it and start a new one.",
                code="too_many_turns",
            )
        batch = dialogue.batch
        _check_can_write(batch, annotator)
        return _write_turn(
            batch=batch,
            dialogue=dialogue,
            annotator=annotator,
            conversation=conversation,
            turn_index=expected,
        )


@transaction.atomic
def live_dialogue_end(*, annotator: User, dialogue_id: uuid.UUID | str) -> Dialogue:
    """End a dialogue (no more turns). Idempotent; a turn still waiting or being judged stays judgeable."""
    dialogue = _own_dialogue(annotator, dialogue_id, lock=True)
    if dialogue.status != DialogueStatus.ENDED:
        dialogue.status = DialogueStatus.ENDED
        dialogue.ended_at = timezone.now()
        dialogue.save(update_fields=["status", "ended_at"])
    return dialogue


def live_turn_retry(*, annotator: User, dialogue_id: uuid.UUID | str) -> int:
    """Generate the failed responses of the dialogue's last turn again. Returns how many were re-queued."""
    dialogue = _own_dialogue(annotator, dialogue_id)
    last = last_turn(dialogue)
    if last is None or last.status != ItemStatus.PENDING:
        return 0
    return item_retry_failed(item_id=last.pk)


@transaction.atomic
def live_turn_discard(*, annotator: User, dialogue_id: uuid.UUID | str) -> Dialogue:
    """Give up on a last turn whose responses did not come: the item is dropped (never served, never
    exported), the author's lease released, and the dialogue ended (its turn index stays taken)."""
    from annotate.assignments.services import assignment_skip

    dialogue = _own_dialogue(annotator, dialogue_id, lock=True)
    last = last_turn(dialogue)
    if last is None or last.status == ItemStatus.DROPPED:
        return dialogue
    if last.status != ItemStatus.PENDING:
        raise ConflictError(
            "The responses to this turn are ready: judge them (or skip the item) instead.", code="turn_ready"
        )
    # Lock order: the assignment (in assignment_skip), then the item.
    lease = Assignment.objects.filter(item=last, annotator=annotator, status=AssignmentStatus.ACTIVE).first()
    if lease is not None:
        assignment_skip(
            annotator=annotator, assignment_id=lease.pk, reason="Discarded by its author while generating."
        )
    Item.objects.filter(pk=last.pk, status=ItemStatus.PENDING).update(status=ItemStatus.DROPPED)
    if dialogue.status != DialogueStatus.ENDED:
        dialogue.status = DialogueStatus.ENDED
        dialogue.ended_at = timezone.now()
        dialogue.save(update_fields=["status", "ended_at"])
    return dialogue
