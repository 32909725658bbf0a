"""Writes about users: qualifications (granted and revoked by batch admins) and consent."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotate.accounts.models import Qualification, User
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction, Track
from annotate.core.errors import DomainError, NotFound


@transaction.atomic
def qualification_record_consent(*, user: User) -> Qualification:
    """The annotator agrees to see potentially harmful content on the safety track."""
    qualification = (
        Qualification.objects.select_for_update()
        .filter(user=user, track=Track.SAFETY, revoked_at__isnull=True)
        .first()
    )
    if qualification is None:
        raise DomainError("You are not qualified for the safety track.", code="not_qualified")
    if qualification.consented_at is None:
        qualification.consented_at = timezone.now()
        qualification.save(update_fields=["consented_at"])
    return qualification


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
