"""Background work on batches (default queue). Thin: ids in, services do the work."""

from __future__ import annotations

from celery import Task, shared_task

from annotate.batches import services
from annotate.endpoints.tasks import INFRA_ERRORS, infra_retry


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def responses_render(self: Task, batch_id: int) -> int:
    """Render the imported responses of a batch ahead of the first views, chunk by chunk (each chunk its
    own short transaction), so annotators' pages never pay for markdown rendering. Idempotent: a rerun
    or a second delivery skips what is rendered already. Returns the number of chunks."""
    after: int | None = 0
    chunks = 0
    try:
        while after is not None:
            after = services.responses_render_pending(batch_id=batch_id, after_id=after)
            chunks += 1
    except INFRA_ERRORS as exc:
        # A database outage: retried with backoff (the chunks already rendered are committed, skipped).
        raise infra_retry(self, exc, f"rendering the responses of batch {batch_id}") from None
    return chunks
