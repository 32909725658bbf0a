"""A judging run through a real Celery worker (`-P threads`) on the real Redis broker, against the stub
answering as a judge, with transient faults and malformed answers injected."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from annotate.batches.models import Item
from annotate.judges.models import Judge, JudgeRun, Verdict, VerdictStatus
from annotate.judges.services import judge_run_start
from annotate.judgments.models import Judgment
from tests import factories
from tests.generation.conftest import Worker, start_worker, worker_env  # noqa: F401 - shared fixtures
from tests.judges.conftest import varied_batch
from tests.stub_openai import JudgeRequest, JudgeScript, Reply, StubOpenAI

pytestmark = pytest.mark.celery_worker


def test_a_run_through_a_real_worker_stores_every_verdict_once_despite_faults(
    start_worker: Callable[..., Worker],  # noqa: F811
    stub: StubOpenAI,
) -> None:
    rng = random.Random(3)
    malformed: set[str] = set()
    faults: Counter[str] = Counter()

    def decide(request: JudgeRequest) -> Any:
        call = request.call
        if call.attempt == 1 and not request.retry:
            roll = rng.random()
            if roll < 0.15:
                faults["503"] += 1
                return Reply.error(503)
            if roll < 0.25:
                faults["malformed"] += 1
                malformed.add(str(call.request_id))
                return '{"preferred": '
        return None

    stub.handler = JudgeScript(decide)
    stub.latency_s = 0.02
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=4, timeout_s=5)
    config = factories.SamplingConfigFactory(endpoint=endpoint, label="judge-worker-t0", temperature=0.0)
    judge = Judge.objects.create(name="worker-judge", sampling_config=config)
    batch = varied_batch(40)
    worker = start_worker("judge", concurrency=6, JUDGE_CHUNK_ITEMS="3")
    run = judge_run_start(judge_id=judge.pk, batch_id=batch.pk)

    deadline = time.monotonic() + 120
    while JudgeRun.objects.get(pk=run.pk).status != "done":
        assert time.monotonic() < deadline, Counter(
            Verdict.objects.filter(run=run).values_list("status", flat=True)
        )
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]
        time.sleep(0.2)

    assert Counter(Verdict.objects.filter(run=run).values_list("status", flat=True)) == {VerdictStatus.OK: 80}
    completions = stub.completions()
    for verdict in Verdict.objects.filter(run=run):
        rid = str(verdict.request_id)
        # One usable answer per verdict; a malformed first answer was asked again once.
        assert completions[rid] == (2 if rid in malformed else 1), rid
    assert faults["503"] > 3 and faults["malformed"] > 3, faults
    assert Verdict.objects.filter(run=run, attempts=2).count() == faults["503"]
    assert Judgment.objects.filter(batch=batch, annotator=run.version.user).count() == 40
    assert stub.peak_concurrency() <= 4
    assert set(Item.objects.filter(batch=batch).values_list("wanted", "taken")) == {(1, 0)}
