"""Generating responses from endpoints, and testing an endpoint. The Celery tasks in tasks.py are thin
wrappers around `response_generate` and `generation_enqueue_batch`.

One delivery of `response_generate` for a response:

1. reads the response; an ok or failed one (or one whose item was dropped) is left alone: a duplicate or
   late delivery does nothing;
2. takes an endpoint slot (cross-process concurrency + requests-per-minute limit, see limits.py),
   waiting at most GENERATION_SLOT_WAIT_MS; without one it is re-queued with a countdown, which is not an
   attempt. The slot is named after the response and held until the outcome is stored, so it is also
   the response's in-flight lease: a second delivery of the same task while the first is still at work
   is told "busy" and comes back later instead of calling the endpoint too;
3. claims an attempt with a compare-and-set UPDATE (`attempts = attempts + 1 WHERE status = 'pending' AND
   attempts < GENERATION_MAX_ATTEMPTS`, row count checked). A response whose attempts are used up (a
   poison task that killed its worker each time, say) is marked failed here instead;
4. calls the endpoint, stores the outcome and releases the slot: success with a conditional UPDATE
   (`WHERE status = 'pending'`), so two deliveries store one response, then the item is marked ready
   (under its row lock) and the batch opened when complete; a transient failure is retried with
   backoff until the attempts run out (then failed); a permanent one fails at once.

The SQL of this path is in store.py (plain SQL: it runs for every generation).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from annotate.batches import services as batch_services
from annotate.batches.models import ItemStatus, Response, ResponseStatus
from annotate.core.rendering import render_markdown
from annotate.endpoints import client, limits, store
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one delivery did. `retry_in_s` set: the task re-queues itself with that countdown."""

    state: str  # ok | failed | skipped | retry | busy | throttled
    retry_in_s: float | None = None
    detail: str = ""


