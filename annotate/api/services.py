"""Writes about the API's own rows: personal tokens (and their creation limit) and housekeeping.

The writes the API makes on domain rows (endpoints, sampling configs, batches, qualifications) are the
services of the apps that own those models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotate.accounts.models import User
from annotate.api.models import ApiToken, IdempotencyRecord
from annotate.core import ratelimit
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction
from annotate.core.errors import ConflictError, DomainError, NotFound

MAX_TOKEN_DAYS = 3650


class TokenCreationLimited(DomainError):
    status_code = 429

    def __init__(self) -> None:
        super().__init__(
            "Too many tokens created in a short time; wait a few minutes and try again.", code="throttled"
        )


def token_create_allowed(user: User) -> bool:
    """Creating a credential is rate-limited like signing in (per user, atomic counter on the cache)."""
    return ratelimit.hit(
        "token-create",
        str(user.pk),
        limit=settings.LOGIN_ATTEMPTS_PER_WINDOW,
        window_s=settings.LOGIN_WINDOW_SECONDS,
    )


# --- Personal API tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # the token itself: shown once, in the response that created it, never stored


@transaction.atomic
def token_create(
    *, user: User, name: str, expires_in_days: int | None, created_with: ApiToken | None = None
) -> CreatedToken:
    """A new personal token. A token created by a token-authenticated request may not outlive the token
    that created it, so a leaked expiring token cannot mint itself a permanent successor."""
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the token a name that says what it is for.", field="name")
    if len(name) > 100:
        raise DomainError("The name is limited to 100 characters.", field="name")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise DomainError(f"A token expires in 1 to {MAX_TOKEN_DAYS} days.", field="expires_in_days")
    now = timezone.now()
    expiry = timedelta(days=expires_in_days) if expires_in_days is not None else None
    limit = created_with.expiry if created_with is not None else None
    if limit is not None and (expiry is None or now + expiry > limit):
        raise DomainError(
            f"A token can only create tokens that expire no later than itself ({limit:%Y-%m-%d %H:%M} UTC).",
            field="expires_in_days",
        )
    # Lock the user's row so two concurrent creates cannot both pass the limit.
    User.objects.select_for_update().filter(pk=user.pk).first()
    live = ApiToken.objects.filter(user=user).filter(Q(expiry__isnull=True) | Q(expiry__gt=now)).count()
    if live >= settings.API_MAX_TOKENS_PER_USER:
        raise ConflictError(
            f"You have {live} tokens, the most allowed; revoke one you no longer use first.",
            code="too_many_tokens",
        )
    token, secret = ApiToken.objects.create(user=user, expiry=expiry, name=name)
    audit_record(
        actor=user,
        action=AuditAction.TOKEN_CREATED,
        obj=token,
        object_repr=f"{token.token_key}… {name}",
        details={
            "name": name,
            "prefix": token.token_key,
            "expiry": token.expiry.isoformat() if token.expiry else None,
            "created_with_token": created_with.token_key if created_with is not None else None,
        },
    )
    return CreatedToken(token=token, secret=secret)


@transaction.atomic
def token_revoke(*, user: User, token_id: int) -> None:
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise NotFound("No such token.")
    audit_record(
        actor=user,
        action=AuditAction.TOKEN_REVOKED,
        obj=token,
        object_repr=f"{token.token_key}… {token.name}",
        details={"name": token.name, "prefix": token.token_key},
    )
    token.delete()


def api_records_purge() -> dict[str, int]:
    """Forget idempotency records past their time and delete expired tokens (the periodic job)."""
    now = timezone.now()
    cutoff = now - timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    records, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    tokens, _ = ApiToken.objects.filter(expiry__lt=now).delete()
    return {"idempotency_records": records, "tokens": tokens}
