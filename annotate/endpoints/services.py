"""Generating responses from endpoints, and testing an endpoint. The Celery tasks in tasks.py are thin
wrappers around `responses_generate` (a chunk of responses: batches), `response_generate` (one
response: live prompts, whose K responses should run side by side) and `generation_enqueue_batch`.

Chunks, not one task per call: with 100 ms calls, what a Celery task costs by itself (receiving,
reserving, acknowledging and publishing its message: Redis round trips and kombu's Python around them)
and the per-task database work were most of a generation's CPU, and one worker process has one core's
worth of Python (the GIL). A chunk task (`GENERATION_CHUNK_SIZE` responses of one endpoint, an item's
responses next to each other) pays them once: one query loads the chunk, then the responses are
generated one after another, each with its own slot, its own attempt and its own write, exactly as a
single delivery does below. Parallelism comes from the worker's threads, each holding a chunk. The AI
judges work the same way (annotate/judges/services.py) and share `endpoint_call`.

What happens to one response of a delivery (`_generate`):

1. an ok or failed response (or one whose item was dropped) is left alone: a duplicate or late delivery
   does nothing;
2. `endpoint_call` takes an endpoint slot (cross-process concurrency + requests-per-minute limit, see
   limits.py), waiting at most GENERATION_SLOT_WAIT_MS; without one the response (and the rest of its
   chunk) is re-queued with a countdown, which is not an attempt. The slot is named after the response
   and held until the outcome is stored, so it is also the response's in-flight lease: a second delivery
   of the same response while the first is still at work is told "busy" and comes back later instead of
   calling the endpoint too;
3. under the slot, an attempt is claimed with a compare-and-set UPDATE (`attempts = attempts + 1 WHERE
   status = 'pending' AND attempts < GENERATION_MAX_ATTEMPTS`, row count checked). A response whose
   attempts are used up (a poison task that killed its worker each time, say) is marked failed here
   instead. Attempts are claimed one response at a time, when its request is about to go out: a worker
   killed in the middle of a chunk has counted an attempt on the response in flight only;
4. the endpoint is called, the outcome stored and the slot released: success with a conditional UPDATE
   (`WHERE status = 'pending'`), so two deliveries store one response, then the item is marked ready
   (under its row lock); a transient failure is retried with backoff until the attempts run out (then
   failed); a permanent one fails at once. After a 429 or a Retry-After, without a slot in time, or too
   close to the task's deadline for another full request, the rest of the chunk is put back;
5. after the chunk, each batch in which an item became ready is opened if complete.

The SQL of this path is in store.py (plain SQL: it runs for every generation).
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Model
from django.utils import timezone

from annotate.accounts.models import User
from annotate.batches import services as batch_services
from annotate.batches.models import ItemStatus, Response, ResponseStatus
from annotate.core.audit import audit_fields, audit_record
from annotate.core.choices import AuditAction
from annotate.core.errors import ConflictError
from annotate.core.rendering import render_markdown
from annotate.endpoints import client, limits, store
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

M = TypeVar("M", bound=Model)

logger = logging.getLogger(__name__)


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


# --- One endpoint call under the endpoint's limits (generation and AI judges) -----------------------------


@dataclass(frozen=True)
class Call:
    """What `endpoint_call` did.

    state: ok (`completion` set) | error (`error` set: the client's classification, transient or
    permanent) | busy (another delivery holds this holder's lease) | no_slot (the endpoint stayed full,
    or its request budget is spent, for the whole wait) | no_time (too close to the deadline to start a
    request) | unclaimed (the `claim` callback said the work is no longer ours). `retry_in_s`: when to
    come back (busy, no_slot, no_time; the server's Retry-After for an error). `claim`: what the claim
    callback returned (e.g. the attempt number).
    """

    state: str
    completion: client.Completion | None = None
    error: client.EndpointError | None = None
    retry_in_s: float | None = None
    claim: Any = None

    @property
    def stops_chunk(self) -> bool:
        """Whether the rest of a chunk should wait too: the endpoint is saturated or asked us to slow
        down, or the delivery is out of time."""
        if self.state in {"no_slot", "no_time"}:
            return True
        error = self.error
        return (
            self.state == "error"
            and error is not None
            and error.transient
            and (error.status_code == 429 or error.retry_after_s is not None)
        )


@contextmanager
def endpoint_call(
    *,
    endpoint: ModelEndpoint,
    payload: dict[str, Any],
    request_id: str,
    holder: str,
    deadline: float,
    target: client.Target | None = None,
    reserve_s: float = 1.0,
    claim: Callable[[], Any] | None = None,
    limiter: Any = None,
) -> Iterator[Call]:
    """Make one request to `endpoint` under its limits and yield what happened; the slot is held until
    the `with` block ends, so the caller can store the outcome under it (the slot named after `holder` is
    the work's in-flight lease).

    - no request is started with less than `reserve_s` left before `deadline` (time.monotonic());
    - the slot is waited for at most GENERATION_SLOT_WAIT_MS, and never so long that the request would
      not have its full timeout left before the deadline;
    - `claim`, when given, runs once the slot is held and before the request (e.g. counting an attempt
      in the database); a None answer releases the slot without a request (state "unclaimed");
    - the request is `client.chat_completion` (one request, no retries of its own; every failure
      classified as transient or permanent there); its timeouts are capped by the deadline.
    """
    remaining = deadline - time.monotonic()
    if remaining < reserve_s:
        yield Call("no_time", retry_in_s=random.uniform(0.1, 1.0))
        return
    limiter = limiter or limits.get_limits()
    slot = limiter.acquire(
        endpoint_id=endpoint.pk,
        limit=endpoint.max_concurrency,
        rpm=endpoint.requests_per_minute,
        ttl_s=lease_ttl_s(),
        wait_s=min(settings.GENERATION_SLOT_WAIT_MS / 1000, max(0.0, remaining - endpoint.timeout_s)),
        holder=holder,
    )
    if isinstance(slot, limits.Busy):
        yield Call("busy", retry_in_s=random.uniform(1.0, 3.0))
        return
    if isinstance(slot, limits.NoSlot):
        # Capped like any retry wait, so that a countdown never outlasts the broker's visibility timeout.
        wait = min(slot.retry_in_s, float(settings.GENERATION_BACKOFF_MAX_S))
        yield Call("no_slot", retry_in_s=wait + random.uniform(0.1, 1.0))
        return
    try:
        claimed = claim() if claim is not None else None
        if claim is not None and claimed is None:
            call = Call("unclaimed")
        else:
            try:
                completion = client.chat_completion(
                    target or client.Target.of(endpoint), payload, request_id=request_id, deadline=deadline
                )
            except client.EndpointError as error:
                call = Call("error", error=error, retry_in_s=error.retry_after_s, claim=claimed)
            else:
                call = Call("ok", completion=completion, claim=claimed)
        yield call
    finally:
        limiter.release(slot)


# --- Generation -----------------------------------------------------------------------------------------


# The first request of a delivery starts with any time left above this (its timeout shrinks to fit).
FIRST_REQUEST_RESERVE_S = 0.5


@dataclass(frozen=True)
class Outcome:
    """What one delivery did to one response. `retry_in_s` set: deliver it again after that countdown.
    `stop`: the rest of its chunk should wait too. `item_ready`: its item became ready (or already was),
    so its batch may now open."""

    state: str  # ok | failed | skipped | retry | busy | throttled
    retry_in_s: float | None = None
    detail: str = ""
    stop: bool = False
    item_ready: bool = False


@dataclass(frozen=True)
class ChunkOutcome:
    """What one delivery of a chunk did. `retry_in_s` set: deliver `again` (the responses still to do)
    after that countdown."""

    state: str  # done | retry | skipped
    retry_in_s: float | None = None
    again: list[int] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def response_mark_failed(*, response_id: int, error: str) -> bool:
    """Fail a pending response with a visible reason (e.g. an unexpected error in its task)."""
    return store.mark_failed(response_id, error)


def responses_mark_failed(*, response_ids: Sequence[int], error: str) -> int:
    """Fail the pending ones of these responses with a visible reason (an unexpected error in a chunk)."""
    return store.mark_failed_many(response_ids, error)


def response_generate(*, response_id: int, deadline: float) -> Outcome:
    """One delivery of the generation of one response (see the module docstring). `deadline` is a
    time.monotonic() value the whole delivery must finish by (the task's soft time limit)."""
    job = store.load_job(response_id)
    if job is None:
        return Outcome("skipped", detail="no such response")
    outcome = _generate(job, deadline, reserve_s=FIRST_REQUEST_RESERVE_S)
    if outcome.item_ready:
        # A separate transaction, after the one that made the item ready has committed.
        batch_services.batch_open_if_ready(batch_id=job.batch_id)
    return outcome


def responses_generate(*, response_ids: Sequence[int], deadline: float) -> ChunkOutcome:
    """One delivery of a chunk of responses, one after another (see the module docstring)."""
    jobs = store.load_jobs(response_ids)
    if not jobs:
        return ChunkOutcome("skipped")
    states: dict[str, int] = {}
    again: list[int] = []
    waits: list[float] = []
    to_open: set[int] = set()
    requested = False
    for index, job in enumerate(jobs):
        # The first request of a delivery may use all the time there is (as a single delivery does);
        # later ones only start with a full timeout left, so that the chunk's deadline cuts none short.
        reserve = FIRST_REQUEST_RESERVE_S
        if requested and job.endpoint is not None:
            reserve = max(1.0, float(job.endpoint.timeout_s))
        outcome = _generate(job, deadline, reserve_s=reserve)
        requested = requested or outcome.state in {"ok", "retry", "failed"}
        states[outcome.state] = states.get(outcome.state, 0) + 1
        if outcome.item_ready:
            to_open.add(job.batch_id)
        if outcome.retry_in_s is not None:
            again.append(job.response_id)
            waits.append(outcome.retry_in_s)
        if outcome.stop:
            again.extend(j.response_id for j in jobs[index + 1 :] if j.status == ResponseStatus.PENDING)
            break
    for batch_id in sorted(to_open):
        batch_services.batch_open_if_ready(batch_id=batch_id)
    if again:
        # The responses still pending come back together after the longest wait one of them needs.
        return ChunkOutcome("retry", retry_in_s=max(waits), again=again, states=states)
    return ChunkOutcome("done", states=states)


def _generate(job: store.Job, deadline: float, *, reserve_s: float) -> Outcome:
    response_id = job.response_id
    if job.status == ResponseStatus.OK:
        # A late duplicate. It also repairs a batch left generating by a worker that died between
        # marking the last item ready and opening the batch (both steps are idempotent).
        return Outcome("skipped", detail="already ok", item_ready=job.item_status == ItemStatus.READY)
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
    with endpoint_call(
        endpoint=endpoint,
        payload=client.payload_for_config(config, job.conversation),
        request_id=job.request_id,
        holder=f"response:{response_id}",
        deadline=deadline,
        reserve_s=reserve_s,
        claim=lambda: store.claim_attempt(response_id, settings.GENERATION_MAX_ATTEMPTS),
    ) as call:
        # Stored under the slot: it is also this response's in-flight lease.
        return _settle(job, config, endpoint, call)


def _settle(job: store.Job, config: SamplingConfig, endpoint: ModelEndpoint, call: Call) -> Outcome:
    response_id = job.response_id
    if call.state == "busy":
        return Outcome("busy", retry_in_s=call.retry_in_s, detail="another delivery is running")
    if call.state in {"no_slot", "no_time"}:
        return Outcome("throttled", retry_in_s=call.retry_in_s, detail=call.state, stop=True)
    if call.state == "unclaimed":
        current = store.load_job(response_id)
        if current is not None and current.status == ResponseStatus.PENDING:
            store.mark_failed(
                response_id, f"Gave up after {current.attempts} attempts (its task kept failing or dying)."
            )
            return Outcome("failed", detail="attempts used up")
        return Outcome("skipped", detail="no longer pending")
    attempt = int(call.claim)
    if call.state == "error":
        error = call.error
        assert error is not None
        if error.transient and attempt < settings.GENERATION_MAX_ATTEMPTS:
            store.set_pending_error(response_id, f"Attempt {attempt} failed, will retry: {error.message}")
            return Outcome(
                "retry",
                retry_in_s=backoff_s(attempt, error.retry_after_s),
                detail=error.message,
                stop=call.stops_chunk,
            )
        prefix = f"Failed after {attempt} attempts" if error.transient else "Failed"
        store.mark_failed(response_id, f"{prefix}: {error.message}")
        return Outcome("failed", detail=error.message)
    completion = call.completion
    assert completion is not None
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
    return Outcome("ok" if stored else "skipped", detail=f"attempt {attempt}", item_ready=item_ready)


# --- Enqueueing ------------------------------------------------------------------------------------------


def generation_chunks(*, batch_id: int) -> Iterator[list[int]]:
    """The pending responses of the batch's waiting items in chunks: one endpoint per chunk (a throttled
    endpoint holds up none of another's work), an item's responses together, at most
    GENERATION_CHUNK_SIZE each, and smaller for small backlogs (at least about four chunks per endpoint
    slot, so that the end of a run does not leave slots idle while a few threads finish long chunks).
    Streams: 100,000 responses are never all in memory."""
    pending = Response.objects.filter(
        item__batch_id=batch_id, item__status=ItemStatus.PENDING, status=ResponseStatus.PENDING
    )
    sizes: dict[int | None, int] = {}
    for row in pending.values(
        "sampling_config__endpoint_id", "sampling_config__endpoint__max_concurrency"
    ).annotate(n=Count("pk")):
        limit = row["sampling_config__endpoint__max_concurrency"] or 1
        sizes[row["sampling_config__endpoint_id"]] = max(
            1, min(settings.GENERATION_CHUNK_SIZE, math.ceil(row["n"] / (4 * limit)))
        )
    rows = pending.order_by("sampling_config__endpoint_id", "item_id", "pk").values_list(
        "sampling_config__endpoint_id", "item_id", "pk"
    )
    current: list[int] = []
    current_endpoint: int | None = None
    last_item = None
    for endpoint_id, item_id, response_id in rows.iterator(chunk_size=settings.GENERATION_ENQUEUE_CHUNK):
        if current and (
            endpoint_id != current_endpoint
            or (item_id != last_item and len(current) >= sizes.get(endpoint_id, 1))
        ):
            yield current
            current = []
        current_endpoint, last_item = endpoint_id, item_id
        current.append(response_id)
    if current:
        yield current


def generation_enqueue_batch(*, batch_id: int) -> int:
    """Send one `responses_generate` task per chunk of the batch's pending responses (generation_chunks),
    over one broker connection; how many tasks. Safe to run twice: a chunk skips responses that are no
    longer pending, and a second delivery of a pending one waits for the first (its in-flight lease)."""
    from annotate.endpoints.tasks import responses_generate

    sent = 0
    with responses_generate.app.producer_or_acquire() as producer:
        for ids in generation_chunks(batch_id=batch_id):
            # Straight to the queue (the default exchange routes by queue name): saves the exchange
            # lookup, a Redis round trip per message.
            responses_generate.apply_async(
                (ids,), producer=producer, exchange="", routing_key=settings.GENERATION_QUEUE
            )
            sent += 1
    return sent


@dataclass(frozen=True)
class StaleSweep:
    batches_requeued: list[int] = field(default_factory=list)
    batches_opened: list[int] = field(default_factory=list)
    live_responses_requeued: int = 0


LIVE_REQUEUE_LIMIT = 500  # per sweep: a burst of lost live responses is worked off over a few sweeps


def generation_requeue_stale(*, stale_after_s: float | None = None) -> StaleSweep:
    """Re-send generation work that stopped moving (a task lost because sending it failed after its
    transaction committed, or dropped by a broker outage). Run by beat every STALE_WORK_SWEEP_S.

    - a generating batch with pending responses none of which had an attempt (or was created or put back
      to pending) within `stale_after_s` gets its pending responses enqueued again
      (generation_enqueue_batch). A batch that is still moving, however slowly, is left alone;
    - a generating batch with no item waiting is opened (its "open" after the last item was lost);
    - pending responses of open live-prompt batches untouched for as long get their task again.

    Idempotent: a duplicate task skips a response that is no longer pending and waits out one that is in
    flight (its lease). The requeued responses are touched, so the same work is re-sent at most once per
    `stale_after_s` even when the queue is merely long."""
    from annotate.batches.models import Batch, BatchStatus, PromptSource
    from annotate.endpoints.tasks import generation_enqueue_batch, response_generate

    stale_after_s = settings.STALE_WORK_AFTER_S if stale_after_s is None else stale_after_s
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    requeued: list[int] = []
    opened: list[int] = []
    for batch_id in Batch.objects.filter(status=BatchStatus.GENERATING).values_list("pk", flat=True):
        pending = Response.objects.filter(
            item__batch_id=batch_id, item__status=ItemStatus.PENDING, status=ResponseStatus.PENDING
        )
        if not pending.exists():
            if batch_services.batch_open_if_ready(batch_id=batch_id):
                opened.append(batch_id)
            continue
        if pending.filter(touched_at__gte=cutoff).exists():
            continue  # still moving
        with transaction.atomic():
            pending.update(touched_at=timezone.now())
            transaction.on_commit(lambda b=batch_id: generation_enqueue_batch.delay(b))
        requeued.append(batch_id)
    live = list(
        Response.objects.filter(
            status=ResponseStatus.PENDING,
            touched_at__lt=cutoff,
            item__status=ItemStatus.PENDING,
            item__batch__status=BatchStatus.OPEN,
            item__batch__prompt_source=PromptSource.LIVE,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:LIVE_REQUEUE_LIMIT]
    )
    if live:
        with transaction.atomic():
            Response.objects.filter(pk__in=live).update(touched_at=timezone.now())
            transaction.on_commit(lambda: [response_generate.delay(pk) for pk in live])
    if requeued or opened or live:
        logger.warning(
            "stale generation: batches re-enqueued %s, opened %s, live responses re-sent %d",
            requeued,
            opened,
            len(live),
        )
    return StaleSweep(requeued, opened, len(live))


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


# --- Endpoints and sampling configs: creates and updates (the API; the admin saves through model forms) ---


def _save_named(
    instance: M, *, what: str, action: AuditAction, actor: User | None, changes: dict[str, Any], created: bool
) -> M:
    """Apply `changes`, validate with the model's own full_clean() (field bounds, clean(), constraints),
    save and record the change in the audit log; a name taken meanwhile is a 409 naming the field."""
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        # A concurrent create with the same unique name won the race after our full_clean() passed.
        raise ConflictError(
            f"A {what} with this name already exists.", code="duplicate", field="name"
        ) from None
    audit_record(
        actor=actor,
        action=action,
        obj=instance,
        details={"created" if created else "changed": audit_fields(changes)},
    )
    return instance


@transaction.atomic
def endpoint_create(*, actor: User | None = None, **fields: Any) -> ModelEndpoint:
    return _save_named(
        ModelEndpoint(),
        what="model endpoint",
        action=AuditAction.ENDPOINT_CHANGED,
        actor=actor,
        changes=fields,
        created=True,
    )


@transaction.atomic
def endpoint_update(*, endpoint_id: int, changes: dict[str, Any], actor: User | None = None) -> ModelEndpoint:
    return _save_named(
        ModelEndpoint.objects.select_for_update().get(pk=endpoint_id),
        what="model endpoint",
        action=AuditAction.ENDPOINT_CHANGED,
        actor=actor,
        changes=changes,
        created=False,
    )


@transaction.atomic
def sampling_config_create(*, actor: User | None = None, **fields: Any) -> SamplingConfig:
    return _save_named(
        SamplingConfig(),
        what="sampling config",
        action=AuditAction.SAMPLING_CONFIG_CHANGED,
        actor=actor,
        changes=fields,
        created=True,
    )


@transaction.atomic
def sampling_config_update(
    *, config_id: int, changes: dict[str, Any], actor: User | None = None
) -> SamplingConfig:
    return _save_named(
        SamplingConfig.objects.select_for_update().get(pk=config_id),
        what="sampling config",
        action=AuditAction.SAMPLING_CONFIG_CHANGED,
        actor=actor,
        changes=changes,
        created=False,
    )
