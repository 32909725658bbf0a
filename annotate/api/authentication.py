"""How API requests authenticate: a personal token first, else the browser's session (with CSRF).

A request that carries an Authorization header is authenticated by that header or refused: a bad,
expired or revoked token, or a scheme we do not know, never falls through to the session cookie that a
browser may send along. Only requests without the header are looked at by the session authenticator.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication as DrfSessionAuthentication
from rest_framework.authentication import get_authorization_header
from rest_framework.request import Request

from annotate.api.models import ApiToken
from annotate.core import ratelimit

TOKEN_SCHEMES = (b"token", b"bearer")
MAX_TOKEN_CHARS = 200
BAD_HEADER = "Send the token as `Authorization: Token <token>`."


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's hashed tokens, as `Authorization: Token <token>` (or `Bearer <token>`)."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() not in TOKEN_SCHEMES:
            raise exceptions.AuthenticationFailed(BAD_HEADER)
        raw = parts[1]
        # knox decodes the token as UTF-8 and hashes it: refuse anything that is not a plausible token
        # before it gets there (odd bytes would otherwise surface as a server error).
        # Wrong tokens are limited per client address. The answer to a wrong token (401, or 429 past the
        # limit) is decided by one atomic INCR after the check, so however many guesses run in parallel, at
        # most the limit of them are told "wrong"; once over it, no token is checked until the window ends.
        # Right tokens never touch the counter, so a busy script on one address is never slowed.
        address = ratelimit.client_ip(request)
        limit, window = settings.API_TOKEN_FAILURES_PER_WINDOW, settings.LOGIN_WINDOW_SECONDS
        if ratelimit.count("token-auth-ip", address, window_s=window) >= limit:
            raise self._throttled(window)
        try:
            if len(raw) > MAX_TOKEN_CHARS or not raw.isascii() or not raw.decode("ascii").isprintable():
                raise exceptions.AuthenticationFailed("Invalid token.")
            return self.authenticate_credentials(raw)
        except exceptions.AuthenticationFailed:
            if not ratelimit.hit("token-auth-ip", address, limit=limit, window_s=window):
                raise self._throttled(window) from None
            raise

    @staticmethod
    def _throttled(window: int) -> exceptions.Throttled:
        return exceptions.Throttled(
            wait=ratelimit.seconds_left(window), detail="Too many wrong tokens from this address; wait."
        )

    def authenticate_header(self, request: Request) -> str:
        return "Token"


class SessionAuthentication(DrfSessionAuthentication):
    """DRF's session authentication (CSRF enforced on unsafe methods), with a stable error code."""

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise exceptions.PermissionDenied(
                "CSRF check failed: send the X-CSRFToken header with the csrftoken cookie's value.",
                code="csrf_failed",
            ) from exc
