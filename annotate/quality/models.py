"""Stored quality figures: one report per batch and per track, recomputed from the judgments (never
incremented), and one row of statistics per annotator of a batch.

The figures are defined in docs/quality.md. A report is replaced as a whole by each recomputation, so
the dashboards and the API always show one consistent computation with its time.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.core.choices import Track, in_choices


class ReportScope(models.TextChoices):
    BATCH = "batch", "Batch"
    TRACK = "track", "Track"


class QualityReport(models.Model):
    Scope = ReportScope

    scope = models.CharField(max_length=8, choices=Scope.choices)
    batch = models.ForeignKey(
        "batches.Batch", on_delete=models.CASCADE, null=True, blank=True, related_name="quality_reports"
    )
    track = models.CharField(max_length=16, choices=Track.choices)
    computed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    # The newest judgment the computation saw: the beat job recomputes only when a newer one exists.
    last_judgment_id = models.BigIntegerField(default=0)

    n_judgments = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    n_annotators = models.PositiveIntegerField(default=0)

    # Agreement figures, each with the number of items (units with 2+ judgments) it rests on. Pairwise
    # judgments: the chosen side; ranking judgments: the response ranked first (see docs/quality.md).
    agreement_rate = models.FloatField(null=True, blank=True)
    agreement_items = models.PositiveIntegerField(default=0)
    alpha_nominal = models.FloatField(null=True, blank=True)
    alpha_nominal_items = models.PositiveIntegerField(default=0)
    alpha_ordinal = models.FloatField(
        null=True, blank=True, help_text="Pairwise: on the signed strength scale -4..4."
    )
    alpha_ordinal_items = models.PositiveIntegerField(default=0)
    fleiss_kappa = models.FloatField(null=True, blank=True)
    fleiss_kappa_items = models.PositiveIntegerField(default=0)
    fleiss_kappa_raters = models.PositiveSmallIntegerField(default=0)
    alpha_ranking = models.FloatField(null=True, blank=True, help_text="Rankings: Kendall tau distance.")
    alpha_ranking_items = models.PositiveIntegerField(default=0)

    # {"<strength>": count}, {"<safety bin>": count}, [{"day": "YYYY-MM-DD", "judgments": n, "cumulative": n}]
    strength_distribution = models.JSONField(default=dict, blank=True)
    safety_bins = models.JSONField(default=dict, blank=True)
    judgments_per_day = models.JSONField(default=list, blank=True)
    # Leaderboards: {"models": [...], "configs": [...]} (see selectors.leaderboard_to_dict)
    leaderboard = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["scope", "track", "batch_id"]
        constraints = [
            models.CheckConstraint(condition=in_choices("scope", ReportScope), name="quality_scope_valid"),
            models.CheckConstraint(condition=in_choices("track", Track), name="quality_track_valid"),
            models.CheckConstraint(
                condition=(Q(scope=ReportScope.BATCH) & Q(batch__isnull=False))
                | (Q(scope=ReportScope.TRACK) & Q(batch__isnull=True)),
                name="quality_scope_matches_batch",
            ),
            models.UniqueConstraint(
                fields=["batch"], condition=Q(scope=ReportScope.BATCH), name="quality_one_report_per_batch"
            ),
            models.UniqueConstraint(
                fields=["track"], condition=Q(scope=ReportScope.TRACK), name="quality_one_report_per_track"
            ),
        ]

    def __str__(self) -> str:
        if self.scope == ReportScope.BATCH:
            return f"Quality of batch {self.batch_id}"
        return f"Quality of the {self.track} track"


class AnnotatorStats(models.Model):
    """One annotator's figures within one batch report (docs/quality.md). `flagged` is what the
    export filter `exclude_flagged_annotators` reads."""

    report = models.ForeignKey(QualityReport, on_delete=models.CASCADE, related_name="annotators")
    # Denormalised from the report so that the export filter is one index probe per judgment.
    batch = models.ForeignKey("batches.Batch", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    judgments = models.PositiveIntegerField(default=0)
    median_time_ms = models.PositiveIntegerField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True, help_text="With the majority of the others.")
    agreement_n = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True, blank=True)
    gold_n = models.PositiveIntegerField(default=0)
    left_share = models.FloatField(null=True, blank=True, help_text="Pairwise: share of left choices.")
    left_n = models.PositiveIntegerField(default=0)
    longer_share = models.FloatField(
        null=True, blank=True, help_text="Pairwise: share of choices of the longer response."
    )
    longer_n = models.PositiveIntegerField(default=0)
    strength_distribution = models.JSONField(default=dict, blank=True)
    flagged = models.BooleanField(default=False)
    flag_reasons = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["report_id", "-judgments", "annotator_id"]
        verbose_name_plural = "annotator stats"
        constraints = [
            models.UniqueConstraint(fields=["report", "annotator"], name="quality_annotator_once_per_report"),
        ]
        indexes = [
            models.Index(
                fields=["batch", "annotator"], condition=Q(flagged=True), name="quality_flagged_annotator"
            ),
        ]

    def __str__(self) -> str:
        return f"Annotator {self.annotator_id} in batch {self.batch_id}"
