"""Writes about AI judges: versions, runs, verdicts, the judgments they become, and triage.

A run's work is done in chunks (tasks.judge_chunk): one task judges a few items, both display orders of
each, one endpoint call after another. Generation's one-task-per-call design spends more time in Celery and
in per-task database work than in the 100 ms call itself (docs/benchmarks.md); a chunk pays those costs
once for JUDGE_CHUNK_ITEMS x 2 calls, and parallelism comes from the worker's threads, each holding a chunk.

One delivery of a chunk (`judge_chunk`):

1. loads the chunk's verdicts, the run, the version and its endpoint (three queries); verdicts that are no
   longer pending are left alone, so a duplicate or late delivery calls nothing again;
2. claims an attempt on all pending verdicts at once (compare-and-set UPDATE ... RETURNING, as generation
   does per response); a verdict whose attempts are used up (a chunk that killed its worker each time) is
   failed here;
3. for each verdict: takes an endpoint slot named after the verdict (the Redis limits of generation:
   concurrency, requests per minute, and "busy" when another delivery holds the same verdict), calls the
   judge, reads and validates the answer with judgments.validate_judgment (the same rules as a human's
   answer). An unusable answer (not JSON, not a valid judgment, a refusal) is asked again once with the
   problem stated, then stored as failed with the raw text. The outcome is one conditional UPDATE
   (`WHERE status = 'pending'`), the only per-call write;
4. a transient endpoint fault leaves the verdict pending (retried by the next delivery with generation's
   backoff and jitter, honouring Retry-After); after a 429, or without a slot in time, or near the task's
   deadline, the rest of the chunk is put back (its attempts given back) and the task re-queued;
5. items whose two verdicts are in become judgments of the version's AI user (`verdicts_materialize`, one
   transaction per chunk), triage runs on them if the run asks for it, and the run is marked done when
   nothing is pending.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotate.accounts.models import User, UserKind
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Batch, Item, ItemStatus, Response, ResponseStatus
from annotate.core.choices import STRENGTH_LEVEL, Mode
from annotate.core.errors import ConflictError, DomainError
from annotate.endpoints import client, limits
from annotate.endpoints.models import ModelEndpoint, SamplingConfig
from annotate.endpoints.services import backoff_s, endpoint_call
from annotate.judges import prompts
from annotate.judges.models import (
    VERSIONED_FIELDS,
    FailureKind,
    Judge,
    JudgeRun,
    JudgeVersion,
    RunStatus,
    TriageDecision,
    Verdict,
    VerdictStatus,
)
from annotate.judgments.models import Judgment
from annotate.judgments.services import JudgmentInput, JudgmentInvalid, Validated, validate_judgment

logger = logging.getLogger(__name__)

MAX_SAMPLE = 1_000_000


# --- Versions ------------------------------------------------------------------------------------------


def _snapshot_differs(judge: Judge, version: JudgeVersion) -> bool:
    return any(getattr(judge, name) != getattr(version, name) for name in VERSIONED_FIELDS)


@transaction.atomic
def judge_publish_version(*, judge_id: int, user: User | None = None) -> JudgeVersion:
    """The judge's current version: the latest one if the judge is unchanged since, else a new one (with
    its own AI user). The judge row lock serialises two publishers, so a change gives one version."""
    judge = Judge.objects.select_for_update().get(pk=judge_id)
    latest = judge.versions.order_by("-version").first()
    if latest is not None and not _snapshot_differs(judge, latest):
        return latest
    number = latest.version + 1 if latest is not None else 1
    label = f"{judge.name}@v{number}"
    if JudgeVersion.objects.filter(label=label).exists():
        raise ConflictError(
            f"The label {label} is taken by another judge's version; choose another name.", field="name"
        )
    ai_user = User(username=f"ai-{label}"[:150], kind=UserKind.AI, is_active=False, first_name="AI judge")
    # An AI annotator never signs in: no password, inactive, and never qualified for a track.
    ai_user.set_unusable_password()
    ai_user.save()
    return JudgeVersion.objects.create(
        judge=judge,
        version=number,
        label=label,
        user=ai_user,
        sampling_config_id=judge.sampling_config_id,
        helpfulness_prompt=judge.helpfulness_prompt,
        safety_prompt=judge.safety_prompt,
        safety_principles=judge.safety_principles,
        json_mode=judge.json_mode,
        created_by=user,
    )


# --- Messages ------------------------------------------------------------------------------------------


def instructions_for(version: JudgeVersion | Judge, track: str) -> tuple[str, str]:
    """(instructions, principles) of the track."""
    if track == "safety":
        return version.safety_prompt, version.safety_principles
    return version.helpfulness_prompt, ""


def verdict_messages(
    *,
    version: JudgeVersion | Judge,
    config: SamplingConfig,
    batch: Batch,
    conversation: list[dict[str, Any]],
    responses: Sequence[str],
) -> list[dict[str, str]]:
    instructions, principles = instructions_for(version, batch.track)
    return prompts.build_messages(
        config_system_prompt=config.system_prompt or "",
        instructions=instructions,
        principles=principles,
        mode=batch.mode,
        track=batch.track,
        conversation=conversation,
        responses=responses,
    )


def verdict_payload(
    *, config: SamplingConfig, endpoint: ModelEndpoint, json_mode: bool, messages: list[dict[str, str]]
) -> dict[str, Any]:
    extra = dict(config.extra_params) if isinstance(config.extra_params, dict) else {}
    if json_mode:
        extra["response_format"] = {"type": "json_object"}
    return client.build_payload(
        model=endpoint.model,
        messages=messages,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
        extra=extra,
        reserved=config.RESERVED_PARAMS,
    )


def display_orders(response_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Order 0 shows the responses in slot order, order 1 reversed (for K = 2: swapped)."""
    ids = list(response_ids)
    return ids, list(reversed(ids))


