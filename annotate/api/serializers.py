"""Input and output serializers, one pair per operation (HackSoft style).

Inputs only parse and bound what comes in (types, lengths, ranges; unknown fields are refused); the
rules about what the values mean stay in the services. Outputs are explicit field lists: nothing reaches
a client because a model grew a field. Annotators' views of an item never carry model names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotate.accounts.models import User
from annotate.assignments.models import AssignmentFlag, AssignmentStatus
from annotate.batches.models import Batch, BatchStatus, ItemStatus, PromptSource, ResponseStatus
from annotate.core.choices import MAX_RESPONSES, MIN_RESPONSES, AuditAction, Mode, SafetyLabel, Track
from annotate.endpoints.models import ModelEndpoint, SamplingConfig
from annotate.exports.models import ExportFormat, ExportSchema, ExportStatus
from annotate.judgments.services import IDEMPOTENCY_KEY, MAX_RATIONALE, MAX_TIME_SPENT_MS

MAX_ID = 2**63 - 1
MAX_TEXT = 100_000
MAX_JSON_BYTES = 64_000


def IdField(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class InputSerializer(serializers.Serializer):
    """Refuses fields it does not declare, naming each, instead of silently dropping them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown[:20]})
        return super().to_internal_value(data)


def bounded_json(value: Any, field: str) -> Any:
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise serializers.ValidationError(f"{field} is limited to {MAX_JSON_BYTES} bytes of JSON.")
    return value


# --- Errors (documentation only: the exception handler writes them) ---------------------------------


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. invalid, not_found, already_submitted.")
    message = serializers.CharField(help_text="What went wrong, for a human.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per field ("parent.child" for nested fields); empty when no field is at fault.',
    )


class Error(serializers.Serializer):
    error = ErrorDetail()


# --- Tokens and the current user -------------------------------------------------------------------


class TokenCreateInput(InputSerializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True, help_text="Leave out for no expiry."
    )


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(source="token_key", help_text="The token's first characters.")
    created_at = serializers.DateTimeField(source="created")
    expires_at = serializers.DateTimeField(source="expiry", allow_null=True)


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(help_text="The token itself. Shown this once: store it now.")


class QualificationOutput(serializers.Serializer):
    track = serializers.ChoiceField(choices=Track.choices)
    granted_at = serializers.DateTimeField()
    consented_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    usable = serializers.BooleanField(source="is_usable")


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    pseudonym = serializers.CharField()
    is_batch_admin = serializers.BooleanField()
    is_exporter = serializers.BooleanField()
    tracks = serializers.ListField(
        child=serializers.ChoiceField(choices=Track.choices), help_text="Tracks you may annotate now."
    )
    qualifications = QualificationOutput(many=True)
    auth = serializers.ChoiceField(choices=["token", "session"], help_text="How this request authenticated.")


class SafetyConsentInput(InputSerializer):
    agree = serializers.BooleanField(help_text="true: you agree to see potentially harmful content.")


# --- Endpoints and sampling configs ----------------------------------------------------------------


class EndpointInput(InputSerializer):
    name = serializers.CharField(max_length=100)
    base_url = serializers.CharField(max_length=500, help_text="http(s) URL of the OpenAI-compatible API.")
    model = serializers.CharField(max_length=200)
    api_key_env = serializers.CharField(
        max_length=128, required=False, allow_blank=True, help_text="Name of the variable holding the key."
    )
    timeout_s = serializers.FloatField(min_value=0.1, max_value=3600, required=False)
    max_concurrency = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
    requests_per_minute = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True
    )
    enabled = serializers.BooleanField(required=False)


class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    base_url = serializers.CharField()
    model = serializers.CharField()
    api_key_env = serializers.CharField()
    timeout_s = serializers.FloatField()
    max_concurrency = serializers.IntegerField()
    requests_per_minute = serializers.IntegerField(allow_null=True)
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointTestOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    latency_ms = serializers.IntegerField(allow_null=True)
    content = serializers.CharField(allow_blank=True)


class SamplingConfigInput(InputSerializer):
    endpoint = serializers.PrimaryKeyRelatedField(queryset=ModelEndpoint.objects.all(), pk_field=IdField())
    label = serializers.CharField(max_length=100)
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False)
    top_p = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    max_tokens = serializers.IntegerField(min_value=1, max_value=262_144, required=False)
    system_prompt = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    seed = serializers.IntegerField(min_value=-MAX_ID, max_value=MAX_ID, required=False, allow_null=True)
    extra_params = serializers.DictField(required=False, help_text='e.g. {"presence_penalty": 0.5}')
    enabled = serializers.BooleanField(required=False)

    def validate_extra_params(self, value: dict[str, Any]) -> dict[str, Any]:
        return bounded_json(value, "extra_params")


