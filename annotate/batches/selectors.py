"""Reads about batches: progress figures computed from the rows themselves."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from annotate.accounts.models import UserKind
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Batch, Item, ItemStatus, Response, ResponseStatus


@dataclass(frozen=True)
class BatchProgress:
    items: int
    items_ready: int
    items_dropped: int
    judgments_done: int
    judgments_wanted: int
    active_leases: int

    @property
    def percent(self) -> float:
        if not self.judgments_wanted:
            return 0.0
        return min(100.0, 100.0 * self.judgments_done / self.judgments_wanted)


def _count_subquery(queryset: QuerySet, field: str = "batch") -> Coalesce:
    counted = (
        queryset.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def batches_with_progress(queryset: QuerySet[Batch] | None = None) -> QuerySet[Batch]:
    """Batches annotated with progress counts, one query for the whole list (no per-row queries)."""
    queryset = Batch.objects.all() if queryset is None else queryset
    wanted = (
        Item.objects.filter(batch=OuterRef("pk"), status=ItemStatus.READY)
        .order_by()
        .values("batch")
        .annotate(n=Sum("wanted"))
        .values("n")
    )
    return queryset.annotate(
        n_items=_count_subquery(Item.objects.all()),
        n_items_ready=_count_subquery(Item.objects.filter(status=ItemStatus.READY)),
        n_items_dropped=_count_subquery(Item.objects.filter(status=ItemStatus.DROPPED)),
        # Human work only: an AI judge's assignments (annotate/judges) are never part of the overlap.
        n_judgments=_count_subquery(
            Assignment.objects.filter(status=AssignmentStatus.SUBMITTED, annotator__kind=UserKind.HUMAN)
        ),
        n_active=_count_subquery(Assignment.objects.filter(status=AssignmentStatus.ACTIVE)),
        n_wanted=Coalesce(Subquery(wanted, output_field=IntegerField()), Value(0)),
    )


def batch_progress(*, batch: Batch) -> BatchProgress:
    items = Item.objects.filter(batch=batch).aggregate(
        total=Count("pk"),
        ready=Count("pk", filter=Q(status=ItemStatus.READY)),
        dropped=Count("pk", filter=Q(status=ItemStatus.DROPPED)),
        wanted=Coalesce(Sum("wanted", filter=Q(status=ItemStatus.READY)), Value(0)),
    )
    leases = Assignment.objects.filter(batch=batch).aggregate(
        done=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED, annotator__kind=UserKind.HUMAN)),
        active=Count("pk", filter=Q(status=AssignmentStatus.ACTIVE)),
    )
    return BatchProgress(
        items=items["total"],
        items_ready=items["ready"],
        items_dropped=items["dropped"],
        judgments_done=leases["done"],
        judgments_wanted=items["wanted"],
        active_leases=leases["active"],
    )


@dataclass(frozen=True)
class GenerationProgress:
    """Where a batch's generation stands: responses by status and items waiting for them."""

    responses: int
    pending: int
    ok: int
    failed: int
    items_waiting: int

    @property
    def percent(self) -> float:
        return 100.0 * self.ok / self.responses if self.responses else 0.0


def batch_generation_progress(*, batch: Batch) -> GenerationProgress:
    counts = (
        Response.objects.filter(item__batch=batch)
        .exclude(item__status=ItemStatus.DROPPED)
        .aggregate(
            total=Count("pk"),
            pending=Count("pk", filter=Q(status=ResponseStatus.PENDING)),
            ok=Count("pk", filter=Q(status=ResponseStatus.OK)),
            failed=Count("pk", filter=Q(status=ResponseStatus.FAILED)),
        )
    )
    return GenerationProgress(
        responses=counts["total"],
        pending=counts["pending"],
        ok=counts["ok"],
        failed=counts["failed"],
        items_waiting=Item.objects.filter(batch=batch, status=ItemStatus.PENDING).count(),
    )
