"""Export jobs: a dataset built by a Celery worker from a filter spec."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.core.choices import in_choices


class ExportSchema(models.TextChoices):
    TRL_PREFERENCE = "trl_preference", "TRL preference (prompt / chosen / rejected)"
    PAIRWISE_FLAT = "pairwise_flat", "Flat pairwise rows"
    JUDGMENTS_RAW = "judgments_raw", "Raw judgments"


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    PARQUET = "parquet", "Parquet"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    Schema = ExportSchema

    Format = ExportFormat

    Status = ExportStatus

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="export_jobs"
    )
    spec = models.JSONField(default=dict, help_text="Filter spec: batches, track, time range, options.")
    schema = models.CharField(max_length=32, choices=Schema.choices)
    format = models.CharField(max_length=16, choices=Format.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to="exports/", blank=True, max_length=300)
    manifest = models.JSONField(null=True, blank=True)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=in_choices("schema", ExportSchema), name="export_schema_valid"),
            models.CheckConstraint(condition=in_choices("format", ExportFormat), name="export_format_valid"),
            models.CheckConstraint(condition=in_choices("status", ExportStatus), name="export_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="done") | (Q(row_count__isnull=False) & ~Q(sha256="")),
                name="export_done_has_result",
            ),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.schema}, {self.format}, {self.status})"
