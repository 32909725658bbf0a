"""Batches of items to judge, the items (conversations) and their model responses."""

from __future__ import annotations

import hashlib
import uuid

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from annotate.core.choices import MAX_RESPONSES, MIN_RESPONSES, Mode, Track, in_choices
from annotate.core.models import TimeStampedModel


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    GENERATING = "generating", "Generating"
    OPEN = "open", "Open"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


class PromptSource(models.TextChoices):
    IMPORTED = "imported", "Imported conversations"
    LIVE = "live", "Live prompts written by annotators"


class AdaptiveRule(models.TextChoices):
    """When adaptive overlap asks for one more judgment of an item whose wanted judgments are all in."""

    UNTIL_UNANIMOUS = "unanimous", "While the answers are not unanimous"
    UNTIL_MAJORITY = "majority", "While no answer has a strict majority"


class Batch(TimeStampedModel):
    Status = BatchStatus

    AdaptiveRule = AdaptiveRule

    PromptSource = PromptSource

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    track = models.CharField(max_length=16, choices=Track.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PAIRWISE)
    responses_per_item = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(MIN_RESPONSES), MaxValueValidator(MAX_RESPONSES)],
        help_text="K: 2 for pairwise, 2..9 for ranking.",
    )
    overlap = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Judgments wanted per item.",
    )
    prompt_source = models.CharField(
        max_length=16, choices=PromptSource.choices, default=PromptSource.IMPORTED
    )
    sampling_configs = models.ManyToManyField(
        "endpoints.SamplingConfig",
        blank=True,
        related_name="batches",
        help_text="Where generations come from.",
    )
    guidelines = models.TextField(
        blank=True, help_text="Markdown shown to annotators before their first item."
    )
    guidelines_version = models.PositiveIntegerField(default=1)
    lease_minutes = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of claims that serve a gold item, when the batch has gold items.",
    )
    # Adaptive overlap: an item whose first judgments disagree gets one more, up to the ceiling.
    adaptive_overlap = models.BooleanField(
        default=False,
        help_text="Ask for more judgments of an item when its first ones disagree (up to the ceiling).",
    )
    overlap_ceiling = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Adaptive overlap: the most judgments one item may get.",
    )
    adaptive_rule = models.CharField(
        max_length=16, choices=AdaptiveRule.choices, default=AdaptiveRule.UNTIL_MAJORITY
    )
    # Annotator flags (docs/quality.md): under either threshold, with enough evidence, one is flagged.
    flag_min_agreement = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag annotators whose agreement with the majority of the others is below this.",
    )
    flag_min_gold_accuracy = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag annotators whose accuracy on gold items is below this.",
    )
    flag_min_evidence = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="Judgments (compared with a majority, or of gold items) needed before a flag is raised.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(condition=in_choices("track", Track), name="batch_track_valid"),
            models.CheckConstraint(
                condition=(Q(mode=Mode.PAIRWISE) & Q(responses_per_item=2))
                | (
                    Q(mode=Mode.RANKING)
                    & Q(responses_per_item__gte=MIN_RESPONSES)
                    & Q(responses_per_item__lte=MAX_RESPONSES)
                ),
                name="batch_k_matches_mode",
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="batch_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="batch_lease_positive"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="batch_gold_rate_range"
            ),
            models.CheckConstraint(condition=in_choices("status", BatchStatus), name="batch_status_valid"),
            models.CheckConstraint(
                condition=in_choices("adaptive_rule", AdaptiveRule), name="batch_adaptive_rule_valid"
            ),
            models.CheckConstraint(
                condition=Q(adaptive_overlap=False) | Q(overlap_ceiling__gte=F("overlap")),
                name="batch_overlap_ceiling_covers_overlap",
            ),
            models.CheckConstraint(
                condition=Q(flag_min_agreement__gte=0)
                & Q(flag_min_agreement__lte=1)
                & Q(flag_min_gold_accuracy__gte=0)
                & Q(flag_min_gold_accuracy__lte=1)
                & Q(flag_min_evidence__gte=1),
                name="batch_flag_thresholds_range",
            ),
            models.CheckConstraint(
                condition=in_choices("prompt_source", PromptSource), name="batch_prompt_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        k = self.responses_per_item
        if self.mode == Mode.PAIRWISE and k != 2:
            raise ValidationError(
                {"responses_per_item": "A pairwise batch has exactly 2 responses per item."}
            )
        if self.mode == Mode.RANKING and not (MIN_RESPONSES <= (k or 0) <= MAX_RESPONSES):
            message = f"A ranking batch has {MIN_RESPONSES} to {MAX_RESPONSES} responses per item."
            raise ValidationError({"responses_per_item": message})
        if self.adaptive_overlap and (self.overlap_ceiling or 0) < (self.overlap or 0):
            raise ValidationError(
                {"overlap_ceiling": "With adaptive overlap, the ceiling must be at least the overlap."}
            )


def conversation_hash(conversation: list[dict[str, str]], dialogue_id: uuid.UUID | None = None) -> str:
    """A stable hash of a conversation's roles and texts, for de-duplicating prompts within a batch.

    A live turn hashes its dialogue's id too: two annotators may write the same prompt, and each judges
    their own (only imported prompts are de-duplicated)."""
    canonical: list[object] = [{"role": m["role"], "content": m["content"]} for m in conversation]
    if dialogue_id is not None:
        canonical.append({"dialogue": str(dialogue_id)})
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


class DialogueStatus(models.TextChoices):
    OPEN = "open", "Open"
    ENDED = "ended", "Ended"


class Dialogue(models.Model):
    """A live conversation an annotator writes turn by turn in a live batch. Each turn is an Item (its
    `turn_index` counts from 0) whose conversation holds every earlier turn, so an item alone is the
    full context a trainer needs."""

    Status = DialogueStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="dialogues")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dialogues")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # The first prompt's form carries a key: a double-submitted prompt starts one dialogue.
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["author", "idempotency_key"], name="dialogue_unique_idempotency_key"
            ),
            models.CheckConstraint(
                condition=in_choices("status", DialogueStatus), name="dialogue_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=DialogueStatus.OPEN, ended_at__isnull=True)
                | Q(status=DialogueStatus.ENDED, ended_at__isnull=False),
                name="dialogue_ended_has_time",
            ),
        ]
        indexes = [models.Index(fields=["author", "batch", "created_at"], name="dialogue_author_batch")]

    def __str__(self) -> str:
        return f"Dialogue {self.pk} ({self.status})"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Waiting for responses"
    READY = "ready", "Ready"
    DROPPED = "dropped", "Dropped"


