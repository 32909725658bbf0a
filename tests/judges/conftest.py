"""Judge fixtures: the stub answering as a judge, a judge on it, batches with human judgments, and a driver
that runs a run's chunks in process (the Celery worker test runs them through a real worker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from annotate.assignments import services as assignments
from annotate.batches.models import Batch, Item, Response
from annotate.judges import services, tasks
from annotate.judges.models import Judge, JudgeRun, Verdict, VerdictStatus
from annotate.judgments.models import Judgment
from annotate.judgments.services import JudgmentInput, judgment_submit
from tests import factories
from tests.endpoints.conftest import (  # noqa: F401 - fixtures shared with the endpoint tests
    allow_loopback,
    connect_guard,
    fake_dns,
    guarded_stub,
    stub,
)
from tests.stub_openai import JudgeScript, StubOpenAI


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Starting a run enqueues its fan-out task on commit; here the chunks are driven by hand."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.judge_run_enqueue, "delay", lambda run_id: sent.append(run_id))
    return sent


@pytest.fixture
def script(stub: StubOpenAI) -> JudgeScript:  # noqa: F811 - the shared fixture
    judge_script = JudgeScript()
    stub.handler = judge_script
    return judge_script


@pytest.fixture
def judge(
    stub: StubOpenAI,  # noqa: F811 - the shared fixture
    allow_loopback: None,  # noqa: F811
    redis_client: Any,
    script: JudgeScript,
) -> Judge:
    endpoint = factories.ModelEndpointFactory(
        base_url=stub.base_url, model="judge-70b", timeout_s=5.0, max_concurrency=8
    )
    config = factories.SamplingConfigFactory(endpoint=endpoint, label="judge-t0", temperature=0.0)
    return Judge.objects.create(name="judgy", sampling_config=config)


def varied_batch(items: int, **fields: Any) -> Batch:
    """A ready batch whose responses differ in length: slot 0 is short, slot 1 long (K=2), so the
    stub's default judge prefers slot 1, whichever order it is shown in."""
    batch = factories.BatchFactory(**fields)
    for n in range(items):
        item = factories.ready_item(batch, n)
        for response in item.responses.all():
            Response.objects.filter(pk=response.pk).update(
                content=f"Answer {response.slot} to {n}. " + "More detail. " * (response.slot * 3)
            )
    return batch


def drive(run: JudgeRun, *, rounds: int = 6) -> None:
    """Deliver every chunk of the run until nothing is pending (each round is one delivery per chunk)."""
    for _ in range(rounds):
        pending = list(
            Verdict.objects.filter(run=run, status=VerdictStatus.PENDING)
            .order_by("item_id", "order")
            .values_list("pk", flat=True)
        )
        if not pending:
            return
        for start in range(0, len(pending), 4):
            services.judge_chunk(
                run_id=run.pk, verdict_ids=pending[start : start + 4], deadline=time.monotonic() + 60
            )


def human_judges(
    item: Item, annotator: Any, *, pick_slot: int, strength: str = "better", **extra: Any
) -> Judgment:
    """`annotator` claims `item` (the next open one of its batch) and prefers the response in `pick_slot`."""
    assignment = assignments.assignment_claim_next(annotator=annotator, batch_id=item.batch_id)
    assert assignment is not None and assignment.item_id == item.pk, "claimed another item"
    chosen = item.responses.get(slot=pick_slot).pk
    result = judgment_submit(
        annotator=annotator,
        assignment_id=assignment.pk,
        data=JudgmentInput(
            idempotency_key=f"human-{annotator.pk}-{item.pk}", chosen=chosen, strength=strength, **extra
        ),
    )
    return result.judgment


Drive = Callable[[JudgeRun], None]
