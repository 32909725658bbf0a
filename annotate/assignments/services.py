"""Leases on items: claiming the next item, skipping, flagging, and expiring stale leases.

Lock order, everywhere: an assignment row before its item row. Claiming locks only item rows (with SKIP
LOCKED, so concurrent claims never wait for each other) and then inserts the assignment.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from annotate.accounts.models import User
from annotate.accounts.selectors import user_can_annotate_track
from annotate.assignments import store
from annotate.assignments.models import (
    Assignment,
    AssignmentFlag,
    AssignmentStatus,
    GuidelinesSeen,
)
from annotate.batches.models import Batch, BatchStatus, Item, Response
from annotate.core.errors import ConflictError, DomainError, NotFound

logger = logging.getLogger(__name__)


CLAIM_ATTEMPTS = 4
_random = random.SystemRandom()


def _open_items(batch: Batch, annotator: User, *, gold: bool, wait: bool) -> Item | None:
    """The first open item of the batch this annotator never had, locked; None when there is none.

    The scan starts after the annotator's cursor (the highest item id they ever had in the batch), since
    everything below it is mostly theirs already: the cost stays flat however long their history is.
    The cursor is a subquery of the scan, so PostgreSQL evaluates it once (an index-only probe) and uses
    its value as the lower bound of the claim's partial index, in one round trip. Only when nothing is
    left above the cursor are the holes below it (leases others gave back) searched. `batch_id BETWEEN b
    AND b` rather than `= b`: with an equality PostgreSQL drops batch_id from the sort keys and may walk
    the primary key, filtering every full item (measured: 60,000 rows, 40+ ms on a 100k-item batch).
    With `wait=False` rows locked by concurrent claims are skipped; with `wait=True` we wait for them and
    PostgreSQL re-checks `taken < wanted` on the row as committed.
    """
    ahead = store.open_item_ahead(batch.pk, annotator.pk, gold=gold, wait=wait)
    if ahead is not None:
        return ahead
    cursor = store.cursor_of(batch.pk, annotator.pk)
    if cursor == 0:
        return None
    return store.open_item_below(batch.pk, annotator.pk, cursor, gold=gold, wait=wait)


def _choose_item(batch: Batch, annotator: User) -> Item | None:
    # Gold items come at the batch's rate; when the preferred kind is exhausted, the other kind serves.
    gold_first = batch.gold_rate > 0 and _random.random() < batch.gold_rate
    kinds = [
        gold for gold in ((True, False) if gold_first else (False, True)) if not gold or batch.gold_rate > 0
    ]
    # First pass skips rows other claims hold. Only if it finds nothing do we release the batch's leases
    # that ran out (the periodic job does that too; here it keeps "batch done" from being shown while an
    # abandoned lease still holds an item) and then wait for the locks, so a batch is never reported done
    # while an open item is merely locked for a moment.
    for wait in (False, True):
        if wait:
            _expire_stale_in_batch(batch)
        for gold in kinds:
            item = _open_items(batch, annotator, gold=gold, wait=wait)
            if item is not None:
                return item
    return None


def _check_can_claim(batch: Batch, annotator: User) -> None:
    if batch.status != BatchStatus.OPEN:
        raise ConflictError("This batch is not open for annotation right now.", code="batch_not_open")
    if not user_can_annotate_track(annotator, batch.track):
        raise NotFound("No such batch.")


def _renew(assignment: Assignment, batch: Batch) -> Assignment:
    """Extend a lease the caller holds locked (and so still active)."""
    assignment.expires_at = timezone.now() + timedelta(minutes=batch.lease_minutes)
    store.lease_extend(assignment.pk, assignment.expires_at)
    return assignment


def assignment_claim_next(
    *, annotator: User, batch_id: int | None = None, batch: Batch | None = None
) -> Assignment | None:
    """The annotator's current lease in the batch, or a new lease on the next open item; None when the
    batch has nothing left for this annotator.

    Pass `batch` when the caller has just read it (the submit path has, with the assignment) to save a
    query; otherwise `batch_id`. The returned assignment carries `item` and, as `shown_responses`, its
    responses in the order the annotator sees them (so the page needs no second read).

    Two tabs of one annotator claiming at once collide on the one-active-lease constraint; the loser
    retries and finds the winner's lease, so both get the same item and neither sees an error.
    """
    if batch is None:
        batch = Batch.objects.filter(pk=batch_id).first()
        if batch is None:
            raise NotFound("No such batch.")
    _check_can_claim(batch, annotator)
    last_error: Exception | None = None
    for _attempt in range(CLAIM_ATTEMPTS):
        try:
            assignment = _claim_once(batch, annotator)
        except (IntegrityError, OperationalError) as exc:
            # IntegrityError: a concurrent claim of ours won the one-active-lease race.
            # OperationalError: a deadlock or serialization failure; both are safe to retry.
            last_error = exc
            logger.info(
                "claim retry for annotator %s in batch %s: %s", annotator.pk, batch.pk, type(exc).__name__
            )
            continue
        if assignment is not None:
            assignment.batch = batch
        return assignment
    raise ConflictError("Could not claim an item; please try again.", code="claim_contention") from last_error


def responses_in_order(assignment: Assignment) -> list[Response]:
    """The assignment's responses in the order its annotator sees them (`positions`)."""
    shown = getattr(assignment, "shown_responses", None)
    if shown is not None:
        return shown
    by_id = {r.pk: r for r in store.responses_of(assignment.item_id)}
    return [by_id[int(pk)] for pk in assignment.positions if int(pk) in by_id]


