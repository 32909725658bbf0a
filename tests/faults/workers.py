"""Real Celery workers on a private Redis (tests/faults/infra.py): the Redis the test restarts or stops is
the broker and the cache of the workers, and the broker this test process publishes to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.infra import PrivateRedis
from tests.generation.conftest import Worker


@pytest.fixture
def private_broker(private_redis: PrivateRedis, settings: Any) -> Iterator[PrivateRedis]:
    """Point this process's Celery app (and settings) at the private Redis; restored afterwards."""
    from annotate.celery import app

    def forget_connections() -> None:
        # app.close() drops the connection pool, but the producer pool (used by every publish) is only
        # dropped with it when the connection pool had been created: reset both.
        app.close()
        app.amqp._producer_pool = None

    keys = ("broker_url", "broker_read_url", "broker_write_url")
    old = {key: app.conf[key] for key in keys}
    forget_connections()
    app.conf.update({key: private_redis.url(1) for key in keys})
    settings.CELERY_BROKER_URL = private_redis.url(1)
    try:
        yield private_redis
    finally:
        forget_connections()
        app.conf.update(old)


@pytest.fixture
def start_private_worker(
    worker_env: dict[str, str], private_broker: PrivateRedis, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """`start_private_worker(name, pool="threads", concurrency=8, queues="generation", **env)`: a real
    worker whose broker (db 1) and cache (db 0) are the private Redis. Stopped at teardown."""
    workers: list[Worker] = []

    def start(
        name: str = "w", *, pool: str = "threads", concurrency: int = 8, queues: str = "generation",
        wait: bool = True, **overrides: str,
    ) -> Worker:  # fmt: skip
        env = {
            **worker_env,
            "REDIS_URL": private_broker.url(0),
            "CELERY_BROKER_URL": private_broker.url(1),
            **overrides,
        }
        # The flags of docker-compose.yml's workers (gossip and mingle off: see docs/operations.md).
        worker = Worker(
            name,
            env,
            tmp_path / f"{name}-{len(workers)}.log",
            concurrency,
            pool=pool,
            queues=queues,
            flags=("--without-gossip", "--without-mingle"),
        )
        workers.append(worker.start())
        if wait:
            worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.stop()
        for worker in workers:
            tail = "\n".join(worker.log().splitlines()[-40:])
            print(f"--- worker {worker.name} log tail ---\n{tail}")
