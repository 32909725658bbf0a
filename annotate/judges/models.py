"""AI judges: a sampling config plus judging prompts, versioned; runs of a version over a batch; verdicts.

- `Judge` is what admins edit (the head). Every run uses an immutable `JudgeVersion`, a snapshot of the
  judge's sampling config and prompts, published when they changed (services.judge_publish_version). A
  version has its own User of kind "ai", the annotator its judgments are stored under.
- `JudgeRun`: one version over a batch (or a seeded random sample of its items).
- `Verdict`: one answer of the judge on one item, in one of two display orders (0: responses in slot order,
  1: reversed). Both are kept. `(version, item, order)` is unique, so a version judges an item once in each
  order however often a task is delivered or a run is started.
- When both orders of an item are in and agree, the consensus becomes a `judgments.Judgment` of the
  version's AI user (see services.verdicts_materialize), which is what exports and human-vs-AI statistics
  read beside the human judgments.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from annotate.core.choices import Strength, in_choices
from annotate.core.models import TimeStampedModel
from annotate.judges import prompts

JUDGE_NAME = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,63}$",
    "Lower-case letters, digits, '.', '_' and '-' (it appears in dataset rows as ai:<name>@v<version>).",
)


class Judge(TimeStampedModel):
    name = models.CharField(max_length=64, unique=True, validators=[JUDGE_NAME])
    description = models.TextField(blank=True)
    sampling_config = models.ForeignKey(
        "endpoints.SamplingConfig",
        on_delete=models.PROTECT,
        related_name="judges",
        help_text="The endpoint and sampling parameters (a judge usually runs at temperature 0).",
    )
    helpfulness_prompt = models.TextField(
        default=prompts.DEFAULT_HELPFULNESS_PROMPT,
        help_text="Instructions for helpfulness batches. The answer format is appended by the platform.",
    )
    safety_prompt = models.TextField(
        default=prompts.DEFAULT_SAFETY_PROMPT,
        help_text="Instructions for safety batches; the principles below follow them.",
    )
    safety_principles = models.TextField(
        default=prompts.DEFAULT_SAFETY_PRINCIPLES,
        help_text="The constitution the judge labels safety by, one principle per line.",
    )
    json_mode = models.BooleanField(
        default=True,
        help_text='Send response_format {"type": "json_object"}; turn off for servers that refuse it.',
    )
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# The fields a version snapshots: a change to any of them publishes a new version.
VERSIONED_FIELDS = (
    "sampling_config_id",
    "helpfulness_prompt",
    "safety_prompt",
    "safety_principles",
    "json_mode",
)


class JudgeVersion(models.Model):
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    # "<judge name>@v<version>" as it was when published: dataset rows name the source by it.
    label = models.CharField(max_length=100, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judge_version", editable=False
    )
    sampling_config = models.ForeignKey(
        "endpoints.SamplingConfig", on_delete=models.PROTECT, related_name="+"
    )
    helpfulness_prompt = models.TextField()
    safety_prompt = models.TextField()
    safety_principles = models.TextField()
    json_mode = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["judge_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["judge", "version"], name="judgeversion_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="judgeversion_version_positive"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def source(self) -> str:
        return f"ai:{self.label}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class JudgeRun(TimeStampedModel):
    Status = RunStatus

    version = models.ForeignKey(JudgeVersion, on_delete=models.PROTECT, related_name="runs")
    batch = models.ForeignKey("batches.Batch", on_delete=models.CASCADE, related_name="judge_runs")
    sample_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Items drawn at random (seeded); empty for every ready item."
    )
    seed = models.BigIntegerField(help_text="Seed of the sample draw, so that a run can be repeated.")
    items_total = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    triage = models.BooleanField(
        default=False,
        help_text="Send items where the judge and the first human disagree to one more human.",
    )
    triage_ceiling = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(2), MaxValueValidator(50)],
        help_text="Triage never raises an item's wanted judgments above this.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=in_choices("status", RunStatus), name="judgerun_status_valid"),
            models.CheckConstraint(
                condition=Q(triage=False) | Q(triage_ceiling__isnull=False),
                name="judgerun_triage_has_ceiling",
            ),
            models.CheckConstraint(
                condition=Q(sample_size__isnull=True) | Q(sample_size__gte=1), name="judgerun_sample_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk}: {self.version} on batch {self.batch_id}"


class VerdictStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class FailureKind(models.TextChoices):
    NONE = "", "-"
    MALFORMED = "malformed", "Not a JSON answer"
    INVALID = "invalid", "JSON, but not a valid judgment"
    REFUSED = "refused", "The judge refused"
    ENDPOINT = "endpoint", "Endpoint error"
    CANCELLED = "cancelled", "Run cancelled"


class Verdict(models.Model):
    Status = VerdictStatus

    Failure = FailureKind

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="verdicts")
    version = models.ForeignKey(JudgeVersion, on_delete=models.PROTECT, related_name="verdicts")
    item = models.ForeignKey("batches.Item", on_delete=models.CASCADE, related_name="judge_verdicts")
    order = models.PositiveSmallIntegerField(help_text="0: responses shown in slot order; 1: reversed.")
    positions = models.JSONField(help_text="Response ids in the order the judge saw them.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    request_id = models.UUIDField(default=uuid.uuid4, editable=False)

    chosen = models.ForeignKey(
        "batches.Response", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    strength = models.CharField(max_length=32, choices=Strength.choices, blank=True, default="")
    ranking = models.JSONField(null=True, blank=True)
    safety_labels = models.JSONField(null=True, blank=True)
    position_chosen = models.PositiveSmallIntegerField(null=True, blank=True)
    rationale = models.TextField(blank=True)

    raw = models.TextField(blank=True, help_text="The judge's last answer, as it came.")
    failure = models.CharField(max_length=16, choices=Failure.choices, blank=True, default="")
    error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    judged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "item", "order"], name="verdict_unique_version_item_order"
            ),
            models.CheckConstraint(condition=Q(order__in=[0, 1]), name="verdict_order_valid"),
            models.CheckConstraint(
                condition=in_choices("status", VerdictStatus), name="verdict_status_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("failure", FailureKind), name="verdict_failure_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength="") | in_choices("strength", Strength), name="verdict_strength_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="ok") | (Q(judged_at__isnull=False) & Q(failure="")),
                name="verdict_ok_is_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(failure=""), name="verdict_failed_has_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["run", "status"], name="verdict_run_status"),
            models.Index(fields=["item"], name="verdict_item"),
        ]

    def __str__(self) -> str:
        return f"Verdict {self.pk} (item {self.item_id}, order {self.order}, {self.status})"


class TriageDecision(models.Model):
    """A run's comparison of an item's AI judgment with its first human judgment, once per run and item;
    on disagreement the item's wanted judgments went up by one (unless at the run's ceiling)."""

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="triage_decisions")
    item = models.ForeignKey("batches.Item", on_delete=models.CASCADE, related_name="+")
    disagreed = models.BooleanField()
    raised = models.BooleanField(
        help_text="Wanted went up by one (False: agreed, or already at the ceiling)."
    )
    wanted_after = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="triage_unique_run_item"),
            models.CheckConstraint(
                condition=Q(raised=False) | Q(disagreed=True), name="triage_raised_on_disagreement"
            ),
        ]

    def __str__(self) -> str:
        return f"Triage of item {self.item_id} by run {self.run_id}"
