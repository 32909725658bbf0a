"""Endpoint limits shared by all workers: the Redis semaphore, the requests-per-minute window, the
per-response in-flight lease, and the process-local fallback used without Redis."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from annotate.endpoints import limits


@pytest.fixture(params=["redis", "local"])
def limiter(request: pytest.FixtureRequest) -> Any:
    if request.param == "redis":
        request.getfixturevalue("redis_client")  # skips without REDIS_URL; empties the test database
        from django.conf import settings

        return limits.RedisLimits(settings.REDIS_URL)
    return limits.LocalLimits()


def test_the_concurrency_limit_holds_across_many_threads(limiter: Any) -> None:
    held = 0
    peak = 0
    lock = threading.Lock()
    failures: list[object] = []

    def work() -> None:
        nonlocal held, peak
        for _ in range(3):
            slot = limiter.acquire(endpoint_id=1, limit=3, rpm=None, ttl_s=30, wait_s=10)
            if not isinstance(slot, limits.Slot):
                failures.append(slot)
                return
            with lock:
                held += 1
                peak = max(peak, held)
            time.sleep(0.02)
            with lock:
                held -= 1
            limiter.release(slot)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert failures == []
    assert peak == 3  # reached, never exceeded
    assert limiter.active(1) == 0


def test_a_waiter_gets_a_released_slot_quickly(limiter: Any) -> None:
    first = limiter.acquire(endpoint_id=2, limit=1, rpm=None, ttl_s=30, wait_s=0)
    assert isinstance(first, limits.Slot)
    threading.Timer(0.2, limiter.release, args=(first,)).start()
    started = time.monotonic()
    second = limiter.acquire(endpoint_id=2, limit=1, rpm=None, ttl_s=30, wait_s=5)
    assert isinstance(second, limits.Slot)
    assert 0.15 < time.monotonic() - started < 1.0
    limiter.release(second)


def test_no_slot_within_the_wait_says_when_to_come_back(limiter: Any) -> None:
    first = limiter.acquire(endpoint_id=3, limit=1, rpm=None, ttl_s=30, wait_s=0)
    started = time.monotonic()
    refused = limiter.acquire(endpoint_id=3, limit=1, rpm=None, ttl_s=30, wait_s=0.3)
    assert isinstance(refused, limits.NoSlot)
    assert refused.retry_in_s > 0
    assert 0.25 < time.monotonic() - started < 1.5
    limiter.release(first)


def test_a_lease_of_a_killed_worker_expires(limiter: Any) -> None:
    # Acquired and never released, as if the worker holding it died.
    assert isinstance(limiter.acquire(endpoint_id=4, limit=1, rpm=None, ttl_s=0.3, wait_s=0), limits.Slot)
    assert isinstance(limiter.acquire(endpoint_id=4, limit=1, rpm=None, ttl_s=30, wait_s=0), limits.NoSlot)
    slot = limiter.acquire(endpoint_id=4, limit=1, rpm=None, ttl_s=30, wait_s=2)
    assert isinstance(slot, limits.Slot)


def test_requests_per_minute_are_limited(limiter: Any) -> None:
    for _ in range(2):
        slot = limiter.acquire(endpoint_id=5, limit=10, rpm=2, ttl_s=30, wait_s=0)
        assert isinstance(slot, limits.Slot)
        limiter.release(slot)
    refused = limiter.acquire(endpoint_id=5, limit=10, rpm=2, ttl_s=30, wait_s=0.5)
    assert isinstance(refused, limits.NoSlot)
    assert 55 < refused.retry_in_s <= 60  # when the oldest request leaves the window
    other = limiter.acquire(endpoint_id=6, limit=10, rpm=2, ttl_s=30, wait_s=0)
    assert isinstance(other, limits.Slot)  # limits are per endpoint


def test_a_refused_slot_does_not_use_up_request_budget(limiter: Any) -> None:
    held = limiter.acquire(endpoint_id=7, limit=1, rpm=2, ttl_s=30, wait_s=0)
    for _ in range(5):
        assert isinstance(limiter.acquire(endpoint_id=7, limit=1, rpm=2, ttl_s=30, wait_s=0), limits.NoSlot)
    limiter.release(held)
    assert isinstance(limiter.acquire(endpoint_id=7, limit=1, rpm=2, ttl_s=30, wait_s=0), limits.Slot)


def test_a_holder_gets_one_slot_at_a_time(limiter: Any) -> None:
    # The second delivery of the same response is told "busy" even though slots are free.
    first = limiter.acquire(endpoint_id=10, limit=5, rpm=None, ttl_s=30, wait_s=0, holder="response:1")
    assert isinstance(first, limits.Slot)
    assert isinstance(
        limiter.acquire(endpoint_id=10, limit=5, rpm=None, ttl_s=30, wait_s=1, holder="response:1"),
        limits.Busy,
    )
    other = limiter.acquire(endpoint_id=10, limit=5, rpm=None, ttl_s=30, wait_s=0, holder="response:2")
    assert isinstance(other, limits.Slot)
    limiter.release(first)
    again = limiter.acquire(endpoint_id=10, limit=5, rpm=None, ttl_s=30, wait_s=0, holder="response:1")
    assert isinstance(again, limits.Slot)


def test_a_holder_s_lease_expires(limiter: Any) -> None:
    limiter.acquire(endpoint_id=11, limit=5, rpm=None, ttl_s=0.2, wait_s=0, holder="response:1")
    time.sleep(0.3)
    slot = limiter.acquire(endpoint_id=11, limit=5, rpm=None, ttl_s=30, wait_s=0, holder="response:1")
    assert isinstance(slot, limits.Slot)
