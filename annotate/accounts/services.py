"""Writes about users: qualifications and consent."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotate.accounts.models import Qualification, User
from annotate.core.choices import Track
from annotate.core.errors import DomainError


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
