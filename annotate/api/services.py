"""Writes the API needs: personal tokens, housekeeping, and the simple creates and updates of endpoints,
sampling configs, batches and qualifications.

The second half holds services the domain apps do not have yet (the admin creates these rows through its
model forms). They are plain `<entity>_<action>` functions, one transaction each, validated by the model's
own `full_clean()` (field bounds, `clean()`, constraints), and belong in endpoints/, batches/ and accounts/
services.py: they can move there unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.accounts.models import Qualification, User
from annotate.api.models import ApiToken, IdempotencyRecord
from annotate.batches import services as batch_services
from annotate.batches.models import Batch
from annotate.core import ratelimit
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction, Track
from annotate.core.errors import ConflictError, DomainError
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

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


class NotFound(DomainError):
    status_code = 404

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, code="not_found")


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


# --- Services the domain apps do not have yet (see the module docstring) ---------------------------


def _save_new(instance: Any, what: str) -> None:
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        # A concurrent create with the same unique name won the race after our full_clean() passed.
        raise ConflictError(
            f"A {what} with this name already exists.", code="duplicate", field="name"
        ) from None


def _update(instance: Any, changes: dict[str, Any], what: str) -> None:
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ConflictError(
            f"A {what} with this name already exists.", code="duplicate", field="name"
        ) from None


def _audit_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """The changed fields for the audit log: plain values as they are, related objects by id."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if isinstance(value, list | tuple):
            out[name] = [getattr(v, "pk", v) for v in value]
        else:
            value = getattr(value, "pk", value)
            out[name] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return out


@transaction.atomic
def endpoint_create(*, actor: User | None = None, **fields: Any) -> ModelEndpoint:
    endpoint = ModelEndpoint(**fields)
    _save_new(endpoint, "model endpoint")
    audit_record(
        actor=actor,
        action=AuditAction.ENDPOINT_CHANGED,
        obj=endpoint,
        details={"created": _audit_fields(fields)},
    )
    return endpoint


@transaction.atomic
def endpoint_update(*, endpoint_id: int, changes: dict[str, Any], actor: User | None = None) -> ModelEndpoint:
    endpoint = ModelEndpoint.objects.select_for_update().get(pk=endpoint_id)
    _update(endpoint, changes, "model endpoint")
    audit_record(
        actor=actor,
        action=AuditAction.ENDPOINT_CHANGED,
        obj=endpoint,
        details={"changed": _audit_fields(changes)},
    )
    return endpoint


@transaction.atomic
def sampling_config_create(*, actor: User | None = None, **fields: Any) -> SamplingConfig:
    config = SamplingConfig(**fields)
    _save_new(config, "sampling config")
    audit_record(
        actor=actor,
        action=AuditAction.SAMPLING_CONFIG_CHANGED,
        obj=config,
        details={"created": _audit_fields(fields)},
    )
    return config


@transaction.atomic
def sampling_config_update(
    *, config_id: int, changes: dict[str, Any], actor: User | None = None
) -> SamplingConfig:
    config = SamplingConfig.objects.select_for_update().get(pk=config_id)
    _update(config, changes, "sampling config")
    audit_record(
        actor=actor,
        action=AuditAction.SAMPLING_CONFIG_CHANGED,
        obj=config,
        details={"changed": _audit_fields(changes)},
    )
    return config


@transaction.atomic
def batch_create(*, created_by: User, sampling_configs: list[SamplingConfig], **fields: Any) -> Batch:
    """A draft batch. Prompts come next (import), then generation (or opening, when all responses came
    with the import)."""
    batch = Batch(created_by=created_by, status=Batch.Status.DRAFT, **fields)
    batch.full_clean()
    batch.save()
    batch.sampling_configs.set(sampling_configs)
    audit_record(
        actor=created_by,
        action=AuditAction.BATCH_CREATED,
        obj=batch,
        details=_audit_fields({**fields, "sampling_configs": sampling_configs}),
    )
    return batch


UPDATABLE_BATCH_FIELDS = ("name", "description", "lease_minutes", "gold_rate")


@transaction.atomic
def batch_update(*, batch_id: int, changes: dict[str, Any], actor: User | None = None) -> Batch:
    """Plain fields directly; guidelines (a new version) and overlap (items' wanted counts) through their
    own services, in this same transaction."""
    batch = Batch.objects.select_for_update().get(pk=batch_id)
    plain = {k: v for k, v in changes.items() if k in UPDATABLE_BATCH_FIELDS}
    if plain:
        for name, value in plain.items():
            setattr(batch, name, value)
        batch.full_clean()
        batch.save(update_fields=[*plain, "updated_at"])
    if "sampling_configs" in changes:
        batch.sampling_configs.set(changes["sampling_configs"])
    plain_or_configs = {
        k: v for k, v in changes.items() if k in (*UPDATABLE_BATCH_FIELDS, "sampling_configs")
    }
    if plain_or_configs:
        audit_record(
            actor=actor, action=AuditAction.BATCH_UPDATED, obj=batch, details=_audit_fields(plain_or_configs)
        )
    if "guidelines" in changes:
        batch_services.batch_update_guidelines(
            batch_id=batch.pk, guidelines=changes["guidelines"], actor=actor
        )
    if "overlap" in changes:
        batch_services.batch_set_overlap(batch_id=batch.pk, overlap=changes["overlap"], actor=actor)
    batch.refresh_from_db()
    return batch


@transaction.atomic
def qualification_grant(*, user: User, track: str, granted_by: User) -> Qualification:
    """Qualify a user for a track (again, if it was revoked). Safety consent stays the annotator's own."""
    if track not in Track.values:
        raise DomainError(f"track must be one of: {', '.join(Track.values)}.", field="track")
    if user.kind != User.Kind.HUMAN:
        raise DomainError("Only human users annotate; AI judges need no qualification.", field="track")
    qualification, created = Qualification.objects.select_for_update().get_or_create(
        user=user, track=track, defaults={"granted_by": granted_by}
    )
    if not created and qualification.revoked_at is not None:
        qualification.revoked_at = None
        qualification.granted_by = granted_by
        qualification.granted_at = timezone.now()
        qualification.save(update_fields=["revoked_at", "granted_by", "granted_at"])
        created = True
    if created:
        audit_record(
            actor=granted_by,
            action=AuditAction.QUALIFICATION_GRANTED,
            obj=qualification,
            details={"user": user.get_username(), "user_id": user.pk, "track": track},
        )
    return qualification


@transaction.atomic
def qualification_revoke(*, user: User, track: str, actor: User | None = None) -> Qualification:
    """Take a track away. Leases the annotator holds run out as usual; no new items are served."""
    qualification = Qualification.objects.select_for_update().filter(user=user, track=track).first()
    if qualification is None:
        raise NotFound("This user has no qualification for that track.")
    if qualification.revoked_at is None:
        qualification.revoked_at = timezone.now()
        qualification.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=AuditAction.QUALIFICATION_REVOKED,
            obj=qualification,
            details={"user": user.get_username(), "user_id": user.pk, "track": track},
        )
    return qualification