class SamplingConfigOutput(serializers.Serializer):
    id = serializers.IntegerField()
    endpoint = serializers.IntegerField(source="endpoint_id")
    endpoint_name = serializers.CharField(source="endpoint.name")
    label = serializers.CharField()
    temperature = serializers.FloatField()
    top_p = serializers.FloatField()
    max_tokens = serializers.IntegerField()
    system_prompt = serializers.CharField(allow_blank=True)
    seed = serializers.IntegerField(allow_null=True)
    extra_params = serializers.DictField()
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- Batches ---------------------------------------------------------------------------------------


class BatchCreateInput(InputSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    track = serializers.ChoiceField(choices=Track.choices)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    responses_per_item = serializers.IntegerField(
        min_value=MIN_RESPONSES, max_value=MAX_RESPONSES, required=False
    )
    overlap = serializers.IntegerField(min_value=1, max_value=50, required=False)
    prompt_source = serializers.ChoiceField(choices=PromptSource.choices, required=False)
    sampling_configs = serializers.ListField(
        child=serializers.PrimaryKeyRelatedField(queryset=SamplingConfig.objects.all(), pk_field=IdField()),
        required=False,
        max_length=100,
        help_text="Ids of the sampling configs that generate the responses.",
    )
    guidelines = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    lease_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, required=False)
    gold_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)


class BatchUpdateInput(InputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
    guidelines = serializers.CharField(
        max_length=MAX_TEXT, required=False, allow_blank=True, help_text="A change makes a new version."
    )
    overlap = serializers.IntegerField(min_value=1, max_value=50, required=False)
    sampling_configs = serializers.ListField(
        child=serializers.PrimaryKeyRelatedField(queryset=SamplingConfig.objects.all(), pk_field=IdField()),
        required=False,
        max_length=100,
        help_text="Ids of the sampling configs that generate the responses.",
    )
    lease_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, required=False)
    gold_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)


class BatchOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    track = serializers.ChoiceField(choices=Track.choices)
    mode = serializers.ChoiceField(choices=Mode.choices)
    responses_per_item = serializers.IntegerField()
    overlap = serializers.IntegerField()
    prompt_source = serializers.ChoiceField(choices=PromptSource.choices)
    status = serializers.ChoiceField(choices=BatchStatus.choices)
    sampling_configs = serializers.SerializerMethodField()
    guidelines_version = serializers.IntegerField()
    lease_minutes = serializers.IntegerField()
    gold_rate = serializers.FloatField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    opened_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_sampling_configs(self, batch: Batch) -> list[int]:
        return sorted(c.pk for c in batch.sampling_configs.all())


class GenerationProgressOutput(serializers.Serializer):
    responses = serializers.IntegerField()
    pending = serializers.IntegerField()
    ok = serializers.IntegerField()
    failed = serializers.IntegerField()
    items_waiting = serializers.IntegerField()
    percent = serializers.FloatField()


class BatchProgressOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=BatchStatus.choices)
    items = serializers.IntegerField()
    items_ready = serializers.IntegerField()
    items_dropped = serializers.IntegerField()
    judgments_done = serializers.IntegerField()
    judgments_wanted = serializers.IntegerField()
    active_leases = serializers.IntegerField()
    percent = serializers.FloatField()
    generation = GenerationProgressOutput()


class GenerationStartedOutput(serializers.Serializer):
    responses_created = serializers.IntegerField()
    items_ready = serializers.IntegerField()
    items_waiting = serializers.IntegerField()
    opened = serializers.BooleanField()
    batch = BatchOutput()


class CountOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many responses were retried or items dropped.")
    batch = BatchOutput()


class GuidelinesOutput(serializers.Serializer):
    batch = serializers.IntegerField()
    version = serializers.IntegerField()
    guidelines = serializers.CharField(allow_blank=True, help_text="Markdown.")
    must_read = serializers.BooleanField(help_text="true until you acknowledge this version (POST).")


class GuidelinesAckInput(InputSerializer):
    version = IdField(help_text="The version you read (from GET).")


class ImportErrorOutput(serializers.Serializer):
    line = serializers.IntegerField()
    field = serializers.CharField()
    message = serializers.CharField()


