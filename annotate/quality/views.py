"""The quality dashboards for batch admins: server-rendered pages with SVG charts (charts.py)."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError as KombuOperationalError

from annotate.batches.models import Batch
from annotate.batches.selectors import batches_with_progress
from annotate.core.choices import SafetyBin, Strength, Track
from annotate.quality import charts
from annotate.quality.models import QualityReport, ReportScope
from annotate.quality.selectors import AGREEMENT_FIELDS, batch_report, report_to_dict, track_report
from annotate.quality.services import quality_enqueue_recompute


def batch_admin_required(view: Any) -> Any:
    """Signed-in batch admins only; anyone else gets a 404 (the pages do not exist for them)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not getattr(request.user, "is_batch_admin", False):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


def _agreement_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, _items, label in AGREEMENT_FIELDS:
        figure = data["agreement"][key]
        rows.append({"label": label, "value": figure["value"], "items": figure["items"], "key": key})
    return rows


def _charts(data: dict[str, Any], *, target: int | None) -> dict[str, Any]:
    days = data["judgments_per_day"]
    strength = data["strength_distribution"]
    bins = data["safety_bins"]
    board = data["leaderboard"] or {}
    configs = data["leaderboard_by_config"] or {}
    result = {
        "progress": charts.line_chart(
            [(d["day"], d["cumulative"]) for d in days],
            title="Judgments collected (cumulative)",
            chart_id="chart-progress",
            target=target,
            target_label="wanted",
        ),
        "per_day": charts.bar_chart(
            [(d["day"], d["judgments"]) for d in days], title="Judgments per day", chart_id="chart-per-day"
        ),
        "strength": charts.bar_chart(
            [(label, strength.get(value, 0)) for value, label in Strength.choices],
            title="Strength of preference",
            chart_id="chart-strength",
        ),
        "leaderboard": charts.interval_chart(
            board.get("rows", []), title="Model ratings with 95% intervals", chart_id="chart-leaderboard"
        ),
        "win_rate": charts.heatmap(
            board.get("names", []),
            board.get("win_rate", []),
            title="Win rate (row beats column)",
            chart_id="chart-win-rate",
        ),
        "configs": charts.interval_chart(
            configs.get("rows", []), title="Sampling configs with 95% intervals", chart_id="chart-configs"
        ),
    }
    if any(bins.values()):
        result["safety"] = charts.bar_chart(
            [(label, bins.get(value, 0)) for value, label in SafetyBin.choices],
            title="Safety bins",
            chart_id="chart-safety",
        )
    return result


@require_GET
@batch_admin_required
def index(request: HttpRequest) -> HttpResponse:
    batches = batches_with_progress(Batch.objects.order_by("-created_at"))[:200]
    reports = {
        r.batch_id: r
        for r in QualityReport.objects.filter(scope=ReportScope.BATCH, batch__in=[b.pk for b in batches])
    }
    rows = [{"batch": b, "report": reports.get(b.pk)} for b in batches]
    return render(request, "quality/index.html", {"rows": rows, "tracks": Track.choices})


@require_GET
@batch_admin_required
def batch_dashboard(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=batch_id)
    report = batch_report(batch=batch)
    data = report_to_dict(report)
    context = {
        "batch": batch,
        "report": report,
        "data": data,
        "agreement": _agreement_rows(data),
        "charts": _charts(data, target=data["progress"]["judgments_wanted"]),
        "flagged": sum(1 for a in data["annotator_stats"] if a["flagged"]),
    }
    return render(request, "quality/batch.html", context)


@require_GET
@batch_admin_required
def track_dashboard(request: HttpRequest, track: str) -> HttpResponse:
    if track not in Track.values:
        raise Http404
    report = track_report(track=track)
    data = report_to_dict(report)
    context = {
        "track": Track(track),
        "report": report,
        "data": data,
        "agreement": _agreement_rows(data),
        "charts": _charts(data, target=None),
    }
    return render(request, "quality/track.html", context)


@require_POST
@batch_admin_required
def recompute(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=batch_id)
    try:
        quality_enqueue_recompute(batch_ids=[batch.pk], tracks=[batch.track])
    except KombuOperationalError:
        messages.error(request, "The task broker is unreachable, so the recomputation was not queued.")
    else:
        messages.success(request, "Recomputation queued: reload this page in a moment.")
    return redirect("quality:batch", batch_id=batch.pk)
