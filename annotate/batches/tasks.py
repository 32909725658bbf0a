"""Background work on batches (default queue). Thin: ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from annotate.batches import services


@shared_task(acks_late=True, ignore_result=True)
def responses_render(batch_id: int) -> int:
    """Render the imported responses of a batch ahead of the first views, chunk by chunk (each chunk its
    own short transaction), so annotators' pages never pay for markdown rendering. Idempotent: a rerun
    or a second delivery skips what is rendered already. Returns the number of chunks."""
    after: int | None = 0
    chunks = 0
    while after is not None:
        after = services.responses_render_pending(batch_id=batch_id, after_id=after)
        chunks += 1
    return chunks
