"""Per-endpoint limits that hold across every worker process: concurrency and requests per minute.

With REDIS_URL set (production, tests) the state lives in Redis:

- concurrency: a sorted set of leases scored by their expiry time (Redis server time, so worker clocks do
  not matter). Acquiring is one Lua script: drop expired leases, count, add ours if below the limit. A
  worker killed with its lease held cannot leak the slot: the lease expires (its TTL outlasts the longest
  delivery the task allows, see services.py). Releasing removes the lease and pushes a wake-up onto a
  short list that waiting threads block on (BLPOP with a small timeout), so a freed slot is taken within
  milliseconds without polling Redis in a loop.
- the lease is named after its holder (the response being generated): a second delivery of the same
  response while the first holds a slot is told "busy" instead of calling the endpoint a second time.
- requests per minute: a sliding-window log in a sorted set (one member per request start in the last
  60 s), checked and appended in the same script as the concurrency slot, so a request that gets no slot
  never uses up budget. When the window is full the script answers how long until its oldest entry ages
  out.

Without Redis (the laptop default: one worker process on the filesystem broker) the same interface is
backed by process-local locks, which is exact for a single worker process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from functools import cache

from django.conf import settings

KEY_PREFIX = "gen"
# How long a release keeps trying while Redis is unreachable (a restart takes a second or two).
RELEASE_PATIENCE_S = 20.0

# KEYS: slots zset, rpm zset. ARGV: holder, limit, ttl_ms, rpm (0 = none), unique request token.
# Returns 0 when acquired; -2 when the holder already has a lease (another delivery of the same work);
# -1 when every concurrency slot is taken (a release will wake the waiter); else a hint in ms: how long
# until the request budget frees up.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return -2
end
if redis.call('ZCARD', KEYS[1]) >= limit then
  return -1
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
  if redis.call('ZCARD', KEYS[2]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + 60000 - now)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], 61000)
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl + 60000)
return 0
"""

# KEYS: slots zset, wake-up list. ARGV: token, limit.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[2], 60000)
return removed
"""


@dataclass(frozen=True)
class Slot:
    """A held concurrency slot (and, when the endpoint has one, a request counted against its RPM)."""

    endpoint_id: int
    token: str


@dataclass(frozen=True)
class NoSlot:
    """No slot within the wait: `retry_in_s` is a fair guess of when to come back."""

    retry_in_s: float


@dataclass(frozen=True)
class Busy:
    """The holder already has a lease: another delivery of the same work is running."""


class RedisLimits:
    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._release = self.redis.register_script(_RELEASE)

    @staticmethod
    def _keys(endpoint_id: int) -> tuple[str, str, str]:
        base = f"{KEY_PREFIX}:ep:{endpoint_id}"
        return f"{base}:slots", f"{base}:rpm", f"{base}:wake"

    def acquire(
        self,
        *,
        endpoint_id: int,
        limit: int,
        rpm: int | None,
        ttl_s: float,
        wait_s: float,
        holder: str | None = None,
    ) -> Slot | NoSlot | Busy:
        slots, window, wake = self._keys(endpoint_id)
        token = holder or uuid.uuid4().hex
        args = [token, limit, int(ttl_s * 1000), rpm or 0, f"{token}:{uuid.uuid4().hex}"]
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            hint_ms = int(self._acquire(keys=[slots, window], args=args))
            if hint_ms == 0:
                return Slot(endpoint_id=endpoint_id, token=token)
            if hint_ms == -2:
                return Busy()
            remaining = deadline - time.monotonic()
            if hint_ms > 0 and hint_ms / 1000 > remaining:
                return NoSlot(retry_in_s=hint_ms / 1000)
            if remaining <= 0:
                return NoSlot(retry_in_s=1.0)
            if hint_ms > 0:
                time.sleep(hint_ms / 1000)
                continue
            # Block until a release pushes a wake-up, at most 0.2 s: a lease that expires (a killed
            # worker's) pushes nothing, so the wait must end by itself now and then.
            self.redis.blpop([wake], timeout=min(remaining, 0.2))

    def release(self, slot: Slot) -> None:
        """Give the slot back. A release that cannot reach Redis (restarting) is tried again for up to
        RELEASE_PATIENCE_S: a lease left behind would keep its slot taken until its TTL (the task's hard
        time limit, minutes), and with every slot of an endpoint leaked that way, generation stalls."""
        import redis

        slots, _window, wake = self._keys(slot.endpoint_id)
        deadline = time.monotonic() + RELEASE_PATIENCE_S
        pause = 0.1
        while True:
            try:
                self._release(keys=[slots, wake], args=[slot.token, 64])
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def active(self, endpoint_id: int) -> int:
        slots, _window, _wake = self._keys(endpoint_id)
        now_ms = int(time.time() * 1000)
        return int(self.redis.zcount(slots, now_ms, "+inf"))


class LocalLimits:
    """The same interface for one process (no Redis): exact as long as one worker process runs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[int, dict[str, float]] = {}
        self._starts: dict[int, deque[float]] = {}

    def acquire(
        self,
        *,
        endpoint_id: int,
        limit: int,
        rpm: int | None,
        ttl_s: float,
        wait_s: float,
        holder: str | None = None,
    ) -> Slot | NoSlot | Busy:
        token = holder or uuid.uuid4().hex
        deadline = time.monotonic() + max(0.0, wait_s)
        with self._cond:
            while True:
                now = time.monotonic()
                held = self._held.setdefault(endpoint_id, {})
                for key in [k for k, expiry in held.items() if expiry <= now]:
                    del held[key]
                if token in held:
                    return Busy()
                starts = self._starts.setdefault(endpoint_id, deque())
                while starts and starts[0] <= now - 60:
                    starts.popleft()
                wait_hint = None
                if len(held) < limit:
                    if not rpm or len(starts) < rpm:
                        held[token] = now + ttl_s
                        if rpm:
                            starts.append(now)
                        return Slot(endpoint_id=endpoint_id, token=token)
                    wait_hint = starts[0] + 60 - now
                remaining = deadline - now
                if wait_hint is not None and wait_hint > remaining:
                    return NoSlot(retry_in_s=wait_hint)
                if remaining <= 0:
                    return NoSlot(retry_in_s=1.0)
                self._cond.wait(timeout=min(remaining, wait_hint or 0.2))

    def release(self, slot: Slot) -> None:
        with self._cond:
            self._held.get(slot.endpoint_id, {}).pop(slot.token, None)
            self._cond.notify()

    def active(self, endpoint_id: int) -> int:
        now = time.monotonic()
        with self._cond:
            return sum(1 for expiry in self._held.get(endpoint_id, {}).values() if expiry > now)


@cache
def _limits_for(redis_url: str) -> RedisLimits | LocalLimits:
    return RedisLimits(redis_url) if redis_url else LocalLimits()


def get_limits() -> RedisLimits | LocalLimits:
    """The limiter of this process: Redis-backed when REDIS_URL is set, process-local otherwise."""
    return _limits_for(settings.REDIS_URL or "")
