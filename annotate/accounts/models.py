"""Users and their roles, and per-track qualifications.

Roles: every active human user may annotate the tracks they are qualified for; `is_staff` users are batch
admins; `is_exporter` users may create and download dataset exports. AI judges are users of kind "ai" so
that their judgments share the human judgments' tables without ever counting as human work.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from annotate.core.choices import Track, in_choices


def new_pseudonym() -> str:
    # Exports name annotators by this stable, meaningless token, never by username or id.
    return "ann_" + secrets.token_hex(6)


class UserKind(models.TextChoices):
    HUMAN = "human", "Human"
    AI = "ai", "AI judge"


class User(AbstractUser):
    Kind = UserKind

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.HUMAN)
    is_exporter = models.BooleanField(
        default=False, help_text="May create and download dataset exports through the API."
    )
    pseudonym = models.CharField(max_length=32, unique=True, default=new_pseudonym, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["human", "ai"]), name="user_kind_valid"),
        ]

    @property
    def is_batch_admin(self) -> bool:
        return self.is_active and (self.is_staff or self.is_superuser)


class Qualification(models.Model):
    """An annotator's permission to work on a track. Safety also needs the annotator's own consent to
    see potentially harmful content before any safety item is shown."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="qualifications")
    track = models.CharField(max_length=16, choices=Track.choices)
    granted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    granted_at = models.DateTimeField(auto_now_add=True)
    consented_at = models.DateTimeField(
        null=True, blank=True, help_text="When the annotator consented to see potentially harmful content."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "track"], name="qualification_unique_user_track"),
            models.CheckConstraint(condition=in_choices("track", Track), name="qualification_track_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.track}"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.track != Track.SAFETY or self.consented_at is not None
