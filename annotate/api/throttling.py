"""Request rate limits: per token for token requests, per user for session requests, per address otherwise.

Counted in fixed one-period windows on the shared cache (core.ratelimit: atomic INCR on Redis), so the
limit holds across every web process. The rates are DRF's DEFAULT_THROTTLE_RATES ("token", "session",
"anon"), read on each request so that a settings change applies at once.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from annotate.api.models import ApiToken
from annotate.core import ratelimit

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "600/min" -> (600, 60)."""
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


def identity(request: Request) -> tuple[str, str]:
    """The throttle scope and whom it counts for this request."""
    if isinstance(request.auth, ApiToken):
        return "token", str(request.auth.pk)
    user = request.user
    if user is not None and user.is_authenticated:
        return "session", str(user.pk)
    return "anon", ratelimit.client_ip(request)


class PerTokenThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        scope, who = identity(request)
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        if not rate:
            return True
        limit, period = parse_rate(rate)
        if ratelimit.hit(f"api-{scope}", who, limit=limit, window_s=period):
            return True
        self.retry_after = period - (time.time() % period)
        return False

    def wait(self) -> float | None:
        return self.retry_after
