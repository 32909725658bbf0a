"""What each caller may see through the API: every view's queryset starts from one of these.

Batch admins (is_staff) see everything they manage; exporters see batches and judgments (their datasets'
contents) and their own exports; annotators see the open, paused or closed batches of the tracks they may
work on, and only their own assignments and judgments. Anonymous callers see nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from annotate.accounts.models import Qualification, User
from annotate.accounts.selectors import usable_tracks
from annotate.api.models import ApiToken
from annotate.assignments.models import Assignment
from annotate.batches.models import Batch, BatchStatus, Item, Response
from annotate.core.models import AuditEvent
from annotate.endpoints.models import ModelEndpoint, SamplingConfig
from annotate.judgments.models import Judgment

ANNOTATOR_BATCH_STATUSES = (BatchStatus.OPEN, BatchStatus.PAUSED, BatchStatus.CLOSED)


def is_batch_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_batch_admin)


def is_exporter(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_exporter)


def batches_visible_to(user: Any) -> QuerySet[Batch]:
    if is_batch_admin(user) or is_exporter(user):
        return Batch.objects.all()
    tracks = usable_tracks(user)
    if not tracks:
        return Batch.objects.none()
    return Batch.objects.filter(track__in=tracks, status__in=ANNOTATOR_BATCH_STATUSES)


def endpoints_visible_to(user: Any) -> QuerySet[ModelEndpoint]:
    return ModelEndpoint.objects.all() if is_batch_admin(user) else ModelEndpoint.objects.none()


def sampling_configs_visible_to(user: Any) -> QuerySet[SamplingConfig]:
    if not is_batch_admin(user):
        return SamplingConfig.objects.none()
    return SamplingConfig.objects.select_related("endpoint")


def items_visible_to(user: Any) -> QuerySet[Item]:
    """Items with their responses (model names included): batch admins only."""
    if not is_batch_admin(user):
        return Item.objects.none()
    return Item.objects.prefetch_related(
        Prefetch("responses", queryset=Response.objects.select_related("sampling_config").order_by("slot"))
    )


def assignments_visible_to(user: Any) -> QuerySet[Assignment]:
    assignments = Assignment.objects.select_related("batch", "item", "annotator")
    if is_batch_admin(user):
        return assignments
    if not getattr(user, "is_authenticated", False):
        return assignments.none()
    return assignments.filter(annotator=user)


def judgments_visible_to(user: Any) -> QuerySet[Judgment]:
    judgments = Judgment.objects.select_related("annotator")
    if is_batch_admin(user) or is_exporter(user):
        return judgments
    if not getattr(user, "is_authenticated", False):
        return judgments.none()
    return judgments.filter(annotator=user)


def annotators_visible_to(user: Any) -> QuerySet[User]:
    if not is_batch_admin(user):
        return User.objects.none()
    return User.objects.prefetch_related(
        Prefetch("qualifications", queryset=Qualification.objects.order_by("track"))
    ).order_by("username")


def tokens_of(user: Any) -> QuerySet[ApiToken]:
    if not getattr(user, "is_authenticated", False):
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user).order_by("-created", "-id")


def audit_events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.all() if is_batch_admin(user) else AuditEvent.objects.none()
