"""Judgments: what an annotator (human or AI) said about one assignment's responses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.core.choices import Mode, SafetyBin, Strength, Track, in_choices


class Judgment(models.Model):
    assignment = models.OneToOneField(
        "assignments.Assignment", on_delete=models.CASCADE, related_name="judgment"
    )
    # Denormalised from the assignment so that exports and statistics read one table. No single-column
    # indexes: judgment_item, judgment_batch_id (batch, id), judgment_annotator_time and the idempotency
    # key's unique index lead with these columns; fewer indexes, cheaper inserts, and the planner cannot
    # pick a single-column index that then filters an annotator's whole history.
    item = models.ForeignKey(
        "batches.Item", on_delete=models.CASCADE, related_name="judgments", db_index=False
    )
    batch = models.ForeignKey(
        "batches.Batch", on_delete=models.CASCADE, related_name="judgments", db_index=False
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgments", db_index=False
    )
    track = models.CharField(max_length=16, choices=Track.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices)

    # Pairwise: the preferred response and by how much.
    chosen = models.ForeignKey(
        "batches.Response", on_delete=models.PROTECT, null=True, blank=True, related_name="chosen_in"
    )
    rejected = models.ForeignKey(
        "batches.Response", on_delete=models.PROTECT, null=True, blank=True, related_name="rejected_in"
    )
    strength = models.CharField(max_length=32, choices=Strength.choices, blank=True, default="")
    # Ranking: response ids, best first.
    ranking = models.JSONField(null=True, blank=True)
    # Safety track: {"<response id>": "safe" | "unsafe"} for every response, and the derived bin (pairwise).
    safety_labels = models.JSONField(null=True, blank=True)
    safety_bin = models.CharField(max_length=32, choices=SafetyBin.choices, blank=True, default="")
    flagged = models.BooleanField(
        default=False, help_text="Chosen response unsafe while the other is safe: kept, left out of exports."
    )
    position_chosen = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Pairwise: where the chosen response was shown (0 = left)."
    )

    rationale = models.TextField(blank=True, max_length=5000)
    time_spent_ms = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64)
    guidelines_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"], name="judgment_unique_idempotency_key"
            ),
            models.CheckConstraint(condition=in_choices("track", Track), name="judgment_track_valid"),
            models.CheckConstraint(
                condition=Q(strength="") | in_choices("strength", Strength),
                name="judgment_strength_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(mode=Mode.PAIRWISE)
                    & Q(chosen__isnull=False)
                    & Q(rejected__isnull=False)
                    & ~Q(chosen=models.F("rejected"))
                    & ~Q(strength="")
                    & Q(ranking__isnull=True)
                )
                | (
                    Q(mode=Mode.RANKING)
                    & Q(ranking__isnull=False)
                    & Q(chosen__isnull=True)
                    & Q(rejected__isnull=True)
                    & Q(strength="")
                ),
                name="judgment_fields_match_mode",
            ),
            models.CheckConstraint(
                condition=(Q(track=Track.SAFETY) & Q(safety_labels__isnull=False))
                | (Q(track=Track.HELPFULNESS) & Q(safety_labels__isnull=True) & Q(safety_bin="")),
                name="judgment_safety_labels_match_track",
            ),
            models.CheckConstraint(
                condition=Q(safety_bin="") | in_choices("safety_bin", SafetyBin),
                name="judgment_safety_bin_valid",
            ),
            models.CheckConstraint(
                condition=Q(flagged=False) | Q(safety_bin=SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE),
                name="judgment_flagged_only_unsafe_chosen",
            ),
            models.CheckConstraint(condition=Q(time_spent_ms__gte=0), name="judgment_time_nonnegative"),
        ]
        indexes = [
            models.Index(fields=["batch", "id"], name="judgment_batch_id"),
            models.Index(fields=["annotator", "created_at"], name="judgment_annotator_time"),
            models.Index(fields=["item"], name="judgment_item"),
        ]

    def __str__(self) -> str:
        return f"Judgment {self.pk} ({self.mode}, {self.track})"
