"""Fixed-window rate limits on the shared cache (Redis in production): atomic across processes.

`hit` counts one attempt with an atomic INCR and says whether it is within the limit, so N parallel
attempts get exactly `limit` yeses however they interleave. `count` reads the counter without adding.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def _key(scope: str, key: str, window_s: int) -> str:
    window = int(time.time() // window_s)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"rl:{scope}:{digest}:{window}"


def _incr(cache_key: str, window_s: int) -> int:
    # add() creates the counter only if absent; incr() is atomic on Redis (INCR) and on locmem.
    cache.add(cache_key, 0, timeout=window_s + 1)
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window_s + 1)
        return 1


def hit(scope: str, key: str, *, limit: int, window_s: int) -> bool:
    """Count one attempt; True while the attempts in the current window are within `limit`."""
    return _incr(_key(scope, key, window_s), window_s) <= limit


def count(scope: str, key: str, *, window_s: int) -> int:
    """Attempts counted so far in the current window (no attempt is added)."""
    return int(cache.get(_key(scope, key, window_s)) or 0)


def seconds_left(window_s: int) -> int:
    return max(1, int(window_s - time.time() % window_s + 0.999))


def client_ip(request: object) -> str:
    meta = getattr(request, "META", {})
    return str(meta.get("REMOTE_ADDR", "unknown"))