def backoff_s(attempt: int, retry_after_s: float | None = None) -> float:
    """Seconds before try number `attempt + 1`: exponential with equal jitter (half fixed, half random),
    or the server's Retry-After (already capped by the client) plus a little jitter so that the clients
    it throttled do not all come back in the same instant."""
    base = settings.GENERATION_BACKOFF_BASE_MS / 1000
    if retry_after_s is not None:
        return retry_after_s + random.uniform(0, min(base, 1.0))
    ceiling = min(float(settings.GENERATION_BACKOFF_MAX_S), base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def lease_ttl_s() -> float:
    """How long a slot or in-flight lease lives: the task's hard time limit. A delivery never holds one
    longer (its HTTP call is capped by the soft limit), and one killed with it held frees it by then."""
    return float(settings.CELERY_TASK_TIME_LIMIT)


def response_mark_failed(*, response_id: int, error: str) -> bool:
    """Fail a pending response with a visible reason (e.g. an unexpected error in its task)."""
    return store.mark_failed(response_id, error)


def _open_batch_after(job: store.Job) -> None:
    # A separate transaction, after the one that made the item ready has committed.
    batch_services.batch_open_if_ready(batch_id=job.batch_id)


def response_generate(*, response_id: int, deadline: float) -> Outcome:
    """One delivery of the generation of a response (see the module docstring). `deadline` is a
    time.monotonic() value the whole delivery must finish by (the task's soft time limit)."""
    job = store.load_job(response_id)
    if job is None:
        return Outcome("skipped", detail="no such response")
    if job.status == ResponseStatus.OK:
        # A late duplicate. It also repairs a batch left generating by a worker that died between
        # marking the last item ready and opening the batch (both steps are idempotent).
        if job.item_status == ItemStatus.READY:
            _open_batch_after(job)
        return Outcome("skipped", detail="already ok")
    if job.status != ResponseStatus.PENDING:
        return Outcome("skipped", detail=f"already {job.status}")
    if job.item_status == ItemStatus.DROPPED:
        return Outcome("skipped", detail="item dropped")
    config, endpoint = job.config, job.endpoint
    if config is None or endpoint is None:
        store.mark_failed(response_id, "No sampling config: this response cannot be generated.")
        return Outcome("failed", detail="no sampling config")
    if not endpoint.enabled or not config.enabled:
        what = f"endpoint {endpoint.name}" if not endpoint.enabled else f"sampling config {config.label}"
        store.mark_failed(response_id, f"The {what} is disabled; enable it, then retry the failed responses.")
        return Outcome("failed", detail="disabled")

    # Wait for a slot no longer than leaves the request its full timeout within the deadline.
    slot_wait = min(
        settings.GENERATION_SLOT_WAIT_MS / 1000, max(0.0, deadline - time.monotonic() - endpoint.timeout_s)
    )
    limiter = limits.get_limits()
    slot = limiter.acquire(
        endpoint_id=endpoint.pk,
        limit=endpoint.max_concurrency,
        rpm=endpoint.requests_per_minute,
        ttl_s=lease_ttl_s(),
        wait_s=slot_wait,
        holder=f"response:{response_id}",
    )
    if isinstance(slot, limits.Busy):
        return Outcome("busy", retry_in_s=random.uniform(1.0, 3.0), detail="another delivery is running")
    if isinstance(slot, limits.NoSlot):
        # Capped like any retry wait, so that a countdown never outlasts the broker's visibility timeout.
        wait = min(slot.retry_in_s, float(settings.GENERATION_BACKOFF_MAX_S))
        return Outcome("throttled", retry_in_s=wait + random.uniform(0.1, 1.0))
    # The slot is held until the outcome is stored: it is also this response's in-flight lease.
    try:
        return _attempt(job, config, endpoint, deadline)
    finally:
        limiter.release(slot)


def _attempt(job: store.Job, config: SamplingConfig, endpoint: ModelEndpoint, deadline: float) -> Outcome:
    response_id = job.response_id
    attempt = store.claim_attempt(response_id, settings.GENERATION_MAX_ATTEMPTS)
    if attempt is None:
        current = store.load_job(response_id)
        if current is not None and current.status == ResponseStatus.PENDING:
            store.mark_failed(
                response_id, f"Gave up after {current.attempts} attempts (its task kept failing or dying)."
            )
            return Outcome("failed", detail="attempts used up")
        return Outcome("skipped", detail="no longer pending")
    try:
        completion = client.chat_completion(
            client.Target.of(endpoint),
            client.payload_for_config(config, job.conversation),
            request_id=job.request_id,
            deadline=deadline,
        )
    except client.EndpointError as error:
        if error.transient and attempt < settings.GENERATION_MAX_ATTEMPTS:
            store.set_pending_error(response_id, f"Attempt {attempt} failed, will retry: {error.message}")
            return Outcome("retry", retry_in_s=backoff_s(attempt, error.retry_after_s), detail=error.message)
        prefix = f"Failed after {attempt} attempts" if error.transient else "Failed"
        store.mark_failed(response_id, f"{prefix}: {error.message}")
        return Outcome("failed", detail=error.message)
    generated = store.Generated(
        content=completion.content,
        content_html=str(render_markdown(completion.content)),  # outside the transaction
        model_name=endpoint.model,
        latency_ms=completion.latency_ms,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        generated_at=timezone.now(),
    )
    stored, item_ready = store.store_success(job, generated)
    if item_ready:
        _open_batch_after(job)
    return Outcome("ok" if stored else "skipped", detail=f"attempt {attempt}")


def generation_enqueue_batch(*, batch_id: int) -> int:
    """Send one `response_generate` task per pending response of the batch's waiting items, in id chunks
    over one broker connection. Safe to run twice: the task ignores responses that are no longer pending,
    and a second delivery of a pending one waits for the first (its in-flight lease)."""
    from annotate.endpoints.tasks import response_generate

    chunk = settings.GENERATION_ENQUEUE_CHUNK
    last_id = 0
    sent = 0
    with response_generate.app.producer_or_acquire() as producer:
        while True:
            ids = list(
                Response.objects.filter(
                    item__batch_id=batch_id,
                    item__status=ItemStatus.PENDING,
                    status=ResponseStatus.PENDING,
                    pk__gt=last_id,
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:chunk]
            )
            if not ids:
                return sent
            for response_id in ids:
                # Straight to the queue (the default exchange routes by queue name): saves the exchange
                # lookup, a Redis round trip per message, which adds up over 100,000 responses.
                response_generate.apply_async(
                    (response_id,), producer=producer, exchange="", routing_key=settings.GENERATION_QUEUE
                )
            sent += len(ids)
            last_id = ids[-1]


@dataclass(frozen=True)
class EndpointTestResult:
    ok: bool
    message: str
    latency_ms: int | None = None
    content: str = ""


ENDPOINT_TEST_TIMEOUT_S = 30.0


def endpoint_test(*, endpoint_id: int) -> EndpointTestResult:
    """Send one short chat completion to the endpoint (same URL checks, key handling and timeouts as a
    generation; no concurrency slot) and describe what came back."""
    endpoint = ModelEndpoint.objects.get(pk=endpoint_id)
    payload = client.build_payload(
        model=endpoint.model,
        messages=[{"role": "user", "content": "Reply with the single word: pong"}],
        temperature=0.0,
        max_tokens=16,
    )
    try:
        completion = client.chat_completion(
            client.Target.of(endpoint),
            payload,
            request_id=f"endpoint-test-{uuid.uuid4()}",
            deadline=time.monotonic() + ENDPOINT_TEST_TIMEOUT_S,
        )
    except client.EndpointError as exc:
        kind = "transient (a retry may work)" if exc.transient else "permanent"
        return EndpointTestResult(ok=False, message=f"{endpoint.name}: {kind} error: {exc.message}")
    tokens = (
        f", {completion.prompt_tokens}+{completion.completion_tokens} tokens"
        if completion.prompt_tokens
        else ""
    )
    return EndpointTestResult(
        ok=True,
        message=f"{endpoint.name}: OK in {completion.latency_ms} ms{tokens}: {completion.content[:200]!r}",
        latency_ms=completion.latency_ms,
        content=completion.content,
    )
