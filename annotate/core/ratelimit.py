"""Fixed-window rate limits on the shared cache (Redis in production): atomic across processes."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def hit(scope: str, key: str, *, limit: int, window_s: int) -> bool:
    """Count one attempt; True while the attempts in the current window are within `limit`."""
    window = int(time.time() // window_s)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"rl:{scope}:{digest}:{window}"
    # add() creates the counter only if absent; incr() is atomic on Redis (INCR) and on locmem.
    cache.add(cache_key, 0, timeout=window_s + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window_s + 1)
        count = 1
    return count <= limit


def client_ip(request: object) -> str:
    meta = getattr(request, "META", {})
    return str(meta.get("REMOTE_ADDR", "unknown"))
