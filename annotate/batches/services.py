"""Writes about batches and items. Every function here is one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from annotate.accounts.models import User
from annotate.batches.models import (
    Batch,
    BatchStatus,
    Item,
    ItemSource,
    ItemStatus,
    Response,
    ResponseStatus,
    conversation_hash,
)
from annotate.core.errors import DomainError

# Which status changes an admin may make by hand. Draft -> generating happens by starting generation,
# generating -> open when every item is ready; both are also allowed here for imported, ready batches.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    BatchStatus.DRAFT: {BatchStatus.GENERATING, BatchStatus.OPEN, BatchStatus.CLOSED},
    BatchStatus.GENERATING: {BatchStatus.OPEN, BatchStatus.PAUSED, BatchStatus.CLOSED},
    BatchStatus.OPEN: {BatchStatus.PAUSED, BatchStatus.CLOSED},
    BatchStatus.PAUSED: {BatchStatus.OPEN, BatchStatus.CLOSED},
    BatchStatus.CLOSED: {BatchStatus.OPEN},
}


@transaction.atomic
def batch_set_status(*, batch_id: int, status: str) -> Batch:
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    if status == batch.status:
        return batch
    if status not in ALLOWED_TRANSITIONS.get(batch.status, set()):
        raise DomainError(
            f"A {batch.get_status_display().lower()} batch cannot become {status}.",
            code="invalid_transition",
            field="status",
        )
    now = timezone.now()
    batch.status = status
    if status == BatchStatus.OPEN and batch.opened_at is None:
        batch.opened_at = now
    batch.closed_at = now if status == BatchStatus.CLOSED else None
    batch.save(update_fields=["status", "opened_at", "closed_at", "updated_at"])
    return batch


@transaction.atomic
def batch_set_overlap(*, batch_id: int, overlap: int) -> Batch:
    """Change the judgments wanted per item. Items already holding more leases keep what they have."""
    if overlap < 1:
        raise DomainError("Overlap must be at least 1.", code="invalid", field="overlap")
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    batch.overlap = overlap
    batch.save(update_fields=["overlap", "updated_at"])
    # Item rows are changed under their own row locks by this UPDATE, so a concurrent claim that holds
    # an item lock either commits first (and its taken counts here) or waits for us.
    Item.objects.filter(batch=batch).update(wanted=Greatest(Value(overlap), F("taken")))
    return batch


@transaction.atomic
def batch_update_guidelines(*, batch_id: int, guidelines: str) -> Batch:
    """New guidelines get a new version, so annotators are shown them again once."""
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    if guidelines == batch.guidelines:
        return batch
    batch.guidelines = guidelines
    batch.guidelines_version = F("guidelines_version") + 1
    batch.save(update_fields=["guidelines", "guidelines_version", "updated_at"])
    batch.refresh_from_db(fields=["guidelines_version"])
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
