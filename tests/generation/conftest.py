"""Generation fixtures: the stub (from tests/endpoints), batches waiting for generation, real workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from annotate.batches.models import Batch, BatchStatus
from annotate.batches.services import NewItem, items_add
from annotate.endpoints.models import ModelEndpoint, SamplingConfig
from tests import factories
from tests.endpoints.conftest import (  # noqa: F401 - fixtures shared with the endpoint tests
    allow_loopback,
    connect_guard,
    fake_dns,
    guarded_stub,
    stub,
)

ROOT = Path(__file__).resolve().parent.parent.parent
CELERY = ROOT / ".venv" / "bin" / "celery"


def make_configs(endpoint: ModelEndpoint, n: int, **fields: Any) -> list[SamplingConfig]:
    return [
        factories.SamplingConfigFactory(
            endpoint=endpoint, label=f"{endpoint.name}-t{i}", temperature=0.2 + 0.3 * i, **fields
        )
        for i in range(n)
    ]


def draft_batch(
    items: int, configs: list[SamplingConfig], *, k: int = 2, pregenerated: int = 0, **fields: Any
) -> Batch:
    """A draft batch with `items` imported prompts (the first `pregenerated` with all K responses)."""
    mode = "pairwise" if k == 2 else "ranking"
    batch = factories.BatchFactory(status=BatchStatus.DRAFT, mode=mode, responses_per_item=k, **fields)
    batch.sampling_configs.set(configs)
    new = [
        NewItem(
            conversation=factories.conversation(n),
            responses=[(f"imported-{s}", f"Imported answer {s} to {n}") for s in range(k)]
            if n < pregenerated
            else (),
        )
        for n in range(items)
    ]
    items_add(batch=batch, new_items=new)
    return batch


class Worker:
    """A real `celery worker` on the generation queue, in its own process group, logging to a file."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 8,
        *,
        pool: str = "threads",
        queues: str = "generation",
        flags: tuple[str, ...] = ("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ) -> None:
        self.name = f"{name}@{socket.gethostname()}"
        self.env, self.log_path, self.concurrency = env, log_path, concurrency
        self.pool, self.queues, self.flags = pool, queues, flags
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self._log = self.log_path.open("wb")
        args = [
            str(CELERY), "-A", "annotate", "worker", "-Q", self.queues, "-P", self.pool,
            "-c", str(self.concurrency), "-n", self.name, *self.flags, "-l", "WARNING",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker answers a control ping (it logs warnings only: no "ready" line to wait for)."""
        from annotate.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            if app.control.ping([self.name], timeout=0.3):
                return
        raise RuntimeError(f"worker {self.name} not ready after {timeout}s:\n{self.log()}")

    def tasks_done(self) -> int:
        """Tasks this worker has run (its remote-control stats)."""
        from annotate.celery import app

        stats = app.control.inspect([self.name], timeout=2).stats() or {}
        return sum((stats.get(self.name) or {}).get("total", {}).values())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no acknowledgement, no message restored."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM: a warm shutdown (running tasks finish, unacknowledged messages go back)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            self._log.close()


@pytest.fixture
def worker_env(transactional_db: None, redis_client: Any) -> dict[str, str]:
    """Environment for worker subprocesses: the test database (pytest-django's test_ name), this test
    run's Redis databases (emptied first, broker included, so no stale task is picked up), the stub's
    127.0.0.1 allowed, and short backoffs."""
    import redis
    from django.conf import settings
    from django.db import connection

    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://") or connection.vendor != "postgresql":
        pytest.skip("real-worker tests need PostgreSQL and a Redis broker (DATABASE_URL, CELERY_BROKER_URL)")
    redis.Redis.from_url(broker).flushdb()
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": broker,
        "ALLOWED_ENDPOINT_HOSTS": "127.0.0.1",
        "GENERATION_BACKOFF_BASE_MS": "200",
        "GENERATION_BACKOFF_MAX_S": "2",
        "GENERATION_RETRY_AFTER_MAX_S": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "tests.generation.worker_settings",
        # Production-like: no query log kept in memory (DEBUG), warnings only.
        "DEBUG": "false",
        "SECRET_KEY": "generation-tests-" + "k" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start real workers: `start_worker("w1", concurrency=8, **env_overrides)`. All are stopped (and the
    process groups killed) at teardown, also when the test fails; their logs are printed on failure."""
    workers: list[Worker] = []

    def start(name: str = "gen", concurrency: int = 8, wait: bool = True, **overrides: str) -> Worker:
        worker = Worker(
            name, {**worker_env, **overrides}, tmp_path / f"{name}-{len(workers)}.log", concurrency
        )
        workers.append(worker.start())
        if wait:
            worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.terminate()  # all at once: their shutdowns overlap
        for worker in workers:
            worker.stop()
        for worker in workers:
            tail = "\n".join(worker.log().splitlines()[-30:])
            print(f"--- worker {worker.name} log tail ---\n{tail}")
