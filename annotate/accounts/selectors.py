"""Reads about users: which tracks they may work on."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from annotate.accounts.models import Qualification, User
from annotate.core import rawsql
from annotate.core.choices import Track


def usable_tracks(user: User | AnonymousUser) -> set[str]:
    """Tracks the user may annotate now: qualified, not revoked, and (for safety) consented."""
    if not user.is_authenticated or not user.is_active or user.kind != User.Kind.HUMAN:
        return set()
    # Read on every claim: plain SQL (see annotate/core/rawsql.py); the rule stays Qualification.is_usable.
    rows = rawsql.fetchall(
        f"SELECT track, consented_at FROM {Qualification._meta.db_table} "
        "WHERE user_id = %s AND revoked_at IS NULL",
        [user.pk],
    )
    return {
        track
        for track, consented_at in rows
        if Qualification(track=track, consented_at=consented_at, revoked_at=None).is_usable
    }


def user_can_annotate_track(user: User | AnonymousUser, track: str) -> bool:
    return track in usable_tracks(user)


def safety_consent_pending(user: User | AnonymousUser) -> bool:
    """Qualified for safety but has not yet consented to see potentially harmful content."""
    if not user.is_authenticated:
        return False
    return Qualification.objects.filter(
        user=user, track=Track.SAFETY, revoked_at__isnull=True, consented_at__isnull=True
    ).exists()