@transaction.atomic
def _claim_once(batch: Batch, annotator: User) -> Assignment | None:
    # All of the annotator's open leases in one read (there are at most MAX_ACTIVE_LEASES_PER_ANNOTATOR),
    # locked so a concurrent sweep cannot expire the one we renew.
    leases = store.active_leases(annotator.pk)
    current = next((a for a in leases if a.batch_id == batch.pk), None)
    if current is not None:
        # An own lease that ran out but was not yet swept still holds its place: just extend it.
        return _renew(current, batch)
    if len(leases) >= settings.MAX_ACTIVE_LEASES_PER_ANNOTATOR:
        raise ConflictError(
            "You hold too many open items in other batches; finish or skip them first.",
            code="too_many_leases",
        )
    item = _choose_item(batch, annotator)
    if item is None:
        return None
    responses = store.responses_of(item.pk)
    _random.shuffle(responses)
    now = timezone.now()
    # A lost race (IntegrityError on the one-active-lease constraint) aborts this whole transaction;
    # the caller retries it from the start, so no savepoint is needed here.
    assignment = store.assignment_insert(
        Assignment(
            item=item,
            batch=batch,
            annotator=annotator,
            status=AssignmentStatus.ACTIVE,
            leased_at=now,
            expires_at=now + timedelta(minutes=batch.lease_minutes),
            positions=[r.pk for r in responses],
            guidelines_version=batch.guidelines_version,
        )
    )
    store.item_take(item.pk)
    assignment.shown_responses = responses
    return assignment


def _expire_stale_in_batch(batch: Batch) -> None:
    """Release this batch's leases that ran out, if there are any (an index-only probe otherwise)."""
    now = timezone.now()
    stale = Assignment.objects.filter(batch=batch, status=AssignmentStatus.ACTIVE, expires_at__lt=now)
    if stale.exists():
        _expire(stale)


def _expire(stale: QuerySet[Assignment]) -> int:
    """Mark the given active, run-out leases expired and give their items' places back. Rows locked by a
    concurrent submit are skipped: that submit decides their fate."""
    # The conditions must sit on the locked rows themselves: PostgreSQL re-checks a skipped-then-locked
    # row against the outer WHERE only, so a lease submitted while we ran would otherwise be expired too.
    ids = list(
        stale.filter(status=AssignmentStatus.ACTIVE, expires_at__lt=timezone.now())
        .select_for_update(skip_locked=True, of=("self",))
        .values_list("pk", "item_id")
    )
    if not ids:
        return 0
    Assignment.objects.filter(pk__in=[pk for pk, _ in ids]).update(status=AssignmentStatus.EXPIRED)
    per_item: dict[int, int] = {}
    for _, item_id in ids:
        per_item[item_id] = per_item.get(item_id, 0) + 1
    for item_id, count in sorted(per_item.items()):  # a fixed order keeps concurrent sweeps deadlock-free
        Item.objects.filter(pk=item_id).update(taken=F("taken") - count)
    return len(ids)


