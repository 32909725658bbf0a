"""Quality recomputation as Celery tasks: thin, taking ids, safe to run twice (a report is recomputed from
the judgments and replaced whole)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from annotate.quality.services import (
    quality_due,
    quality_enqueue_recompute,
    quality_recompute_batch,
    quality_recompute_track,
)

TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    name="annotate.quality.tasks.recompute_batch_quality",
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=3,
)
def recompute_batch_quality(batch_id: int) -> None:
    from annotate.batches.models import Batch

    if Batch.objects.filter(pk=batch_id).exists():  # deleted since it was queued: nothing to do
        quality_recompute_batch(batch_id=batch_id)


@shared_task(
    name="annotate.quality.tasks.recompute_track_quality",
    acks_late=True,
    ignore_result=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=3,
)
def recompute_track_quality(track: str) -> None:
    quality_recompute_track(track=track)


@shared_task(name="annotate.quality.tasks.recompute_due_quality", acks_late=True, ignore_result=True)
def recompute_due_quality() -> int:
    """Periodic: queue a recomputation of every batch with judgments newer than its report, and of the
    tracks of those batches. Returns how many batches were queued."""
    due = quality_due()
    if due.batches:
        quality_enqueue_recompute(batch_ids=due.batches, tracks=due.tracks)
    return len(due.batches)