class ImportReportOutput(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Non-blank lines read.")
    created = serializers.IntegerField(help_text="Items added.")
    duplicates = serializers.IntegerField(help_text="Conversations the batch already had (skipped).")
    blank_lines = serializers.IntegerField()
    errors = ImportErrorOutput(many=True)
    errors_total = serializers.IntegerField()
    refused = serializers.BooleanField()


# --- Items and responses (batch admins) ------------------------------------------------------------


class MessageOutput(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(allow_blank=True)


class ResponseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slot = serializers.IntegerField()
    sampling_config = serializers.IntegerField(source="sampling_config_id", allow_null=True)
    model_name = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ResponseStatus.choices)
    content = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    latency_ms = serializers.IntegerField(allow_null=True)
    prompt_tokens = serializers.IntegerField(allow_null=True)
    completion_tokens = serializers.IntegerField(allow_null=True)
    generated_at = serializers.DateTimeField(allow_null=True)


class ItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    batch = serializers.IntegerField(source="batch_id")
    conversation = MessageOutput(many=True)
    source = serializers.CharField()
    external_id = serializers.CharField(allow_blank=True)
    metadata = serializers.JSONField()
    is_gold = serializers.BooleanField()
    gold_expected = serializers.JSONField(allow_null=True)
    status = serializers.ChoiceField(choices=ItemStatus.choices)
    wanted = serializers.IntegerField()
    taken = serializers.IntegerField()
    dialogue_id = serializers.UUIDField(allow_null=True)
    turn_index = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    responses = ResponseOutput(many=True, source="responses.all")


class ItemFilter(InputSerializer):
    batch = IdField(required=False)
    status = serializers.ChoiceField(choices=ItemStatus.choices, required=False)


# --- Annotating: assignments and judgments ---------------------------------------------------------


class ShownResponseOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text="Use this id in `chosen`, `ranking` and `safety_labels`.")
    label = serializers.CharField(help_text="A, B, C ... in the order shown.")
    position = serializers.IntegerField(help_text="0 = shown first (left).")
    content = serializers.CharField(allow_blank=True, help_text="Markdown as the model wrote it (untrusted).")
    content_html = serializers.CharField(allow_blank=True, help_text="Rendered and sanitized HTML.")


class AssignmentSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    batch = serializers.IntegerField(source="batch_id")
    item = serializers.IntegerField(source="item_id")
    annotator = serializers.CharField(source="annotator.pseudonym")
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    skip_reason = serializers.CharField(allow_blank=True)
    flag = serializers.CharField(allow_blank=True)
    flag_note = serializers.CharField(allow_blank=True)


class AssignmentOutput(AssignmentSummaryOutput):
    """An assignment as its annotator judges it: the conversation and the responses in the order to show
    them. Model names, sampling configs and slots are deliberately absent."""

    mode = serializers.ChoiceField(choices=Mode.choices)
    track = serializers.ChoiceField(choices=Track.choices)
    guidelines_version = serializers.IntegerField()
    lease_expired = serializers.BooleanField()
    conversation = MessageOutput(many=True)
    responses = ShownResponseOutput(many=True)


class AssignmentFilter(InputSerializer):
    batch = IdField(required=False)
    status = serializers.ChoiceField(choices=AssignmentStatus.choices, required=False)


class JudgmentSubmitInput(InputSerializer):
    idempotency_key = serializers.RegexField(
        IDEMPOTENCY_KEY,
        required=False,
        help_text="8-64 characters [A-Za-z0-9_.:-]. Left out: derived from the Idempotency-Key header.",
    )
    chosen = IdField(required=False, allow_null=True, help_text="Pairwise: the id of the better response.")
    strength = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="Pairwise: significantly_better, better, slightly_better or negligibly_better_or_unsure.",
    )
    ranking = serializers.ListField(
        child=IdField(),
        required=False,
        allow_null=True,
        max_length=MAX_RESPONSES,
        help_text="Ranking: every response id, best first.",
    )
    safety_labels = serializers.DictField(
        child=serializers.ChoiceField(choices=SafetyLabel.choices),
        required=False,
        help_text='Safety track: {"<response id>": "safe" | "unsafe"} for every response.',
    )
    rationale = serializers.CharField(max_length=MAX_RATIONALE, required=False, allow_blank=True)
    time_spent_ms = serializers.IntegerField(min_value=0, max_value=MAX_TIME_SPENT_MS, required=False)
    confirm_unsafe_choice = serializers.BooleanField(
        required=False, help_text="Safety: confirm preferring a response labelled unsafe over a safe one."
    )

    def validate_safety_labels(self, value: dict[str, str]) -> dict[int, str]:
        if len(value) > MAX_RESPONSES:
            raise serializers.ValidationError(f"At most {MAX_RESPONSES} labels.")
        labels: dict[int, str] = {}
        for key, label in value.items():
            if not (key.isascii() and key.isdigit() and len(key) < 19):
                raise serializers.ValidationError("Keys are response ids.")
            labels[int(key)] = label
        return labels