# --- Runs --------------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str, *, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise DomainError(f"{name} must be a whole number from 1 to {maximum}.", field=name)
    return value


def judge_run_start(
    *,
    judge_id: int,
    batch_id: int,
    user: User | None = None,
    sample_size: int | None = None,
    seed: int | None = None,
    triage: bool = False,
    triage_ceiling: int | None = None,
) -> JudgeRun:
    """Start a run of the judge's current version over the batch's ready items (or a seeded random
    sample of them). Items this version already judged in an earlier run are left out: a version judges an
    item once. The verdict rows are created here (two per item) and the chunks enqueued after commit."""
    judge = Judge.objects.filter(pk=judge_id).first()
    if judge is None:
        raise DomainError("No such judge.", code="not_found", field="judge")
    if not judge.enabled:
        raise DomainError(f"The judge {judge.name} is disabled.", field="judge")
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        raise DomainError("No such batch.", code="not_found", field="batch")
    if sample_size is not None:
        sample_size = _positive_int(sample_size, "sample_size", maximum=MAX_SAMPLE)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**62):
        raise DomainError("seed must be a whole number from 0 to 2^62.", field="seed")
    if not isinstance(triage, bool):
        raise DomainError("triage must be true or false.", field="triage")
    if triage:
        if triage_ceiling is None:
            triage_ceiling = min(50, batch.overlap + 1)
        triage_ceiling = _positive_int(triage_ceiling, "triage_ceiling", maximum=50)
        if triage_ceiling <= batch.overlap:
            raise DomainError(
                f"triage_ceiling must be above the batch's overlap ({batch.overlap}).", field="triage_ceiling"
            )
    elif triage_ceiling is not None:
        raise DomainError("triage_ceiling applies only with triage.", field="triage_ceiling")
    version = judge_publish_version(judge_id=judge.pk, user=user)
    config = SamplingConfig.objects.select_related("endpoint").get(pk=version.sampling_config_id)
    if not config.enabled or not config.endpoint.enabled:
        raise DomainError(
            f"The judge's sampling config {config.label} or its endpoint is disabled.", field="judge"
        )
    seed = seed if seed is not None else random.SystemRandom().randrange(2**62)

    with transaction.atomic():
        # Two runs of one version started at once would draw the same items: the version row serialises them.
        JudgeVersion.objects.select_for_update().get(pk=version.pk)
        judged = Verdict.objects.filter(version=version, item=OuterRef("pk"))
        candidates = list(
            Item.objects.filter(batch=batch, status=ItemStatus.READY)
            .exclude(Exists(judged))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not candidates:
            raise ConflictError(
                "No ready item of this batch is left for this judge version (none ready, or all judged).",
                code="nothing_to_judge",
                field="batch",
            )
        chosen = candidates
        if sample_size is not None and sample_size < len(candidates):
            chosen = sorted(random.Random(seed).sample(candidates, sample_size))
        run = JudgeRun.objects.create(
            version=version,
            batch=batch,
            sample_size=sample_size,
            seed=seed,
            items_total=len(chosen),
            triage=triage,
            triage_ceiling=triage_ceiling if triage else None,
            created_by=user,
        )
        responses: dict[int, list[int]] = {}
        for start in range(0, len(chosen), 10_000):
            rows = (
                Response.objects.filter(item_id__in=chosen[start : start + 10_000], status=ResponseStatus.OK)
                .order_by("item_id", "slot")
                .values_list("item_id", "pk")
            )
            for item_id, response_id in rows:
                responses.setdefault(item_id, []).append(response_id)
        verdicts = []
        for item_id in chosen:
            ids = responses.get(item_id, [])
            if len(ids) != batch.responses_per_item:
                continue  # a ready item always has K ok responses; a repair in progress is skipped
            for order, positions in enumerate(display_orders(ids)):
                verdicts.append(
                    Verdict(run=run, version=version, item_id=item_id, order=order, positions=positions)
                )
        Verdict.objects.bulk_create(verdicts, batch_size=2000)
        run_id = run.pk
        transaction.on_commit(lambda: _enqueue(run_id))
    return run


def _enqueue(run_id: int) -> None:
    from annotate.judges.tasks import judge_run_enqueue

    judge_run_enqueue.delay(run_id)


def judge_run_enqueue(*, run_id: int) -> int:
    """Send one judge_chunk task per JUDGE_CHUNK_ITEMS items with pending verdicts, over one broker
    connection. Safe to run twice: a chunk skips verdicts that are no longer pending, and a second delivery
    of a pending one is told "busy" by its slot."""
    from annotate.judges.tasks import judge_chunk

    run = JudgeRun.objects.select_related("version__sampling_config__endpoint").get(pk=run_id)
    limit = run.version.sampling_config.endpoint.max_concurrency
    # Small runs get smaller chunks: at least about four chunks per endpoint slot, so that no slot idles
    # while a few threads finish long chunks at the end of the run.
    size = max(1, min(settings.JUDGE_CHUNK_ITEMS, math.ceil(run.items_total / (4 * limit))))
    rows = (
        Verdict.objects.filter(run_id=run_id, status=VerdictStatus.PENDING)
        .order_by("item_id", "order")
        .values_list("item_id", "pk")
    )
    chunks: list[list[int]] = []
    current: list[int] = []
    items_in_current = 0
    last_item = None
    for item_id, verdict_id in rows.iterator(chunk_size=5000):
        if item_id != last_item:
            if items_in_current == size:
                chunks.append(current)
                current, items_in_current = [], 0
            items_in_current += 1
            last_item = item_id
        current.append(verdict_id)
    if current:
        chunks.append(current)
    with judge_chunk.app.producer_or_acquire() as producer:
        for ids in chunks:
            judge_chunk.apply_async(
                (run_id, ids), producer=producer, exchange="", routing_key=settings.GENERATION_QUEUE
            )
    return len(chunks)


@transaction.atomic
def judge_run_cancel(*, run_id: int) -> JudgeRun:
    run = JudgeRun.objects.select_for_update().get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        raise ConflictError(f"The run is already {run.status}.", code="invalid_transition", field="status")
    Verdict.objects.filter(run=run, status=VerdictStatus.PENDING).update(
        status=VerdictStatus.FAILED, failure=FailureKind.CANCELLED, error="The run was cancelled."
    )
    run.status = RunStatus.CANCELLED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at", "updated_at"])
    return run


@transaction.atomic
def judge_run_retry_failed(*, run_id: int) -> int:
    """Put a run's failed verdicts back to pending (fresh attempts) and enqueue them again."""
    run = JudgeRun.objects.select_for_update().get(pk=run_id)
    count = Verdict.objects.filter(run=run, status=VerdictStatus.FAILED).update(
        status=VerdictStatus.PENDING, failure="", attempts=0, error=""
    )
    if count:
        JudgeRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return count


def judge_run_finish_if_done(*, run_id: int) -> bool:
    pending = Verdict.objects.filter(run_id=run_id, status=VerdictStatus.PENDING)
    return (
        JudgeRun.objects.filter(pk=run_id, status=RunStatus.RUNNING)
        .exclude(Exists(pending))
        .update(status=RunStatus.DONE, finished_at=timezone.now())
        > 0
    )


# --- One chunk --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkOutcome:
    state: str  # done | retry | skipped
    retry_in_s: float | None = None
    detail: str = ""


@dataclass
class _Context:
    run: JudgeRun
    batch: Batch
    version: JudgeVersion
    config: SamplingConfig
    endpoint: ModelEndpoint
    target: client.Target
    limiter: Any
    deadline: float


@dataclass
class _Result:
    state: str  # ok | unusable | failed | transient | busy | no_slot | no_time
    validated: Validated | None = None
    rationale: str = ""
    raw: str = ""
    failure: str = ""
    error: str = ""
    retry_in_s: float | None = None
    stop_chunk: bool = False
    latency_ms: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    problems: list[str] = field(default_factory=list)


def _claim_attempts(ids: list[int], max_attempts: int) -> dict[int, int]:
    """Compare-and-set: one attempt more on each pending verdict that has attempts left; {id: attempt}."""
    table = Verdict._meta.db_table
    marks = ", ".join("%s" for _ in ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET attempts = attempts + 1 WHERE id IN ({marks}) AND status = %s "
            "AND attempts < %s RETURNING id, attempts",
            [*ids, VerdictStatus.PENDING, max_attempts],
        )
        return {int(row[0]): int(row[1]) for row in cursor.fetchall()}


def _give_back_attempts(ids: Iterable[int]) -> None:
    ids = list(ids)
    if ids:
        Verdict.objects.filter(pk__in=ids, status=VerdictStatus.PENDING, attempts__gt=0).update(
            attempts=F("attempts") - 1
        )


def _store(verdict_id: int, result: _Result) -> bool:
    """The one write per call: conditional on the verdict still pending, so two deliveries store one."""
    pending = Verdict.objects.filter(pk=verdict_id, status=VerdictStatus.PENDING)
    if result.state == "ok":
        v = result.validated
        assert v is not None
        return (
            pending.update(
                status=VerdictStatus.OK,
                chosen_id=v.chosen,
                strength=v.strength,
                ranking=v.ranking,
                safety_labels=v.safety_labels,
                position_chosen=v.position_chosen,
                rationale=result.rationale,
                raw=result.raw,
                failure="",
                error="",
                latency_ms=result.latency_ms,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                judged_at=timezone.now(),
            )
            > 0
        )
    if result.state in {"unusable", "failed"}:
        return (
            pending.update(
                status=VerdictStatus.FAILED,
                failure=result.failure,
                raw=result.raw,
                error=result.error[:4000],
                latency_ms=result.latency_ms or None,
            )
            > 0
        )
    if result.state == "transient":
        pending.update(error=result.error[:4000])
    return False


def _judge_one(ctx: _Context, verdict: Verdict, responses: dict[int, str]) -> _Result:
    positions = [int(pk) for pk in verdict.positions]
    messages = verdict_messages(
        version=ctx.version,
        config=ctx.config,
        batch=ctx.batch,
        conversation=verdict.item.conversation,
        responses=[responses.get(pk, "") for pk in positions],
    )
    assignment = Assignment(batch=ctx.batch, item_id=verdict.item_id, positions=positions)
    result = _Result("unusable")
    for try_number in (1, 2):
        # The endpoint call under its slot, limits and deadline, shared with generation. The slot is
        # released before the answer is read (the verdict is stored after both tries).
        with endpoint_call(
            endpoint=ctx.endpoint,
            target=ctx.target,
            payload=verdict_payload(
                config=ctx.config, endpoint=ctx.endpoint, json_mode=ctx.version.json_mode, messages=messages
            ),
            request_id=str(verdict.request_id),
            holder=f"verdict:{verdict.pk}",
            deadline=ctx.deadline,
            limiter=ctx.limiter,
        ) as call:
            pass
        if call.state in {"busy", "no_slot", "no_time"}:
            return _Result(call.state, retry_in_s=call.retry_in_s, stop_chunk=call.stops_chunk)
        completion = call.completion
        if isinstance(call.error, client.RefusedError):
            text = call.error.refusal
            problem = prompts.Unusable("refused", "You declined to judge; a judgment is required.")
        elif call.error is not None:
            if call.error.transient:
                return _Result(
                    "transient",
                    error=call.error.message,
                    retry_in_s=call.error.retry_after_s,
                    stop_chunk=call.stops_chunk,
                    problems=result.problems,
                )
            return _Result("failed", failure=FailureKind.ENDPOINT, error=f"Failed: {call.error.message}")
        else:
            assert completion is not None
            text = completion.content
        if completion is not None:
            result.latency_ms += completion.latency_ms
            result.prompt_tokens = completion.prompt_tokens
            result.completion_tokens = completion.completion_tokens
            try:
                answer = prompts.parse_answer(
                    text, positions=positions, mode=ctx.batch.mode, track=ctx.batch.track
                )
                validated = validate_judgment(
                    assignment,
                    JudgmentInput(
                        idempotency_key="ai-verdict",
                        chosen=answer.chosen,
                        strength=answer.strength,
                        ranking=answer.ranking,
                        safety_labels=answer.safety_labels,
                        rationale=answer.rationale,
                        # The judge's choice of an unsafe response over a safe one is recorded and
                        # flagged, as a confirmed human choice is.
                        confirm_unsafe_choice=True,
                    ),
                )
            except prompts.Unusable as unusable:
                problem = unusable
            except JudgmentInvalid as invalid:
                problem = prompts.Unusable("invalid", "; ".join(invalid.errors.values()))
            else:
                result.state, result.validated, result.rationale, result.raw = (
                    "ok",
                    validated,
                    answer.rationale,
                    text,
                )
                return result
        result.raw = text
        result.failure = problem.kind
        result.problems.append(f"try {try_number}: {problem.kind}: {problem.message}")
        if try_number == 1:
            messages = prompts.retry_messages(messages, text, problem.message)
    result.state = "unusable"
    result.error = "Unusable answer twice. " + " ".join(result.problems)
    return result


def _load(run_id: int, verdict_ids: list[int]) -> tuple[JudgeRun | None, list[Verdict]]:
    run = (
        JudgeRun.objects.select_related("batch", "version__sampling_config__endpoint")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return None, []
    verdicts = list(
        Verdict.objects.filter(pk__in=verdict_ids, run_id=run_id)
        .select_related("item")
        .only(
            "pk", "item_id", "order", "positions", "status", "attempts", "request_id",
            "item__conversation", "item__status",
        )
        .order_by("item_id", "order")
    )  # fmt: skip
    return run, verdicts


def judge_chunk(*, run_id: int, verdict_ids: list[int], deadline: float) -> ChunkOutcome:
    """One delivery of a chunk of verdicts (see the module docstring)."""
    run, verdicts = _load(run_id, verdict_ids)
    if run is None or not verdicts:
        return ChunkOutcome("skipped", detail="no such run or verdicts")
    items = sorted({v.item_id for v in verdicts})
    pending = [v for v in verdicts if v.status == VerdictStatus.PENDING]
    if run.status == RunStatus.CANCELLED or not pending:
        if pending or run.status == RunStatus.CANCELLED:
            return ChunkOutcome("skipped", detail="run cancelled")
        _after_chunk(run, items)
        return ChunkOutcome("skipped", detail="nothing pending")
    config = run.version.sampling_config
    endpoint = config.endpoint
    if not (config.enabled and endpoint.enabled):
        what = f"endpoint {endpoint.name}" if not endpoint.enabled else f"sampling config {config.label}"
        for v in pending:
            _store(v.pk, _Result("failed", failure=FailureKind.ENDPOINT, error=f"The {what} is disabled."))
        _after_chunk(run, items)
        return ChunkOutcome("done", detail="disabled")

    claimed = _claim_attempts([v.pk for v in pending], settings.GENERATION_MAX_ATTEMPTS)
    for v in pending:
        if v.pk not in claimed:
            _store(
                v.pk,
                _Result(
                    "failed",
                    failure=FailureKind.ENDPOINT,
                    error=f"Gave up after {v.attempts} attempts (its task kept failing or dying).",
                ),
            )
    responses = dict(
        Response.objects.filter(pk__in={int(pk) for v in pending for pk in v.positions}).values_list(
            "pk", "content"
        )
    )
    ctx = _Context(
        run=run,
        batch=run.batch,
        version=run.version,
        config=config,
        endpoint=endpoint,
        target=client.Target.of(endpoint),
        limiter=limits.get_limits(),
        deadline=deadline,
    )
    todo = [v for v in pending if v.pk in claimed]
    retry_in: list[float] = []
    put_back: list[int] = []
    for index, verdict in enumerate(todo):
        if verdict.item.status == ItemStatus.DROPPED:
            _store(verdict.pk, _Result("failed", failure=FailureKind.ENDPOINT, error="The item was dropped."))
            continue
        result = _judge_one(ctx, verdict, responses)
        if result.state in {"busy", "no_slot", "no_time"}:
            put_back.append(verdict.pk)
        elif result.state == "transient":
            attempt = claimed[verdict.pk]
            if attempt < settings.GENERATION_MAX_ATTEMPTS:
                _store(
                    verdict.pk,
                    _Result("transient", error=f"Attempt {attempt} failed, will retry: {result.error}"),
                )
                retry_in.append(backoff_s(attempt, result.retry_in_s))
            else:
                _store(
                    verdict.pk,
                    _Result(
                        "failed",
                        failure=FailureKind.ENDPOINT,
                        error=f"Failed after {attempt} attempts: {result.error}",
                    ),
                )
        else:
            _store(verdict.pk, result)
        if result.retry_in_s is not None and result.state != "transient":
            retry_in.append(result.retry_in_s)
        if result.stop_chunk:
            put_back.extend(v.pk for v in todo[index + 1 :])
            break
    _give_back_attempts(put_back)
    _after_chunk(run, items)
    if put_back or retry_in:
        # Some verdicts are still pending: the same chunk comes back after the longest wait it needs.
        return ChunkOutcome("retry", retry_in_s=max(retry_in or [random.uniform(1.0, 3.0)]))
    return ChunkOutcome("done")


def _after_chunk(run: JudgeRun, item_ids: list[int]) -> None:
    made = verdicts_materialize(version_id=run.version_id, item_ids=item_ids)
    if run.triage and made:
        judge_run_triage(run_id=run.pk, item_ids=made)
    judge_run_finish_if_done(run_id=run.pk)


def verdict_mark_failed(*, verdict_ids: list[int], error: str) -> int:
    """Fail pending verdicts with a visible reason (e.g. an unexpected error in their task)."""
    return Verdict.objects.filter(pk__in=verdict_ids, status=VerdictStatus.PENDING).update(
        status=VerdictStatus.FAILED, failure=FailureKind.ENDPOINT, error=error[:4000]
    )


# --- Verdicts become judgments -----------------------------------------------------------------------------


def consensus(first: Verdict, second: Verdict, mode: str) -> JudgmentInput | None:
    """The judgment both display orders support, or None when they disagree (pairwise: different sides).

    Pairwise: the side both chose, at the weaker of the two strengths. Ranking: the responses ordered by the
    sum of their two ranks (Borda), ties broken by the first order's ranking. Safety: a response is safe
    only if both verdicts labelled it safe.
    """
    labels: dict[int, str] = {}
    if first.safety_labels is not None and second.safety_labels is not None:
        for key, label in first.safety_labels.items():
            both_safe = label == "safe" and second.safety_labels.get(key) == "safe"
            labels[int(key)] = "safe" if both_safe else "unsafe"
    rationale = first.rationale
    if mode == Mode.PAIRWISE:
        if first.chosen_id != second.chosen_id:
            return None
        strength = min((first.strength, second.strength), key=lambda s: STRENGTH_LEVEL[s])
        return JudgmentInput(
            idempotency_key="ai-consensus",
            chosen=first.chosen_id,
            strength=strength,
            safety_labels=labels,
            rationale=rationale,
            confirm_unsafe_choice=True,
        )
    a, b = [int(x) for x in first.ranking or []], [int(x) for x in second.ranking or []]
    ranking = sorted(a, key=lambda pk: (a.index(pk) + b.index(pk), a.index(pk)))
    return JudgmentInput(
        idempotency_key="ai-consensus",
        ranking=ranking,
        safety_labels=labels,
        rationale=rationale,
        confirm_unsafe_choice=True,
    )


def verdicts_materialize(*, version_id: int, item_ids: Sequence[int]) -> list[int]:
    """Turn the agreeing verdict pairs of these items into judgments of the version's AI user; returns the
    items that got one now. Idempotent: the verdict rows are locked, and items that already have the AI
    user's assignment are skipped. The AI assignment is created submitted and never touches the item's
    `wanted`/`taken` counters: AI work is never part of the human overlap.
    """
    if not item_ids:
        return []
    with transaction.atomic():
        verdicts = list(
            Verdict.objects.select_for_update()
            .filter(version_id=version_id, item_id__in=list(item_ids))
            .order_by("pk")
        )
        pairs: dict[int, dict[int, Verdict]] = {}
        for v in verdicts:
            pairs.setdefault(v.item_id, {})[v.order] = v
        complete = {
            item_id: pair
            for item_id, pair in pairs.items()
            if len(pair) == 2 and all(v.status == VerdictStatus.OK for v in pair.values())
        }
        if not complete:
            return []
        version = JudgeVersion.objects.get(pk=version_id)
        done = set(
            Assignment.objects.filter(annotator_id=version.user_id, item_id__in=list(complete)).values_list(
                "item_id", flat=True
            )
        )
        items = {
            item.pk: item
            for item in Item.objects.select_related("batch").filter(
                pk__in=[i for i in complete if i not in done]
            )
        }
        now = timezone.now()
        rows: list[tuple[Assignment, Validated, JudgmentInput, int]] = []
        for item_id, item in items.items():
            first, second = complete[item_id][0], complete[item_id][1]
            agreed = consensus(first, second, item.batch.mode)
            if agreed is None:
                continue
            assignment = Assignment(
                item_id=item_id,
                batch_id=item.batch_id,
                annotator_id=version.user_id,
                status=AssignmentStatus.SUBMITTED,
                leased_at=min(first.judged_at, second.judged_at),
                expires_at=min(first.judged_at, second.judged_at) + timedelta(seconds=1),
                finished_at=now,
                positions=[int(pk) for pk in first.positions],
                guidelines_version=item.batch.guidelines_version,
            )
            assignment.batch = item.batch
            try:
                validated = validate_judgment(assignment, agreed)
            except JudgmentInvalid:
                logger.warning(
                    "verdicts of item %s for version %s do not form a judgment", item_id, version_id
                )
                continue
            rows.append((assignment, validated, agreed, (first.latency_ms or 0) + (second.latency_ms or 0)))
        if not rows:
            return []
        Assignment.objects.bulk_create([row[0] for row in rows])
        Judgment.objects.bulk_create(
            [
                Judgment(
                    assignment=assignment,
                    item_id=assignment.item_id,
                    batch_id=assignment.batch_id,
                    annotator_id=version.user_id,
                    track=assignment.batch.track,
                    mode=assignment.batch.mode,
                    chosen_id=validated.chosen,
                    rejected_id=validated.rejected,
                    strength=validated.strength,
                    ranking=validated.ranking,
                    safety_labels=validated.safety_labels,
                    safety_bin=validated.safety_bin,
                    flagged=validated.flagged,
                    position_chosen=validated.position_chosen,
                    rationale=agreed.rationale,
                    time_spent_ms=latency,
                    idempotency_key=f"judge-v{version_id}-item-{assignment.item_id}",
                    guidelines_version=assignment.guidelines_version,
                )
                for assignment, validated, agreed, latency in rows
            ]
        )
        return [row[0].item_id for row in rows]


# --- Triage ---------------------------------------------------------------------------------------------


def _sides_differ(ai: Judgment, human: Judgment) -> bool:
    if ai.mode == Mode.PAIRWISE:
        return ai.chosen_id != human.chosen_id
    return bool(ai.ranking and human.ranking and int(ai.ranking[0]) != int(human.ranking[0]))


def judge_run_triage(*, run_id: int, item_ids: Sequence[int] | None = None, limit: int = 5000) -> int:
    """Send items where the run's judge and the first human disagree to one more human: the item's `wanted`
    goes up by one (never above the run's ceiling), once per run and item. Pairwise: different preferred
    responses; ranking: different top responses. Every item compared is recorded (agreeing ones too), so a
    run looks at an item once; items without a human judgment yet wait for the periodic sweep. Returns the
    number of items raised."""
    run = JudgeRun.objects.select_related("version").get(pk=run_id)
    if not run.triage or run.triage_ceiling is None:
        return 0
    ai = Judgment.objects.filter(annotator_id=run.version.user_id, batch_id=run.batch_id)
    if item_ids is not None:
        ai = ai.filter(item_id__in=list(item_ids))
    decided = TriageDecision.objects.filter(run=run, item=OuterRef("item_id"))
    humans = Judgment.objects.filter(item=OuterRef("item_id"), annotator__kind=UserKind.HUMAN)
    candidates = list(ai.exclude(Exists(decided)).filter(Exists(humans)).order_by("item_id")[:limit])
    raised = 0
    for judgment in candidates:
        first_human = (
            Judgment.objects.filter(item_id=judgment.item_id, annotator__kind=UserKind.HUMAN)
            .order_by("pk")
            .first()
        )
        if first_human is None:
            continue
        raised += item_triage(
            run=run, item_id=judgment.item_id, disagree=_sides_differ(judgment, first_human)
        )
    return raised


def item_triage(*, run: JudgeRun, item_id: int, disagree: bool) -> int:
    """Record a run's comparison of an item with its first human; on disagreement raise the item's `wanted`
    by one under its row lock (the lock the claim and submit services take), at most to the run's ceiling.
    Returns 1 if raised. Once per run and item (checked under the same lock)."""
    assert run.triage_ceiling is not None
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(pk=item_id).first()
        if item is None or TriageDecision.objects.filter(run=run, item_id=item_id).exists():
            return 0
        raise_it = disagree and item.status == ItemStatus.READY and item.wanted < run.triage_ceiling
        if raise_it:
            Item.objects.filter(pk=item_id).update(wanted=F("wanted") + 1)
        TriageDecision.objects.create(
            run=run,
            item_id=item_id,
            disagreed=disagree,
            raised=raise_it,
            wanted_after=item.wanted + (1 if raise_it else 0),
        )
        return 1 if raise_it else 0


def judge_triage_sweep() -> int:
    """Triage for every run that asks for it (human judgments arrive after the judge's)."""
    total = 0
    for run_id in (
        JudgeRun.objects.filter(triage=True).exclude(status=RunStatus.CANCELLED).values_list("pk", flat=True)
    ):
        total += judge_run_triage(run_id=run_id)
    return total
