"""Generation through real Celery workers (`-P threads`) on the real Redis broker, against the stub.

The workers are subprocesses pointed at pytest-django's test database; the data they read is committed
(transactional_db). Every worker is stopped at teardown, killed if it lingers.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

import pytest

from annotate.batches.models import Batch, BatchStatus, ItemStatus, Response, ResponseStatus
from annotate.batches.services import batch_start_generation
from tests import factories
from tests.generation.conftest import Worker, draft_batch, make_configs
from tests.stub_openai import Call, Reply, StubOpenAI

pytestmark = pytest.mark.celery_worker


def wait_for_batch(batch: Batch, workers: list[Worker], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status == BatchStatus.OPEN:
            return
        for worker in workers:
            if worker.proc is not None and worker.proc.poll() is not None:
                raise AssertionError(f"worker {worker.name} died:\n{worker.log()[-3000:]}")
        time.sleep(0.2)
    counts = Counter(Response.objects.filter(item__batch=batch).values_list("status", flat=True))
    raise AssertionError(f"batch not open after {timeout}s: responses {dict(counts)}")


def status_counts(batch: Batch) -> Counter[str]:
    return Counter(Response.objects.filter(item__batch=batch).values_list("status", flat=True))


class Faults:
    """30% of requests fail with a mix of transient faults; a response fails at most 3 times in a row,
    so with GENERATION_MAX_ATTEMPTS=6 every response must end ok. Timeouts are the rarer kind: each holds
    an endpoint slot for the whole timeout."""

    KINDS = ("429", "500", "503", "reset", "429", "500", "503", "reset", "timeout")

    def __init__(self, rate: float = 0.3, seed: int = 7) -> None:
        self.rate = rate
        self.random = random.Random(seed)
        self.injected: Counter[str] = Counter()

    def __call__(self, call: Call) -> Reply | None:
        if call.attempt > 3 or self.random.random() >= self.rate:
            return None
        kind = self.KINDS[self.random.randrange(len(self.KINDS))]
        self.injected[kind] += 1
        return {
            "429": Reply.rate_limited("1"),
            "500": Reply.error(500),
            "503": Reply.error(503),
            "reset": Reply.reset(),
            # Answers after the endpoint's 1.5 s timeout. The timeout is far above the stub's 10 ms, so
            # that a busy machine does not turn a delivered answer into a client timeout (which would
            # be generated again, and counted by the stub as a duplicate).
            "timeout": Reply.slow(2.0),
        }[kind]


def test_a_batch_with_injected_faults_ends_with_every_response_ok_exactly_once(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    faults = Faults()
    stub.handler = faults
    stub.latency_s = 0.01
    endpoint = factories.ModelEndpointFactory(
        base_url=stub.base_url, model="stub-13b", max_concurrency=8, timeout_s=1.5
    )
    batch = draft_batch(200, make_configs(endpoint, 2))
    worker = start_worker("faults", concurrency=8)
    started = time.monotonic()
    batch_start_generation(batch_id=batch.pk)
    wait_for_batch(batch, [worker], timeout=120)
    elapsed = time.monotonic() - started

    assert status_counts(batch) == {ResponseStatus.OK: 400}
    completions = stub.completions()
    request_ids = {
        str(r) for r in Response.objects.filter(item__batch=batch).values_list("request_id", flat=True)
    }
    assert set(completions) == request_ids
    assert set(completions.values()) == {1}, "a response was generated twice"
    assert sum(faults.injected.values()) > 100 and set(faults.injected) == set(Faults.KINDS)
    assert not batch.items.exclude(status=ItemStatus.READY).exists()
    assert batch.opened_at is not None
    retried = Response.objects.filter(item__batch=batch, attempts__gt=1).count()
    assert retried > 80
    # (No check of the stub's peak here: a timed-out request frees its slot while the stub still works on
    # it. The concurrency test below checks the limit.)
    print(f"400 responses in {elapsed:.1f}s; faults injected {dict(faults.injected)}; {retried} retried")


def test_a_killed_worker_s_tasks_are_redelivered_and_stored_once(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    # Short limits so that Redis redelivers unacknowledged tasks quickly: visibility 8 s (settings want
    # at least twice the hard limit), soft 3 s < hard 4 s, backoffs (2 s) + hard limit within visibility.
    # A delivery works to the soft limit minus 1 s, so requests of 1.2 s still fit.
    visibility = 8.0
    limits = {
        "CELERY_TASK_SOFT_TIME_LIMIT": "3",
        "CELERY_TASK_TIME_LIMIT": "4",
        "CELERY_VISIBILITY_TIMEOUT": str(int(visibility)),
    }
    stub.latency_s = 1.2
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=16, timeout_s=1.8)
    batch = draft_batch(6, make_configs(endpoint, 2))
    first = start_worker("doomed", concurrency=8, **limits)
    batch_start_generation(batch_id=batch.pk)
    assert stub.wait_until(lambda s: s.active() >= 6, timeout=20), "requests never got in flight"
    first.kill()
    killed_at = time.monotonic()
    in_flight = {r.request_id for r in stub.records}
    arrival = min(r.arrival for r in stub.records)
    assert status_counts(batch) == {ResponseStatus.PENDING: 12}

    stub.latency_s = 0.05
    # Redis hands unacknowledged messages back once they are older than the visibility timeout; a new
    # worker restores them when it starts polling.
    time.sleep(max(0.0, arrival + visibility + 0.5 - time.monotonic()))
    second = start_worker("rescuer", concurrency=8, **limits)
    wait_for_batch(batch, [second], timeout=90)

    assert status_counts(batch) == {ResponseStatus.OK: 12}
    completions = stub.completions()
    for response in Response.objects.filter(item__batch=batch):
        rid = str(response.request_id)
        # Stored once, with the content of one of the stub's completed answers for this response.
        delivered = [r.content for r in stub.records if r.request_id == rid and r.outcome == "ok"]
        assert response.content in delivered
        if rid in in_flight:
            assert response.attempts == 2, "the killed delivery counts as an attempt, the redelivery succeeds"
            assert sum(1 for r in stub.records if r.request_id == rid) == 2
        else:
            assert response.attempts == 1
    assert len(in_flight) >= 6
    assert sum(completions.values()) >= 12
    print(f"killed {len(in_flight)} in flight; all stored {time.monotonic() - killed_at:.1f}s after the kill")


def test_a_worker_killed_in_the_middle_of_chunks_charges_only_the_requests_in_flight(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    # 32 responses on a limit of 2: chunks of 4 (ceil(32 / (4 x 2))), generated one after another. The
    # worker is killed once some responses are stored and two are in flight: the chunks come back, the
    # stored ones are skipped, the two in flight are tried again (their second attempt) and the ones no
    # request had reached yet are generated with their first.
    visibility = 8.0
    limits = {
        "CELERY_TASK_SOFT_TIME_LIMIT": "3",
        "CELERY_TASK_TIME_LIMIT": "4",
        "CELERY_VISIBILITY_TIMEOUT": str(int(visibility)),
    }
    stub.latency_s = 1.0
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=2, timeout_s=1.8)
    batch = draft_batch(16, make_configs(endpoint, 2))
    first = start_worker("doomed", concurrency=8, **limits)
    batch_start_generation(batch_id=batch.pk)
    assert stub.wait_until(
        lambda s: sum(1 for r in s.records if r.outcome == "ok") >= 2 and s.active() >= 2, timeout=30
    ), "no chunk got going"
    first.kill()
    finished = {r.request_id for r in stub.records if r.outcome == "ok"}
    in_flight = {r.request_id for r in stub.records if r.finish is None}
    arrival = min(r.arrival for r in stub.records)
    stored = status_counts(batch)[ResponseStatus.OK]
    assert 2 <= stored < 32 and len(in_flight) == 2

    stub.latency_s = 0.02
    time.sleep(max(0.0, arrival + visibility + 0.5 - time.monotonic()))
    second = start_worker("rescuer", concurrency=8, **limits)
    wait_for_batch(batch, [second], timeout=90)

    assert status_counts(batch) == {ResponseStatus.OK: 32}
    for response in Response.objects.filter(item__batch=batch):
        rid = str(response.request_id)
        delivered = [r.content for r in stub.records if r.request_id == rid and r.outcome == "ok"]
        assert response.content in delivered
        requests = sum(1 for r in stub.records if r.request_id == rid)
        if rid in in_flight:
            assert (response.attempts, requests) == (2, 2)
        else:
            assert (response.attempts, requests) == (1, 1), "charged or called without being in flight"
    assert finished  # some responses were done before the kill and were not asked for again


def test_the_endpoint_concurrency_limit_holds_across_two_workers(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    stub.latency_s = 0.15
    limited = factories.ModelEndpointFactory(base_url=stub.endpoint_url("limited"), max_concurrency=3)
    other = factories.ModelEndpointFactory(base_url=stub.endpoint_url("other"), max_concurrency=2)
    batch = draft_batch(20, [*make_configs(limited, 1), *make_configs(other, 1)])
    workers = [start_worker(f"w{i}", concurrency=8, wait=False) for i in range(2)]
    for worker in workers:
        worker.wait_ready()
    batch_start_generation(batch_id=batch.pk)
    wait_for_batch(batch, workers, timeout=90)

    assert status_counts(batch) == {ResponseStatus.OK: 40}
    assert stub.peak_concurrency("/limited/v1") == 3  # reached, never exceeded
    assert stub.peak_concurrency("/other/v1") == 2
    assert stub.peak_concurrency() <= 5
    # Both worker processes took part (the limit is not just one process's thread count). Tasks are
    # chunks: 20 responses per endpoint in chunks of ceil(20 / (4 x limit)), so 10 for "limited" and 7
    # for "other", plus the fan-out task (more if a chunk was re-queued).
    done = [worker.tasks_done() for worker in workers]
    assert all(n > 0 for n in done) and sum(done) >= 1 + 10 + 7, done
