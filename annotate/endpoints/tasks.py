"""Generation tasks (routed to the "generation" queue; run them on a thread-pool worker:
`celery -A annotate worker -Q generation -P threads -c 32`, more threads than an endpoint's limit: a thread
storing its result has already given its slot to a waiting one).

`responses_generate` takes a chunk of response ids (batches), `response_generate` one id (a live prompt's
responses, which should run side by side); services.py says why chunks.

Thin: they take ids and call services. The retry decision is the service's (one retry layer: these
re-queue with the countdown it returns); attempts are counted in the database, not by Celery, so a
re-queue for a busy endpoint costs no attempt and a poison task still ends in a failed response.

Time limits: soft < hard < the broker's visibility timeout (settings enforce the latter). The thread pool
does not enforce Celery time limits, so the service also works to a deadline of its own (the soft limit),
which caps every HTTP timeout.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as KombuOperationalError

from annotate.endpoints import services

logger = logging.getLogger(__name__)

try:  # redis is installed wherever the Redis broker is used; not needed for the filesystem broker
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    _REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)
except ImportError:  # pragma: no cover
    _REDIS_ERRORS = ()

# Transient infrastructure faults: the database or Redis (cache, broker) unreachable. kombu's
# OperationalError is what a publish (an enqueue from inside a task) raises when the broker is down.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    KombuOperationalError,
    *_REDIS_ERRORS,
)
_INFRA_ERRORS = INFRA_ERRORS

# A retry is a new message published by the worker. Celery's default publish retry gives up after
# ~0.6 s, and then *drops* the delivery (Reject without requeue): a Redis restart of a second or two lost
# every task that retried during it. Workers keep trying for about a minute instead (web requests keep the
# short default: they must answer fast, and the stale-work sweep re-sends what they could not).
REPUBLISH_POLICY = {"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2.0}


def retry(task: Task, *, countdown: float, **kwargs: Any) -> BaseException:
    """`task.retry(...)` that survives a broker outage: the new message is published with the patient
    policy above; if the broker stays away longer, the delivery goes back to the queue (requeue) instead
    of being dropped, and Redis hands it out again (or, failing that, after the visibility timeout)."""
    try:
        return task.retry(countdown=countdown, max_retries=None, retry_policy=REPUBLISH_POLICY, **kwargs)
    except Reject as exc:
        if exc.requeue:
            raise
        logger.warning("%s: could not re-queue (%s); back to the queue instead", task.name, exc.reason)
        return Reject(exc.reason, requeue=True)


def infra_retry(task: Task, exc: BaseException, what: str, **kwargs: Any) -> BaseException:
    """The retry for a transient infrastructure fault: exponential backoff with jitter."""
    countdown = services.backoff_s(min(task.request.retries + 1, 8))
    logger.warning("%s: %s, retrying in %.1fs", what, type(exc).__name__, countdown)
    return retry(task, countdown=countdown, **kwargs)


class ResponseTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # An unexpected error (a bug, bad data): make it visible on the response instead of leaving it
        # pending forever. Transient infrastructure errors never get here: they are retried.
        response_id = args[0] if args else (kwargs or {}).get("response_id")
        if response_id is not None:
            try:
                services.response_mark_failed(
                    response_id=int(response_id), error=f"Internal error: {type(exc).__name__}: {exc}"
                )
            except Exception:
                logger.exception("could not record the failure of response %s", response_id)


class ChunkTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # The same for a chunk: its responses still pending fail with the reason.
        response_ids = args[0] if args else (kwargs or {}).get("response_ids")
        if response_ids:
            try:
                services.responses_mark_failed(
                    response_ids=[int(pk) for pk in response_ids],
                    error=f"Internal error: {type(exc).__name__}: {exc}",
                )
            except Exception:
                logger.exception("could not record the failure of responses %s", response_ids)


_SOFT = settings.CELERY_TASK_SOFT_TIME_LIMIT
_HARD = settings.CELERY_TASK_TIME_LIMIT


def _deliver(task: Task, work: Callable[[float], Any], what: str, **retry_kwargs: Any) -> Any:
    """Run one delivery to a deadline one second below the soft time limit (margin for storing the
    result), re-queueing the task after an interrupted or infrastructure-failed delivery. The outcome's
    own retry decision is the caller's."""
    deadline = time.monotonic() + max(1.0, _SOFT - 1.0)
    try:
        return work(deadline)
    except SoftTimeLimitExceeded:
        # The attempts were counted when claimed; the attempts cap still bounds these.
        raise retry(task, countdown=services.backoff_s(1), **retry_kwargs) from None
    except INFRA_ERRORS as exc:
        raise infra_retry(task, exc, what, **retry_kwargs) from None


def _countdown(retry_in_s: float) -> float:
    # Jitter is already in the countdown; the floor keeps a zero Retry-After from spinning.
    return max(0.05, retry_in_s + random.uniform(0, 0.05))


@shared_task(
    bind=True,
    base=ChunkTask,
    name="annotate.endpoints.tasks.responses_generate",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
    soft_time_limit=_SOFT,
    time_limit=_HARD,
)
def responses_generate(self: Task, response_ids: list[int]) -> str:
    """Generate a chunk of responses, one after another (idempotent: see services.responses_generate).
    What is left to do after a throttle or a transient fault comes back as a new delivery of those ids."""
    outcome = _deliver(
        self,
        lambda deadline: services.responses_generate(response_ids=response_ids, deadline=deadline),
        f"chunk of {len(response_ids)} responses",
    )
    if outcome.retry_in_s is not None:
        raise retry(self, args=(outcome.again,), countdown=_countdown(outcome.retry_in_s))
    return outcome.state


@shared_task(
    bind=True,
    base=ResponseTask,
    name="annotate.endpoints.tasks.response_generate",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
    soft_time_limit=_SOFT,
    time_limit=_HARD,
)
def response_generate(self: Task, response_id: int) -> str:
    """Generate one response (idempotent: an ok response is left alone; see services.response_generate).
    Used for a live prompt's K responses, which should run side by side; batches go in chunks."""
    outcome = _deliver(
        self,
        lambda deadline: services.response_generate(response_id=response_id, deadline=deadline),
        f"response {response_id}",
    )
    if outcome.retry_in_s is not None:
        raise retry(self, countdown=_countdown(outcome.retry_in_s))
    return outcome.state


@shared_task(
    bind=True,
    name="annotate.endpoints.tasks.generation_enqueue_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
    soft_time_limit=_SOFT,
    time_limit=_HARD,
)
def generation_enqueue_batch(self: Task, batch_id: int) -> int:
    """Fan out: one responses_generate task per chunk of the batch's pending responses (safe to run
    twice, so a delivery that met a database or broker outage simply runs again after a backoff)."""
    try:
        return services.generation_enqueue_batch(batch_id=batch_id)
    except INFRA_ERRORS as exc:
        raise infra_retry(self, exc, f"enqueueing batch {batch_id}") from None
