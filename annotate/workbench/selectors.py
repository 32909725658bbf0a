"""Reads for the annotator's pages: their batches, progress figures, and an item ready to render."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.safestring import mark_safe

from annotate.accounts.models import User
from annotate.accounts.selectors import usable_tracks
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.models import Batch, BatchStatus, Response
from annotate.batches.selectors import batches_with_progress
from annotate.batches.services import responses_ensure_rendered
from annotate.core.rendering import render_markdown, render_plain

LABELS = "ABCDEFGHI"


@dataclass(frozen=True)
class BatchCard:
    batch: Batch
    mine_today: int
    mine_total: int
    done: int
    wanted: int
    has_active: bool

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.wanted) if self.wanted else 0


def annotator_batches(user: User) -> list[BatchCard]:
    tracks = usable_tracks(user)
    if not tracks:
        return []
    batches = list(batches_with_progress(Batch.objects.filter(status=BatchStatus.OPEN, track__in=tracks)))
    since = timezone.now() - timedelta(hours=24)
    mine = {
        row["batch_id"]: row
        for row in Assignment.objects.filter(annotator=user, batch__in=batches)
        .values("batch_id")
        .annotate(
            total=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED)),
            today=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED, finished_at__gte=since)),
            active=Count("pk", filter=Q(status=AssignmentStatus.ACTIVE)),
        )
    }
    return [
        BatchCard(
            batch=b,
            mine_today=mine.get(b.pk, {}).get("today", 0),
            mine_total=mine.get(b.pk, {}).get("total", 0),
            done=b.n_judgments,
            wanted=b.n_wanted,
            has_active=bool(mine.get(b.pk, {}).get("active", 0)),
        )
        for b in batches
    ]


@dataclass(frozen=True)
class ShownResponse:
    id: int
    label: str
    position: int
    html: str
    raw: str


def item_view_data(assignment: Assignment) -> dict[str, Any]:
    """The conversation and the responses in this assignment's order, rendered and sanitized.
    Model names and sampling configs are deliberately absent: the annotator judges blind."""
    item = assignment.item
    responses = {r.pk: r for r in Response.objects.filter(item=item)}
    rendered = responses_ensure_rendered(list(responses.values()))
    shown = [
        # content_html was sanitized by nh3 when it was stored (responses_ensure_rendered).
        ShownResponse(
            id=pk, label=LABELS[i], position=i, html=mark_safe(rendered[pk]), raw=responses[pk].content
        )
        for i, pk in enumerate(int(p) for p in assignment.positions)
        if pk in responses
    ]
    turns = [
        {
            "role": str(m.get("role", "")),
            "html": render_markdown(str(m.get("content", ""))),
            "raw": render_plain(str(m.get("content", ""))),
        }
        for m in item.conversation
    ]
    return {"turns": turns, "responses": shown}


def my_progress(user: User, batch: Batch) -> dict[str, int]:
    since = timezone.now() - timedelta(hours=24)
    row = Assignment.objects.filter(annotator=user, batch=batch, status=AssignmentStatus.SUBMITTED).aggregate(
        total=Count("pk"), today=Count("pk", filter=Q(finished_at__gte=since))
    )
    return {"today": row["today"], "total": row["total"]}
