"""Assignments: an annotator's lease on one item, and what became of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.core.choices import in_choices


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class AssignmentFlag(models.TextChoices):
    NONE = "", "No flag"
    BROKEN = "broken", "Broken (responses missing, cut off or garbled)"
    OFFENSIVE = "offensive", "Offensive content"
    NEEDS_REVIEW = "needs_review", "Needs review"


class Assignment(models.Model):
    Status = AssignmentStatus

    Flag = AssignmentFlag

    # No single-column indexes on these three: the unique (item, annotator), assignment_batch_progress
    # (batch, ...) and assignment_annotator_batch (annotator, batch, ...) lead with them. Measured: with a
    # plain annotator_id index PostgreSQL filtered an annotator's whole history to find one lease by id,
    # and with a plain batch_id index it scanned the batch's assignments for the claim's cursor.
    item = models.ForeignKey(
        "batches.Item", on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    # Copied from the item so that per-batch questions (my lease, my progress) need no join.
    batch = models.ForeignKey(
        "batches.Batch", on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    positions = models.JSONField(help_text="Response ids in the order shown to this annotator.")
    guidelines_version = models.PositiveIntegerField(default=1, help_text="Guidelines version when leased.")
    skip_reason = models.CharField(max_length=500, blank=True)
    flag = models.CharField(max_length=16, choices=Flag.choices, blank=True, default="")
    flag_note = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_unique_item_annotator"),
            # One lease per annotator and batch: two tabs claiming at once collide here and share it.
            models.UniqueConstraint(
                fields=["annotator", "batch"],
                condition=Q(status="active"),
                name="assignment_one_active_per_batch",
            ),
            models.CheckConstraint(
                condition=in_choices("status", AssignmentStatus), name="assignment_status_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("flag", AssignmentFlag), name="assignment_flag_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("leased_at")), name="assignment_expiry_after_lease"
            ),
            models.CheckConstraint(
                condition=Q(status="active") | Q(finished_at__isnull=False) | Q(status="expired"),
                name="assignment_finished_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(status="active"), name="assignment_active_expiry"
            ),
            models.Index(fields=["annotator", "batch", "status"], name="assignment_annotator_batch"),
            # The annotator's cursor in a batch (the highest item they had) is an index-only lookup.
            models.Index(fields=["annotator", "batch", "item"], name="assignment_annotator_cursor"),
            models.Index(fields=["batch", "status", "finished_at"], name="assignment_batch_progress"),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.pk} ({self.status})"


class GuidelinesSeen(models.Model):
    """The guidelines version an annotator last read for a batch; a newer version is shown again once."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "batch"], name="guidelines_seen_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} read v{self.version} of batch {self.batch_id}"


class AnnotatorProgress(models.Model):
    """How many judgments an annotator has submitted in a batch, in all and on their latest day.

    Kept by the submit transaction itself (one upsert), so the figure shown under every item is exact
    and costs one indexed row, however long the annotator's history. "Today" is the calendar day in
    settings.TIME_ZONE; `today` counts the judgments of `day`, so it reads as 0 once `day` is past.
    """

    # The unique (annotator, batch) index serves lookups by annotator; no separate one.
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    batch = models.ForeignKey("batches.Batch", on_delete=models.CASCADE, related_name="+")
    total = models.PositiveIntegerField(default=0)
    day = models.DateField()
    today = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "batch"], name="annotator_progress_unique"),
        ]
        verbose_name_plural = "annotator progress"

    def __str__(self) -> str:
        return f"{self.annotator_id} in batch {self.batch_id}: {self.total}"