class ItemSource(models.TextChoices):
    IMPORTED = "imported", "Imported"
    LIVE = "live", "Written live"
    DEMO = "demo", "Demo data"


class Item(models.Model):
    """One conversation to judge: the messages before the judged assistant turn.

    `wanted` and `taken` make claiming cheap: `wanted` is the judgments this item needs (the batch overlap,
    or more under adaptive overlap) and `taken` counts its active and submitted assignments. Both change only
    in the services that lock the item row, so the partial index of open items stays exact.
    """

    Status = ItemStatus

    Source = ItemSource

    # No single-column index: item_batch_status (batch, status) and the claim's partial indexes lead with it.
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items", db_index=False)
    conversation = models.JSONField(
        help_text="List of {role, content} messages; the last is the user's turn."
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORTED)
    external_id = models.CharField(max_length=200, blank=True, help_text="The id the import file gave it.")
    content_hash = models.CharField(max_length=64, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_expected = models.JSONField(
        null=True,
        blank=True,
        help_text='Expected answer of a gold item, e.g. {"slot": 0, "min_strength": "better"}.',
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dialogue = models.ForeignKey(
        Dialogue,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="turns",
        help_text="Live prompts: the dialogue this item is a turn of.",
    )
    turn_index = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    wanted = models.PositiveSmallIntegerField(default=1)
    taken = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "content_hash"], name="item_unique_conversation_per_batch"
            ),
            models.CheckConstraint(condition=Q(taken__lte=F("wanted")), name="item_taken_within_wanted"),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_expected__isnull=False), name="item_gold_has_expected"
            ),
            models.CheckConstraint(condition=in_choices("status", ItemStatus), name="item_status_valid"),
            # One item per turn of a live dialogue: continuing twice (a double click, two tabs) adds one.
            models.UniqueConstraint(
                fields=["dialogue", "turn_index"],
                condition=Q(dialogue__isnull=False),
                name="item_unique_dialogue_turn",
            ),
            models.CheckConstraint(
                condition=Q(source=ItemSource.LIVE, dialogue__isnull=False)
                | (~Q(source=ItemSource.LIVE) & Q(dialogue__isnull=True, turn_index=0)),
                name="item_live_has_dialogue",
            ),
        ]
        indexes = [
            # Claiming scans only the open items of one batch in id order: the index holds nothing else,
            # so its cost does not grow with the items already full.
            # Claiming scans only the open items of one batch in id order: these indexes hold nothing
            # else, so a claim's cost does not grow with the items already full. Gold items have their own
            # so that interleaving them at the batch's rate never scans the regular ones.
            models.Index(
                fields=["batch", "id"],
                condition=Q(status="ready") & Q(taken__lt=F("wanted")) & Q(is_gold=False),
                name="item_open_for_claim",
            ),
            models.Index(
                fields=["batch", "id"],
                condition=Q(status="ready") & Q(taken__lt=F("wanted")) & Q(is_gold=True),
                name="item_gold_open_for_claim",
            ),
            models.Index(fields=["batch", "status"], name="item_batch_status"),
        ]

    def __str__(self) -> str:
        return f"Item {self.pk} of batch {self.batch_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.content_hash = conversation_hash(self.conversation or [], self.dialogue_id)
        super().save(*args, **kwargs)

    @property
    def last_user_message(self) -> str:
        for message in reversed(self.conversation or []):
            if message.get("role") == "user":
                return str(message.get("content", ""))
        return ""


class ResponseStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class Response(models.Model):
    """One model response to an item, in a fixed slot 0..K-1 (the display order is per assignment)."""

    Status = ResponseStatus

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="responses")
    slot = models.PositiveSmallIntegerField()
    sampling_config = models.ForeignKey(
        "endpoints.SamplingConfig", on_delete=models.PROTECT, null=True, blank=True, related_name="responses"
    )
    model_name = models.CharField(
        max_length=200, blank=True, help_text="Model that wrote it (imported or endpoint)."
    )
    content = models.TextField(blank=True)
    # The sanitized HTML of `content`, rendered once (by the worker or on first view) and reused.
    content_html = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    # When the response was created, last put back to pending, or last had an attempt claimed: the
    # stale-work sweep (endpoints.services.generation_requeue_stale) finds generation that stopped moving.
    touched_at = models.DateTimeField(db_default=Now(), editable=False)
    request_id = models.UUIDField(default=uuid.uuid4, editable=False)

    class Meta:
        ordering = ["item_id", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["item", "slot"], name="response_unique_item_slot"),
            models.CheckConstraint(condition=Q(slot__lt=MAX_RESPONSES), name="response_slot_range"),
            models.CheckConstraint(
                condition=in_choices("status", ResponseStatus), name="response_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="ok") | Q(generated_at__isnull=False), name="response_ok_has_generated_at"
            ),
        ]
        indexes = [models.Index(fields=["status"], condition=~Q(status="ok"), name="response_not_ok")]

    def __str__(self) -> str:
        return f"Response {self.slot} of item {self.item_id}"