def assignments_expire_stale(*, limit: int = 1000) -> int:
    """Release leases that ran out, in every batch (the periodic job). Returns how many were released."""
    total = 0
    while True:
        with transaction.atomic():
            now = timezone.now()
            chunk = Assignment.objects.filter(
                pk__in=Assignment.objects.filter(status=AssignmentStatus.ACTIVE, expires_at__lt=now)
                .order_by("expires_at")
                .values("pk")[:limit]
            )
            released = _expire(chunk)
        total += released
        if released < limit:
            return total


def get_own_assignment(*, annotator: User, assignment_id: int, lock: bool = False) -> Assignment:
    queryset = Assignment.objects.filter(pk=assignment_id, annotator=annotator)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    assignment = queryset.select_related("batch", "item").first()
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


def reserve_place_for_late_submit(assignment: Assignment) -> None:
    """A lease that expired (and was released) may still be submitted if its item has room left.
    The caller holds the assignment's lock; this takes the item's."""
    item = Item.objects.select_for_update().get(pk=assignment.item_id)
    if item.taken >= item.wanted:
        raise ConflictError(
            "Your time on this item ran out and it has since received all the judgments it needs; "
            "your answer was not needed. Please continue with the next item.",
            code="lease_expired",
        )
    Item.objects.filter(pk=item.pk).update(taken=F("taken") + 1)


@transaction.atomic
def assignment_skip(*, annotator: User, assignment_id: int, reason: str) -> Assignment:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why you skip this item.", field="reason")
    if len(reason) > 500:
        raise DomainError("The reason is limited to 500 characters.", field="reason")
    assignment = get_own_assignment(annotator=annotator, assignment_id=assignment_id, lock=True)
    if assignment.status == AssignmentStatus.SKIPPED:
        return assignment  # a replayed skip
    if assignment.status == AssignmentStatus.SUBMITTED:
        raise ConflictError("This item was already submitted.", code="already_submitted")
    was_active = assignment.status == AssignmentStatus.ACTIVE
    assignment.status = AssignmentStatus.SKIPPED
    assignment.skip_reason = reason
    assignment.finished_at = timezone.now()
    assignment.save(update_fields=["status", "skip_reason", "finished_at"])
    if was_active:  # an expired lease already gave its place back
        Item.objects.filter(pk=assignment.item_id).update(taken=F("taken") - 1)
    return assignment


@transaction.atomic
def assignment_flag(*, annotator: User, assignment_id: int, flag: str, note: str = "") -> Assignment:
    if flag not in {f.value for f in AssignmentFlag if f.value}:
        raise DomainError("Choose what is wrong: broken, offensive or needs review.", field="flag")
    if len(note) > 1000:
        raise DomainError("The note is limited to 1000 characters.", field="note")
    assignment = get_own_assignment(annotator=annotator, assignment_id=assignment_id, lock=True)
    assignment.flag = flag
    assignment.flag_note = note.strip()
    assignment.save(update_fields=["flag", "flag_note"])
    return assignment


def guidelines_needed(*, annotator: User, batch: Batch) -> bool:
    """Whether the annotator has yet to read this batch's current guidelines."""
    if not batch.guidelines.strip():
        return False
    return not store.guidelines_seen(annotator.pk, batch.pk, batch.guidelines_version)


def guidelines_mark_seen(*, annotator: User, batch: Batch) -> None:
    GuidelinesSeen.objects.update_or_create(
        annotator=annotator, batch=batch, defaults={"version": batch.guidelines_version}
    )


# --- Progress counters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    today: int
    total: int


def progress_count_submit(*, annotator_id: int, batch_id: int) -> Progress:
    """Count one more submitted judgment; call inside the submit's transaction. Returns the new figures."""
    today, total = store.progress_count(annotator_id, batch_id, timezone.localdate())
    return Progress(today=today, total=total)


def progress_of(*, annotator: User, batch: Batch) -> Progress:
    row = store.progress_row(annotator.pk, batch.pk)
    if row is None:
        return Progress(today=0, total=0)
    day, today, total = row
    return Progress(today=today if day == timezone.localdate() else 0, total=total)
