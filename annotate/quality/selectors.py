"""Quality reads: the stored reports as plain dicts (for the dashboards and the API)."""

from __future__ import annotations

from typing import Any

from annotate.batches.models import Batch
from annotate.batches.selectors import batch_progress
from annotate.core.choices import Track
from annotate.quality.models import QualityReport, ReportScope
from annotate.quality.services import quality_recompute_batch, quality_recompute_track

AGREEMENT_FIELDS = (
    ("agreement_rate", "agreement_items", "Pairwise agreement rate"),
    ("alpha_nominal", "alpha_nominal_items", "Krippendorff's alpha (nominal: the choice)"),
    ("alpha_ordinal", "alpha_ordinal_items", "Krippendorff's alpha (ordinal: signed strength -4..4)"),
    ("fleiss_kappa", "fleiss_kappa_items", "Fleiss' kappa"),
    ("alpha_ranking", "alpha_ranking_items", "Krippendorff's alpha (rankings: Kendall tau distance)"),
)


def batch_report(*, batch: Batch) -> QualityReport:
    """The batch's stored report; computed now if it has none yet (first view of a new batch)."""
    report = QualityReport.objects.filter(scope=ReportScope.BATCH, batch=batch).first()
    return report if report is not None else quality_recompute_batch(batch_id=batch.pk)


def track_report(*, track: str) -> QualityReport:
    report = QualityReport.objects.filter(scope=ReportScope.TRACK, track=track).first()
    return report if report is not None else quality_recompute_track(track=track)


def annotators_of(report: QualityReport) -> list[dict[str, Any]]:
    return [
        {
            "annotator_id": s.annotator_id,
            "annotator": s.annotator.username,
            "pseudonym": s.annotator.pseudonym,
            "judgments": s.judgments,
            "median_time_ms": s.median_time_ms,
            "agreement": s.agreement,
            "agreement_n": s.agreement_n,
            "gold_accuracy": s.gold_accuracy,
            "gold_n": s.gold_n,
            "left_share": s.left_share,
            "left_n": s.left_n,
            "longer_share": s.longer_share,
            "longer_n": s.longer_n,
            "strength_distribution": s.strength_distribution,
            "flagged": s.flagged,
            "flag_reasons": s.flag_reasons,
        }
        for s in report.annotators.select_related("annotator").order_by(
            "-flagged", "-judgments", "annotator_id"
        )
    ]


def report_to_dict(report: QualityReport) -> dict[str, Any]:
    """Every figure of a report, as the API returns it."""
    data: dict[str, Any] = {
        "scope": report.scope,
        "batch": report.batch_id,
        "track": report.track,
        "computed_at": report.computed_at,
        "duration_ms": report.duration_ms,
        "judgments": report.n_judgments,
        "items": report.n_items,
        "annotators": report.n_annotators,
        "agreement": {
            value: {"value": getattr(report, value), "items": getattr(report, items)}
            for value, items, _ in AGREEMENT_FIELDS
        },
        "strength_distribution": report.strength_distribution,
        "safety_bins": report.safety_bins,
        "judgments_per_day": report.judgments_per_day,
        "leaderboard": report.leaderboard.get("models") or None,
        "leaderboard_by_config": report.leaderboard.get("configs") or None,
    }
    data["agreement"]["fleiss_kappa"]["raters"] = report.fleiss_kappa_raters
    if report.scope == ReportScope.BATCH:
        assert report.batch is not None
        progress = batch_progress(batch=report.batch)
        data["progress"] = {
            "judgments_done": progress.judgments_done,
            "judgments_wanted": progress.judgments_wanted,
            "percent": progress.percent,
        }
        data["annotator_stats"] = annotators_of(report)
    return data


def tracks() -> list[str]:
    return list(Track.values)
