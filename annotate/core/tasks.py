"""Housekeeping across apps (default queue)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="annotate.core.tasks.requeue_stale_work", acks_late=True, ignore_result=True)
def requeue_stale_work() -> dict[str, object]:
    """Periodic (STALE_WORK_SWEEP_S): send again the generation and export work whose task was lost."""
    from annotate.endpoints.services import generation_requeue_stale
    from annotate.exports.services import exports_requeue_stale

    sweep = generation_requeue_stale()
    return {
        "batches_requeued": sweep.batches_requeued,
        "batches_opened": sweep.batches_opened,
        "live_responses_requeued": sweep.live_responses_requeued,
        "exports_requeued": exports_requeue_stale(),
    }
