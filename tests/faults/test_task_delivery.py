"""How tasks meet transactions, redeliveries and shutdowns, with real workers.

- a task enqueued inside a transaction that rolls back never runs; one enqueued on commit sees its rows;
- a task delivered twice (the broker's visibility timeout forced shorter than the run) stores its result
  once;
- SIGTERM to a worker (a warm shutdown) finishes the task it is running before the process exits.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import transaction

from annotate.batches.models import Batch, BatchStatus, Response, ResponseStatus
from annotate.batches.services import batch_start_generation
from tests import factories
from tests.faults.infra import PrivateRedis
from tests.generation.conftest import Worker, draft_batch, make_configs
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.celery_worker


class Rollback(Exception):
    pass


def statuses(batch: Batch) -> Counter[str]:
    return Counter(Response.objects.filter(item__batch=batch).values_list("status", flat=True))


def wait_open(batch: Batch, worker: Worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status == BatchStatus.OPEN:
            return
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"batch not open after {timeout}s: {dict(statuses(batch))}")


def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs_one_on_commit_sees_its_rows(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=4)
    configs = make_configs(endpoint, 2)
    rolled_back = draft_batch(3, configs)
    committed = draft_batch(3, configs)
    worker = start_worker("tx", concurrency=4)

    with pytest.raises(Rollback), transaction.atomic():
        batch_start_generation(batch_id=rolled_back.pk)  # creates responses, enqueues on commit
        assert statuses(rolled_back) == {ResponseStatus.PENDING: 6}
        raise Rollback
    batch_start_generation(batch_id=committed.pk)
    wait_open(committed, worker)

    # The committed batch's task found its freshly written responses; the rolled-back one never ran
    # (its responses do not exist, and the stub saw no request for them).
    assert statuses(committed) == {ResponseStatus.OK: 6}
    rolled_back.refresh_from_db()
    assert rolled_back.status == BatchStatus.DRAFT and not statuses(rolled_back)
    time.sleep(1.0)  # a task sent by mistake would have reached the idle worker by now
    assert len(stub.completions()) == 6
    assert worker.tasks_done() >= 2  # the fan-out and the chunk(s) of the committed batch


def test_a_task_delivered_twice_stores_its_result_once(
    start_private_worker: Callable[..., Worker], private_broker: PrivateRedis, stub: StubOpenAI
) -> None:
    # Visibility 1 s, requests 2.5 s: Redis hands each running chunk to a second consumer mid-run. The
    # settings refuse a visibility timeout this short; the worker's settings module forces it.
    stub.latency_s = 2.5
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=8, timeout_s=10)
    batch = draft_batch(2, make_configs(endpoint, 2))
    overrides = {"DJANGO_SETTINGS_MODULE": "tests.faults.short_visibility_settings"}
    first = start_private_worker("first", concurrency=4, **overrides)
    second = start_private_worker("second", concurrency=4, **overrides)

    batch_start_generation(batch_id=batch.pk)
    wait_open(batch, first, timeout=60)

    assert statuses(batch) == {ResponseStatus.OK: 4}
    completions = stub.completions()
    assert len(completions) == 4 and set(completions.values()) == {1}, completions
    requests = Counter(r.request_id for r in stub.records)
    assert set(requests.values()) == {1}, f"a redelivery called the endpoint again: {requests}"
    for response in Response.objects.filter(item__batch=batch):
        assert response.attempts == 1
    # The redeliveries happened: without them the workers run 3 tasks (the fan-out and one chunk per item,
    # each item's two responses together); a second delivery of a running chunk finds its lease held
    # ("busy"), re-queues itself, and finds the responses stored when it comes back.
    runs = first.tasks_done() + second.tasks_done()
    assert runs > 3, f"no task was delivered twice ({runs} runs)"


def test_sigterm_lets_the_worker_finish_its_current_task(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    stub.latency_s = 2.0
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=4, timeout_s=10)
    batch = draft_batch(2, make_configs(endpoint, 2))
    worker = start_worker("graceful", concurrency=4)
    batch_start_generation(batch_id=batch.pk)
    assert stub.wait_until(lambda s: s.active() >= 2, timeout=20), "requests never got in flight"

    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)  # the main process only: a warm shutdown
    worker.proc.wait(timeout=30)

    assert worker.proc.returncode == 0, worker.log()[-3000:]
    in_flight = {r.request_id for r in stub.records}
    done = {str(r.request_id) for r in Response.objects.filter(item__batch=batch, status=ResponseStatus.OK)}
    assert in_flight <= done, "a task in flight at SIGTERM was not finished"
