"""Reads for the annotator's pages: their batches, progress figures, and an item ready to render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.safestring import mark_safe

from annotate.accounts.models import User
from annotate.accounts.selectors import usable_tracks
from annotate.assignments.models import AnnotatorProgress, Assignment, AssignmentStatus
from annotate.assignments.services import Progress, progress_of, responses_in_order
from annotate.batches.models import Batch, BatchStatus
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
    day = timezone.localdate()
    mine = {
        batch_id: {"today": today if on == day else 0, "total": total}
        for batch_id, on, today, total in AnnotatorProgress.objects.filter(
            annotator=user, batch__in=batches
        ).values_list("batch_id", "day", "today", "total")
    }
    leases = Assignment.objects.filter(annotator=user, batch__in=batches, status=AssignmentStatus.ACTIVE)
    active = set(leases.values_list("batch_id", flat=True))
    return [
        BatchCard(
            batch=b,
            mine_today=mine.get(b.pk, {}).get("today", 0),
            mine_total=mine.get(b.pk, {}).get("total", 0),
            done=b.n_judgments,
            wanted=b.n_wanted,
            has_active=b.pk in active,
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
    ordered = responses_in_order(assignment)
    rendered = responses_ensure_rendered(ordered)
    shown = [
        # content_html was sanitized by nh3 when it was stored (responses_ensure_rendered).
        ShownResponse(id=r.pk, label=LABELS[i], position=i, html=mark_safe(rendered[r.pk]), raw=r.content)
        for i, r in enumerate(ordered)
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


def my_progress(user: User, batch: Batch) -> Progress:
    """The annotator's judgments in the batch, today and in all (kept by the submit itself: one row)."""
    return progress_of(annotator=user, batch=batch)
