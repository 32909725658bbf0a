"""A worker whose database connections die (what a PostgreSQL restart does to them) recovers by itself:
the failed task is retried on a new connection, not on the dead one for ever."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from annotate.batches.models import Batch, BatchStatus, Response, ResponseStatus
from annotate.batches.services import batch_start_generation
from tests import factories
from tests.generation.conftest import Worker, draft_batch, make_configs
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.celery_worker


def wait_open(batch: Batch, worker: Worker, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status == BatchStatus.OPEN:
            return
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]
        time.sleep(0.2)
    counts = Counter(Response.objects.filter(item__batch=batch).values_list("status", flat=True))
    raise AssertionError(f"batch not open after {timeout}s: {dict(counts)}\n{worker.log()[-3000:]}")


def test_a_worker_recovers_from_its_database_connections_dying(
    start_worker: Callable[..., Worker], stub: StubOpenAI
) -> None:
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=4)
    configs = make_configs(endpoint, 2)
    first, second = draft_batch(4, configs), draft_batch(4, configs)
    worker = start_worker("db", concurrency=4, GENERATION_BACKOFF_BASE_MS="100")
    batch_start_generation(batch_id=first.pk)
    wait_open(first, worker)  # every worker thread now holds an open connection

    # Kill the worker's sessions (only those of this test database, never another's).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        killed = cursor.fetchone()[0]
    assert killed >= 1

    batch_start_generation(batch_id=second.pk)
    wait_open(second, worker, timeout=60)
    assert set(Response.objects.filter(item__batch=second).values_list("status", flat=True)) == {
        ResponseStatus.OK
    }
