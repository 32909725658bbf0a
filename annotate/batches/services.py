"""Writes about batches and items. Every function here is one transaction."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Greatest, Now
from django.utils import timezone

from annotate.accounts.models import User
from annotate.batches.models import (
    Batch,
    BatchStatus,
    Item,
    ItemSource,
    ItemStatus,
    PromptSource,
    Response,
    ResponseStatus,
    conversation_hash,
)
from annotate.core.audit import audit_fields, audit_record
from annotate.core.choices import AuditAction
from annotate.core.errors import DomainError
from annotate.endpoints.models import SamplingConfig

# Which status changes an admin may make by hand. Draft -> generating happens by starting generation,
# generating -> open when every item is ready; both are also allowed here for imported, ready batches.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    BatchStatus.DRAFT: {BatchStatus.GENERATING, BatchStatus.OPEN, BatchStatus.CLOSED},
    BatchStatus.GENERATING: {BatchStatus.OPEN, BatchStatus.PAUSED, BatchStatus.CLOSED},
    BatchStatus.OPEN: {BatchStatus.PAUSED, BatchStatus.CLOSED},
    BatchStatus.PAUSED: {BatchStatus.OPEN, BatchStatus.CLOSED},
    BatchStatus.CLOSED: {BatchStatus.OPEN},
}


# Batch rows are locked FOR NO KEY UPDATE: these changes never touch the key, and a plain FOR UPDATE
# would also block the KEY SHARE locks that every claim and submit takes on the batch through their
# foreign keys. With batch_set_overlap updating every item of the batch, that was a deadlock (measured:
# claims holding an item lock waited for the batch while the overlap change waited for their items).
@transaction.atomic
def batch_set_status(*, batch_id: int, status: str, actor: User | None = None) -> Batch:
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    if status == batch.status:
        return batch
    if status not in ALLOWED_TRANSITIONS.get(batch.status, set()):
        raise DomainError(
            f"A {batch.get_status_display().lower()} batch cannot become {status}.",
            code="invalid_transition",
            field="status",
        )
    now = timezone.now()
    previous = batch.status
    batch.status = status
    if status == BatchStatus.OPEN and batch.opened_at is None:
        batch.opened_at = now
    batch.closed_at = now if status == BatchStatus.CLOSED else None
    batch.save(update_fields=["status", "opened_at", "closed_at", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.BATCH_STATUS_CHANGED,
        obj=batch,
        details={"from": previous, "to": status},
    )
    return batch


OVERLAP_ATTEMPTS = 5


def batch_set_overlap(*, batch_id: int, overlap: int, actor: User | None = None) -> Batch:
    """Change the judgments wanted per item. Items already holding more leases keep what they have.

    The change updates every item of the batch, so while annotators work it can meet a claim or a skip
    in a lock cycle that PostgreSQL breaks by aborting one side (claims retry on their own). Called
    outside a transaction, it retries too; inside the caller's transaction the error goes to the caller.
    """
    if connection.in_atomic_block:
        return _batch_set_overlap(batch_id=batch_id, overlap=overlap, actor=actor)
    for attempt in range(OVERLAP_ATTEMPTS):
        try:
            return _batch_set_overlap(batch_id=batch_id, overlap=overlap, actor=actor)
        except OperationalError:
            if attempt == OVERLAP_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


@transaction.atomic
def _batch_set_overlap(*, batch_id: int, overlap: int, actor: User | None) -> Batch:
    if overlap < 1:
        raise DomainError("Overlap must be at least 1.", code="invalid", field="overlap")
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    if batch.adaptive_overlap and overlap > batch.overlap_ceiling:
        raise DomainError(
            f"Overlap {overlap} is above the adaptive overlap ceiling ({batch.overlap_ceiling}); raise the "
            "ceiling first.",
            code="invalid",
            field="overlap",
        )
    if overlap != batch.overlap:
        audit_record(
            actor=actor,
            action=AuditAction.BATCH_OVERLAP_CHANGED,
            obj=batch,
            details={"from": batch.overlap, "to": overlap},
        )
    batch.overlap = overlap
    batch.save(update_fields=["overlap", "updated_at"])
    # Item rows are changed under their own row locks by this UPDATE, so a concurrent claim that holds
    # an item lock either commits first (and its taken counts here) or waits for us.
    Item.objects.filter(batch=batch).update(wanted=Greatest(Value(overlap), F("taken")))
    return batch


@transaction.atomic
def batch_update_guidelines(*, batch_id: int, guidelines: str, actor: User | None = None) -> Batch:
    """New guidelines get a new version, so annotators are shown them again once."""
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    if guidelines == batch.guidelines:
        return batch
    batch.guidelines = guidelines
    batch.guidelines_version = F("guidelines_version") + 1
    batch.save(update_fields=["guidelines", "guidelines_version", "updated_at"])
    batch.refresh_from_db(fields=["guidelines_version"])
    audit_record(
        actor=actor,
        action=AuditAction.BATCH_GUIDELINES_CHANGED,
        obj=batch,
        details={"version": batch.guidelines_version, "characters": len(guidelines)},
    )
    return batch


@transaction.atomic
def batch_create(*, created_by: User, sampling_configs: list[SamplingConfig], **fields: Any) -> Batch:
    """A draft batch. Prompts come next (import), then generation (or opening, when all responses came
    with the import)."""
    batch = Batch(created_by=created_by, status=Batch.Status.DRAFT, **fields)
    batch.full_clean()
    batch.save()
    batch.sampling_configs.set(sampling_configs)
    audit_record(
        actor=created_by,
        action=AuditAction.BATCH_CREATED,
        obj=batch,
        details=audit_fields({**fields, "sampling_configs": sampling_configs}),
    )
    return batch


UPDATABLE_BATCH_FIELDS = ("name", "description", "lease_minutes", "gold_rate")


@transaction.atomic
def batch_update(*, batch_id: int, changes: dict[str, Any], actor: User | None = None) -> Batch:
    """Plain fields directly; guidelines (a new version) and overlap (items' wanted counts) through their
    own services, in this same transaction."""
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    plain = {k: v for k, v in changes.items() if k in UPDATABLE_BATCH_FIELDS}
    if plain:
        for name, value in plain.items():
            setattr(batch, name, value)
        batch.full_clean()
        batch.save(update_fields=[*plain, "updated_at"])
    if "sampling_configs" in changes:
        batch.sampling_configs.set(changes["sampling_configs"])
    plain_or_configs = {
        k: v for k, v in changes.items() if k in (*UPDATABLE_BATCH_FIELDS, "sampling_configs")
    }
    if plain_or_configs:
        audit_record(
            actor=actor, action=AuditAction.BATCH_UPDATED, obj=batch, details=audit_fields(plain_or_configs)
        )
    if "guidelines" in changes:
        batch_update_guidelines(batch_id=batch.pk, guidelines=changes["guidelines"], actor=actor)
    if "overlap" in changes:
        batch_set_overlap(batch_id=batch.pk, overlap=changes["overlap"], actor=actor)
    batch.refresh_from_db()
    return batch


@dataclass
class NewItem:
    """An item to add: its conversation and, when pre-generated, its responses (model, content)."""

    conversation: list[dict[str, str]]
    responses: Sequence[tuple[str, str]] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    external_id: str = ""
    is_gold: bool = False
    gold_expected: dict[str, Any] | None = None


@dataclass(frozen=True)
class ItemsAdded:
    created: int
    duplicates: int


def items_add(
    *,
    batch: Batch,
    new_items: Iterable[NewItem],
    source: str = ItemSource.IMPORTED,
    created_by: User | None = None,
) -> ItemsAdded:
    """Add items (and their pre-generated responses) to a batch, skipping conversations it already has.

    Items whose K responses are all given are ready at once; others wait for generation. The caller owns
    the transaction, so an import can add its rows in chunks inside one atomic block.
    """
    now = timezone.now()
    rows = list(new_items)
    hashes = [conversation_hash(row.conversation) for row in rows]
    existing = set(
        Item.objects.filter(batch=batch, content_hash__in=set(hashes)).values_list("content_hash", flat=True)
    )
    to_create: list[tuple[Item, NewItem]] = []
    duplicates = 0
    for row, digest in zip(rows, hashes, strict=True):
        if digest in existing:
            duplicates += 1
            continue
        existing.add(digest)
        ready = len(row.responses) == batch.responses_per_item
        item = Item(
            batch=batch,
            conversation=row.conversation,
            content_hash=digest,
            metadata=row.metadata,
            external_id=row.external_id,
            source=source,
            is_gold=row.is_gold,
            gold_expected=row.gold_expected,
            created_by=created_by,
            status=ItemStatus.READY if ready else ItemStatus.PENDING,
            wanted=batch.overlap,
        )
        to_create.append((item, row))
    Item.objects.bulk_create([item for item, _ in to_create])
    responses = [
        Response(
            item=item,
            slot=slot,
            model_name=model_name,
            content=content,
            status=ResponseStatus.OK,
            generated_at=now,
        )
        for item, row in to_create
        for slot, (model_name, content) in enumerate(row.responses)
    ]
    Response.objects.bulk_create(responses)
    return ItemsAdded(created=len(to_create), duplicates=duplicates)


def responses_ensure_rendered(responses: list[Response]) -> dict[int, str]:
    """The sanitized HTML of each response, rendering and storing it the first time it is needed,
    so that the workbench pays for markdown rendering once per response, not once per view."""
    from annotate.core.rendering import render_markdown

    missing = [r for r in responses if not r.content_html and r.content]
    for response in missing:
        response.content_html = str(render_markdown(response.content))
    if missing:
        Response.objects.bulk_update(missing, ["content_html"])
    return {r.pk: r.content_html for r in responses}


RENDER_CHUNK = 200


def responses_render_pending(*, batch_id: int, after_id: int = 0, limit: int | None = None) -> int | None:
    """Render and store the HTML of up to `limit` responses of the batch that have text but no HTML yet
    (imported, pre-generated responses), in id order after `after_id`. Returns the last id looked at, to
    continue from, or None when the batch has no more. Safe to run twice or beside a workbench view that
    renders the same response on demand: both store the same HTML."""
    from annotate.core.rendering import render_markdown

    chunk = list(
        Response.objects.filter(item__batch_id=batch_id, pk__gt=after_id)
        .order_by("pk")
        .values_list("pk", "content", "content_html")[: limit or RENDER_CHUNK]
    )
    if not chunk:
        return None
    rendered = [
        Response(pk=pk, content_html=str(render_markdown(content)))
        for pk, content, html in chunk
        if content and not html
    ]
    if rendered:
        Response.objects.bulk_update(rendered, ["content_html"])
    return chunk[-1][0]


# --- Generation lifecycle ---------------------------------------------------------------------------
# Draft -> generating (responses created, one task per pending response enqueued on commit) -> open once
# every item is ready or dropped. Lock order everywhere: batch, then items, then responses. The worker's
# success path (annotate/endpoints/store.py) locks an item, then its response, and marks the item ready;
# the batch is opened in a later transaction (batch_open_if_ready).


@dataclass(frozen=True)
class GenerationStarted:
    responses_created: int
    items_ready: int
    items_waiting: int
    opened: bool


def config_rotation(n: int, k: int, index: int) -> list[int]:
    """Indices of the configs for the k slots of the index-th item (of a list of n configs).

    Items come in rounds of n: within a round, item j takes k consecutive configs of the round's order,
    starting at position j. So every config is used exactly k times per round (even load on endpoints)
    and an item's configs are distinct whenever n >= k. The first round uses the list's own order; later
    rounds use a fixed pseudo-random order each, so that over a batch every config meets every other one
    (not only its neighbours in the list), which the pairwise comparisons and the leaderboard need.
    """
    if n <= 0:
        return []
    rnd, base = divmod(index, n)
    order = list(range(n))
    if rnd:
        random.Random(rnd).shuffle(order)
    return [order[(base + t) % n] for t in range(k)]


def generation_configs(batch: Batch) -> list[SamplingConfig]:
    """The batch's sampling configs that can generate now (enabled, on an enabled endpoint), in a fixed
    order so that `config_rotation` spreads them the same way every time."""
    return list(
        batch.sampling_configs.filter(enabled=True, endpoint__enabled=True)
        .select_related("endpoint")
        .order_by("pk")
    )


def pending_responses(
    item_id: int, slots: Sequence[int], configs: Sequence[SamplingConfig], index: int
) -> list[Response]:
    """Unsaved pending responses for the given slots of an item, their configs picked by
    `config_rotation` for the index-th item (distinct configs whenever there are enough)."""
    picks = config_rotation(len(configs), len(slots), index)
    return [
        Response(item_id=item_id, slot=slot, sampling_config=configs[pick], status=ResponseStatus.PENDING)
        for slot, pick in zip(slots, picks, strict=True)
    ]


def _enqueue_pending_on_commit(batch_id: int) -> None:
    from annotate.endpoints.tasks import generation_enqueue_batch

    # After commit, so that a worker never looks for responses this transaction has not written yet.
    transaction.on_commit(lambda: generation_enqueue_batch.delay(batch_id))


@transaction.atomic
def batch_start_generation(*, batch_id: int, actor: User | None = None) -> GenerationStarted:
    """Create the missing responses of a draft batch's items and start generating them.

    Each item gets K responses (slots 0..K-1); pre-generated ones are kept and only missing slots are
    created, with configs from the batch's enabled sampling configs (see `config_rotation`). Items that
    already have K ok responses are ready at once; when every item is, the batch opens without any
    generation. On a batch that is already generating this only enqueues its pending responses again (a
    safe nudge: the task is idempotent).
    """
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    if batch.status == BatchStatus.GENERATING:
        _enqueue_pending_on_commit(batch.pk)
        return GenerationStarted(
            0, 0, Item.objects.filter(batch=batch, status=ItemStatus.PENDING).count(), False
        )
    if batch.status != BatchStatus.DRAFT:
        raise DomainError(
            f"Only a draft batch can start generating; this one is {batch.get_status_display().lower()}.",
            code="invalid_transition",
            field="status",
        )
    if batch.prompt_source == PromptSource.LIVE:
        return _live_batch_open(batch)
    k = batch.responses_per_item
    items = Item.objects.filter(batch=batch).exclude(status=ItemStatus.DROPPED)
    if not items.exists():
        raise DomainError(
            "The batch has no items: import prompts before starting generation.", code="no_items"
        )
    lacking = (
        items.filter(status=ItemStatus.PENDING)
        .annotate(n=Count("responses"))
        .filter(n__lt=k)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    configs = generation_configs(batch)
    if lacking.exists() and not configs:
        raise DomainError(
            "The batch has items without responses but no enabled sampling config (with an enabled "
            "endpoint): add one before starting generation.",
            code="no_sampling_config",
            field="sampling_configs",
        )

    created = 0
    index = 0
    lacking_ids = list(lacking)
    for start in range(0, len(lacking_ids), 2000):
        chunk = lacking_ids[start : start + 2000]
        taken: dict[int, set[int]] = {}
        for item_id, slot in Response.objects.filter(item_id__in=chunk).values_list("item_id", "slot"):
            taken.setdefault(item_id, set()).add(slot)
        new: list[Response] = []
        for item_id in chunk:
            missing = [s for s in range(k) if s not in taken.get(item_id, set())]
            new.extend(pending_responses(item_id, missing, configs, index))
            index += 1
        Response.objects.bulk_create(new, batch_size=2000)
        created += len(new)

    complete = (
        items.filter(status=ItemStatus.PENDING)
        .annotate(
            n=Count("responses"), n_ok=Count("responses", filter=Q(responses__status=ResponseStatus.OK))
        )
        .filter(n__gte=k, n_ok=F("n"))
        .values_list("pk", flat=True)
    )
    Item.objects.filter(pk__in=list(complete), status=ItemStatus.PENDING).update(status=ItemStatus.READY)
    waiting = items.filter(status=ItemStatus.PENDING).count()
    now = timezone.now()
    batch.status = BatchStatus.OPEN if waiting == 0 else BatchStatus.GENERATING
    if waiting == 0 and batch.opened_at is None:
        batch.opened_at = now
    batch.save(update_fields=["status", "opened_at", "updated_at"])
    if waiting:
        _enqueue_pending_on_commit(batch.pk)
    started = GenerationStarted(
        responses_created=created,
        items_ready=items.filter(status=ItemStatus.READY).count(),
        items_waiting=waiting,
        opened=waiting == 0,
    )
    audit_record(
        actor=actor,
        action=AuditAction.BATCH_GENERATION_STARTED,
        obj=batch,
        details={
            "responses_created": created,
            "items_ready": started.items_ready,
            "items_waiting": waiting,
            "status": batch.status,
        },
    )
    return started


def _live_batch_open(batch: Batch) -> GenerationStarted:
    """Starting a live batch opens it: its items are written by annotators once it is open, and each
    one's responses are generated as it is written (annotate/batches/live.py)."""
    if not generation_configs(batch):
        raise DomainError(
            "A live batch needs an enabled sampling config (with an enabled endpoint) to answer the "
            "annotators' prompts: add one before opening it.",
            code="no_sampling_config",
            field="sampling_configs",
        )
    batch.status = BatchStatus.OPEN
    if batch.opened_at is None:
        batch.opened_at = timezone.now()
    batch.save(update_fields=["status", "opened_at", "updated_at"])
    return GenerationStarted(responses_created=0, items_ready=0, items_waiting=0, opened=True)


def batch_open_if_ready(*, batch_id: int) -> bool:
    """Open a generating batch once none of its items waits for responses. True when this call opened it.

    Called after the transaction that made an item ready has committed. One conditional UPDATE: its
    NOT EXISTS sees every item made ready before the statement started, so of two workers that made the
    last two items ready, the one whose call starts last sees both and opens the batch; if both see them,
    the second waits on the first's row lock, then finds the status no longer "generating" and changes
    nothing. So the batch opens exactly once. Plain SQL: workers run this once per finished item, and the
    ORM would spend more CPU compiling it than the database spends running it.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Batch._meta.db_table} SET status = %s, opened_at = COALESCE(opened_at, %s), "
            "updated_at = %s WHERE id = %s AND status = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {Item._meta.db_table} WHERE batch_id = %s AND status = %s)",
            [BatchStatus.OPEN, now, now, batch_id, BatchStatus.GENERATING, batch_id, ItemStatus.PENDING],
        )
        return cursor.rowcount > 0


@transaction.atomic
def batch_retry_failed(*, batch_id: int, actor: User | None = None) -> int:
    """Put the failed responses of the batch's waiting items back in the queue (attempts start again)."""
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    if batch.status in {BatchStatus.DRAFT, BatchStatus.CLOSED}:
        raise DomainError(
            f"A {batch.get_status_display().lower()} batch has no generation to retry.",
            code="invalid_transition",
            field="status",
        )
    retried = _reset_failed(
        Response.objects.filter(
            item__batch=batch, item__status=ItemStatus.PENDING, status=ResponseStatus.FAILED
        )
    )
    if retried:
        _enqueue_pending_on_commit(batch.pk)
        audit_record(
            actor=actor, action=AuditAction.BATCH_FAILED_RETRIED, obj=batch, details={"responses": retried}
        )
    return retried


def _reset_failed(failed: QuerySet[Response]) -> int:
    """Failed responses back to pending, their attempts counted afresh."""
    return failed.update(status=ResponseStatus.PENDING, attempts=0, error="", touched_at=Now())


def responses_enqueue_on_commit(response_ids: Sequence[int]) -> None:
    """Send one generation task per response once the current transaction has committed (a live item's
    responses: only these, not the whole batch's backlog)."""
    from annotate.endpoints.tasks import response_generate

    ids = list(response_ids)
    if ids:
        transaction.on_commit(lambda: [response_generate.delay(pk) for pk in ids])


@transaction.atomic
def item_retry_failed(*, item_id: int) -> int:
    """Put the failed responses of one waiting item back in the queue (the Retry of a live prompt).
    The item's row lock orders this after a worker that is marking the same item ready."""
    item = Item.objects.select_for_update().get(pk=item_id)
    if item.status != ItemStatus.PENDING:
        return 0
    failed = list(
        Response.objects.filter(item=item, status=ResponseStatus.FAILED).values_list("pk", flat=True)
    )
    _reset_failed(Response.objects.filter(pk__in=failed, status=ResponseStatus.FAILED))
    responses_enqueue_on_commit(failed)
    return len(failed)


@transaction.atomic
def batch_drop_failed_items(*, batch_id: int, actor: User | None = None) -> int:
    """Drop the waiting items that have a failed response (never served), then open the batch if the
    rest is ready. Returns the number of items dropped."""
    batch = Batch.objects.select_for_update(no_key=True).get(pk=batch_id)
    if batch.status == BatchStatus.CLOSED:
        raise DomainError("A closed batch cannot change.", code="invalid_transition", field="status")
    failed_items = (
        Response.objects.filter(
            item__batch=batch, item__status=ItemStatus.PENDING, status=ResponseStatus.FAILED
        )
        .values_list("item_id", flat=True)
        .distinct()
    )
    dropped = Item.objects.filter(pk__in=list(failed_items), status=ItemStatus.PENDING).update(
        status=ItemStatus.DROPPED
    )
    if dropped:
        audit_record(
            actor=actor, action=AuditAction.BATCH_FAILED_DROPPED, obj=batch, details={"items": dropped}
        )
    batch_open_if_ready(batch_id=batch.pk)
    return dropped
