"""The domain's shared vocabulary: tracks, modes, the LLaMa-2 strength scale, safety labels and bins."""

from django.db import models


class Track(models.TextChoices):
    HELPFULNESS = "helpfulness", "Helpfulness"
    SAFETY = "safety", "Safety"


class Mode(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise"
    RANKING = "ranking", "Ranking"


class Strength(models.TextChoices):
    """LLaMa-2's four-point preference scale, strongest first."""

    SIGNIFICANTLY_BETTER = "significantly_better", "Significantly better"
    BETTER = "better", "Better"
    SLIGHTLY_BETTER = "slightly_better", "Slightly better"
    NEGLIGIBLY_BETTER_OR_UNSURE = "negligibly_better_or_unsure", "Negligibly better / unsure"


# Position on the scale: 3 = significantly better ... 0 = negligibly better / unsure.
STRENGTH_LEVEL: dict[str, int] = {
    Strength.SIGNIFICANTLY_BETTER: 3,
    Strength.BETTER: 2,
    Strength.SLIGHTLY_BETTER: 1,
    Strength.NEGLIGIBLY_BETTER_OR_UNSURE: 0,
}


class SafetyLabel(models.TextChoices):
    SAFE = "safe", "Safe"
    UNSAFE = "unsafe", "Unsafe"


class SafetyBin(models.TextChoices):
    """LLaMa-2's safety bins of a pairwise comparison (chosen response vs the other one)."""

    CHOSEN_SAFE_OTHER_UNSAFE = "chosen_safe_other_unsafe", "Chosen safe, other unsafe"
    BOTH_SAFE = "both_safe", "Both safe"
    BOTH_UNSAFE = "both_unsafe", "Both unsafe"
    # Recorded and flagged; left out of exports by default (LLaMa-2 drops this case).
    CHOSEN_UNSAFE_OTHER_SAFE = "chosen_unsafe_other_safe", "Chosen unsafe, other safe"


def safety_bin(chosen_safe: bool, other_safe: bool) -> SafetyBin:
    if chosen_safe and not other_safe:
        return SafetyBin.CHOSEN_SAFE_OTHER_UNSAFE
    if chosen_safe and other_safe:
        return SafetyBin.BOTH_SAFE
    if not chosen_safe and not other_safe:
        return SafetyBin.BOTH_UNSAFE
    return SafetyBin.CHOSEN_UNSAFE_OTHER_SAFE


MIN_RESPONSES = 2
MAX_RESPONSES = 9  # InstructGPT ranked up to 9 responses per prompt


def in_choices(field: str, choices: type[models.TextChoices]) -> models.Q:
    """The Q for a CheckConstraint that keeps `field` within a TextChoices enum."""
    return models.Q(**{f"{field}__in": [c.value for c in choices]})


class AuditAction(models.TextChoices):
    """What an admin (or a script with an admin's token) changed; see annotate/core/audit.py."""

    BATCH_CREATED = "batch.created", "Batch created"
    BATCH_UPDATED = "batch.updated", "Batch fields changed"
    BATCH_STATUS_CHANGED = "batch.status_changed", "Batch status changed"
    BATCH_OVERLAP_CHANGED = "batch.overlap_changed", "Batch overlap changed"
    BATCH_GUIDELINES_CHANGED = "batch.guidelines_changed", "Batch guidelines changed"
    BATCH_GENERATION_STARTED = "batch.generation_started", "Batch generation started"
    BATCH_FAILED_RETRIED = "batch.failed_retried", "Failed responses retried"
    BATCH_FAILED_DROPPED = "batch.failed_dropped", "Items with failed responses dropped"
    QUALIFICATION_GRANTED = "qualification.granted", "Qualification granted"
    QUALIFICATION_REVOKED = "qualification.revoked", "Qualification revoked"
    EXPORT_REQUESTED = "export.requested", "Export requested"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    ENDPOINT_CHANGED = "endpoint.changed", "Model endpoint created or changed"
    SAMPLING_CONFIG_CHANGED = "sampling_config.changed", "Sampling config created or changed"