class SkipInput(InputSerializer):
    reason = serializers.CharField(max_length=500, help_text="Why you skip the item.")
    flag = serializers.ChoiceField(
        choices=[f.value for f in AssignmentFlag if f.value], required=False, help_text="Also flag the item."
    )
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class FlagInput(InputSerializer):
    flag = serializers.ChoiceField(choices=[f.value for f in AssignmentFlag if f.value])
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class JudgmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField(source="assignment_id")
    item = serializers.IntegerField(source="item_id")
    batch = serializers.IntegerField(source="batch_id")
    annotator = serializers.CharField(source="annotator.pseudonym")
    track = serializers.ChoiceField(choices=Track.choices)
    mode = serializers.ChoiceField(choices=Mode.choices)
    chosen = serializers.IntegerField(source="chosen_id", allow_null=True)
    rejected = serializers.IntegerField(source="rejected_id", allow_null=True)
    strength = serializers.CharField(allow_blank=True)
    ranking = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    safety_labels = serializers.DictField(child=serializers.CharField(), allow_null=True)
    safety_bin = serializers.CharField(allow_blank=True)
    flagged = serializers.BooleanField()
    position_chosen = serializers.IntegerField(allow_null=True)
    rationale = serializers.CharField(allow_blank=True)
    time_spent_ms = serializers.IntegerField()
    guidelines_version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class JudgmentFilter(InputSerializer):
    batch = IdField(required=False)
    track = serializers.ChoiceField(choices=Track.choices, required=False)
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    annotator = serializers.CharField(max_length=32, required=False, help_text="An annotator's pseudonym.")
    created_after = serializers.DateTimeField(required=False, help_text="Inclusive, ISO 8601.")
    created_before = serializers.DateTimeField(required=False, help_text="Exclusive, ISO 8601.")


# --- Annotators ------------------------------------------------------------------------------------


class AnnotatorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    pseudonym = serializers.CharField()
    kind = serializers.ChoiceField(choices=User.Kind.choices)
    is_active = serializers.BooleanField()
    is_staff = serializers.BooleanField()
    is_exporter = serializers.BooleanField()
    qualifications = QualificationOutput(many=True, source="qualifications.all")


class AnnotatorFilter(InputSerializer):
    track = serializers.ChoiceField(
        choices=Track.choices, required=False, help_text="Qualified (not revoked)."
    )
    kind = serializers.ChoiceField(choices=User.Kind.choices, required=False)


class QualificationGrantInput(InputSerializer):
    track = serializers.ChoiceField(choices=Track.choices)


# --- Exports ---------------------------------------------------------------------------------------


class ExportCreateInput(InputSerializer):
    schema = serializers.ChoiceField(choices=ExportSchema.choices)
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    spec = serializers.DictField(
        required=False,
        help_text="Filter spec: batches, track, created_from, created_until, include_gold, ai, "
        "exclude_flagged_annotators, aggregation, min_agreement, min_judgments, drop_negligible, "
        "keep_unsafe_chosen, margin.",
    )

    def validate_spec(self, value: dict[str, Any]) -> dict[str, Any]:
        return bounded_json(value, "spec")


class ExportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ExportStatus.choices)
    schema = serializers.ChoiceField(choices=ExportSchema.choices)
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    spec = serializers.DictField()
    row_count = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    manifest = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ExportFilter(InputSerializer):
    status = serializers.ChoiceField(choices=ExportStatus.choices, required=False)


class DownloadFilter(InputSerializer):
    part = serializers.ChoiceField(choices=["data", "manifest", "readme"], required=False)


# --- Audit log -------------------------------------------------------------------------------------


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    actor_username = serializers.CharField(help_text="Empty for changes the system made by itself.")
    action = serializers.ChoiceField(choices=AuditAction.choices)
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_repr = serializers.CharField()
    details = serializers.JSONField()
    request_id = serializers.CharField()


class AuditEventFilter(InputSerializer):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    object_type = serializers.CharField(max_length=64, required=False, help_text="e.g. batches.batch")
    object_id = serializers.CharField(max_length=64, required=False)
    actor = IdField(required=False, help_text="The acting user's id.")
    created_after = serializers.DateTimeField(required=False, help_text="Inclusive, ISO 8601.")
    created_before = serializers.DateTimeField(required=False, help_text="Exclusive, ISO 8601.")
