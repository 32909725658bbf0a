"""Judging tasks. `judge_chunk` and `judge_run_enqueue` go to the "generation" queue (network-bound, run on
the thread-pool worker next to generation); the triage sweep goes to the default queue.

Thin: they take ids and call services. As with generation, the service decides about retries (one retry
layer: the task re-queues itself with the countdown it returns), attempts are counted in the database, and
the service works to a deadline of its own (the soft time limit), because the thread pool does not enforce
Celery's time limits.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from annotate.endpoints.services import backoff_s
from annotate.endpoints.tasks import _INFRA_ERRORS
from annotate.judges import services

logger = logging.getLogger(__name__)

_SOFT = settings.CELERY_TASK_SOFT_TIME_LIMIT
_HARD = settings.CELERY_TASK_TIME_LIMIT


class ChunkTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # An unexpected error (a bug, bad data): fail the chunk's pending verdicts visibly instead of leaving
        # them pending forever. Transient infrastructure errors never get here: they are retried.
        verdict_ids = args[1] if len(args) > 1 else (kwargs or {}).get("verdict_ids")
        if verdict_ids:
            try:
                services.verdict_mark_failed(
                    verdict_ids=[int(v) for v in verdict_ids],
                    error=f"Internal error: {type(exc).__name__}: {exc}",
                )
            except Exception:
                logger.exception("could not record the failure of verdicts %s", verdict_ids)


@shared_task(
    bind=True,
    base=ChunkTask,
    name="annotate.judges.tasks.judge_chunk",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
    soft_time_limit=_SOFT,
    time_limit=_HARD,
)
def judge_chunk(self: Task, run_id: int, verdict_ids: list[int]) -> str:
    """Judge a chunk of verdicts (idempotent: verdicts no longer pending are left alone)."""
    deadline = time.monotonic() + max(1.0, _SOFT - 1.0)
    try:
        outcome = services.judge_chunk(run_id=run_id, verdict_ids=verdict_ids, deadline=deadline)
    except SoftTimeLimitExceeded:
        raise self.retry(countdown=backoff_s(1), max_retries=None) from None
    except _INFRA_ERRORS as exc:
        countdown = backoff_s(min(self.request.retries + 1, 8))
        logger.warning("judge chunk of run %s: %s, retrying in %.1fs", run_id, type(exc).__name__, countdown)
        raise self.retry(countdown=countdown, max_retries=None) from None
    if outcome.retry_in_s is not None:
        raise self.retry(countdown=outcome.retry_in_s, max_retries=None)
    return outcome.state


@shared_task(
    bind=True,
    name="annotate.judges.tasks.judge_run_enqueue",
    acks_late=True,
    ignore_result=True,
    max_retries=None,
)
def judge_run_enqueue(self: Task, run_id: int) -> int:
    try:
        return services.judge_run_enqueue(run_id=run_id)
    except _INFRA_ERRORS as exc:
        raise self.retry(countdown=backoff_s(min(self.request.retries + 1, 8)), max_retries=None) from exc


@shared_task(name="annotate.judges.triage.judge_triage_sweep", ignore_result=True)
def judge_triage_sweep() -> int:
    """Periodic: triage items whose first human judgment arrived after the judge's verdicts."""
    return services.judge_triage_sweep()
