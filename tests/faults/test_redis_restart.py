"""Redis restarted while generations run through a real worker: the worker reconnects by itself (it does
not exit), every response ends ok or failed, none is generated twice.

The private Redis is the worker's broker and its cache (endpoint slots) at once, as in docker-compose.yml;
it keeps its append-only file over the restart, as production's does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from annotate.batches.models import Batch, BatchStatus, Response, ResponseStatus
from annotate.batches.services import batch_start_generation
from tests import factories
from tests.faults.infra import PrivateRedis
from tests.generation.conftest import Worker, draft_batch, make_configs
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.celery_worker


def statuses(batch: Batch) -> Counter[str]:
    return Counter(Response.objects.filter(item__batch=batch).values_list("status", flat=True))


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_redis_restarted_while_generating(
    pool: str,
    start_private_worker: Callable[..., Worker],
    private_broker: PrivateRedis,
    stub: StubOpenAI,
) -> None:
    stub.latency_s = 0.15
    endpoint = factories.ModelEndpointFactory(base_url=stub.base_url, max_concurrency=8, timeout_s=5)
    batch = draft_batch(40, make_configs(endpoint, 2))
    worker = start_private_worker(
        f"redis-{pool}", pool=pool, concurrency=8 if pool == "threads" else 3, GENERATION_CHUNK_SIZE="4"
    )
    batch_start_generation(batch_id=batch.pk)
    assert stub.wait_until(lambda s: len(s.records) >= 10, timeout=30), "generation never started"

    private_broker.restart(down_s=1.5)
    restarted = time.monotonic()

    deadline = restarted + 60
    while time.monotonic() < deadline:
        assert worker.proc is not None
        if worker.proc.poll() is not None:
            pytest.fail(f"the worker exited on the Redis restart:\n{worker.log()[-4000:]}")
        batch.refresh_from_db()
        if batch.status != BatchStatus.GENERATING and not statuses(batch).get(ResponseStatus.PENDING):
            break
        time.sleep(0.3)
    counts = statuses(batch)
    assert set(counts) <= {ResponseStatus.OK, ResponseStatus.FAILED}, counts
    assert sum(counts.values()) == 80
    completions = stub.completions()
    assert all(n == 1 for n in completions.values()), "a response was generated twice"
    for response in Response.objects.filter(item__batch=batch, status=ResponseStatus.OK):
        assert completions.get(str(response.request_id)) == 1
    assert worker.proc.poll() is None, "the worker must survive the restart"
    print(f"{pool}: {dict(counts)} {time.monotonic() - restarted:.1f}s after the restart")


def test_closing_a_detached_channel_with_unacknowledged_messages_does_not_raise(
    private_redis: PrivateRedis,
) -> None:
    """The state the worker's consumer met in bench/soak.py when Redis restarted: the old connection's
    channel still holds a delivered, unacknowledged message and its transport is detached (`client` is
    None). kombu then raised AttributeError("'NoneType' object has no attribute 'hostname'") while trying
    to restore the message, and Celery exited the worker ("Unrecoverable error"). annotate/celery.py skips
    that restore; the message stays in Redis' unacked set for redelivery."""
    import kombu

    import annotate.celery  # noqa: F401 - installs the guard

    with kombu.Connection(private_redis.url(3)) as conn:
        queue = conn.SimpleQueue("detached")
        queue.put({"n": 1})
        queue.get(timeout=5)  # delivered, not acknowledged
        channel = conn.default_channel
        channel.connection.client = None
        channel._pool = None  # as on a channel that only ever used its asynchronous client
        channel.close()
    import redis

    assert redis.Redis.from_url(private_redis.url(3)).hlen("unacked") == 1
