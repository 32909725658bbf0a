"""AI judge runs (batch admins): start one, follow its progress, and read the judge measured against the
humans of the batch."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api.permissions import IsBatchAdmin
from annotate.api.serializers import InputSerializer
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors
from annotate.core.choices import Mode, Track
from annotate.judges import selectors
from annotate.judges.models import JudgeRun, RunStatus
from annotate.judges.services import MAX_SAMPLE, judge_run_start

TAGS = ["judges"]


class JudgeRunCreateInput(InputSerializer):
    judge = serializers.IntegerField(min_value=1, help_text="The judge; its current version is used.")
    batch = serializers.IntegerField(min_value=1)
    sample_size = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SAMPLE,
        required=False,
        allow_null=True,
        help_text="Judge a random sample of this many ready items; left out = every ready item.",
    )
    seed = serializers.IntegerField(
        min_value=0,
        max_value=2**62 - 1,
        required=False,
        allow_null=True,
        help_text="Seed of the sample draw (chosen at random and stored when left out).",
    )
    triage = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Send items where the judge and the first human disagree to one more human.",
    )
    triage_ceiling = serializers.IntegerField(
        min_value=2, max_value=50, required=False, allow_null=True,
        help_text="Triage never raises an item's wanted judgments above this (default: overlap + 1).",
    )  # fmt: skip


class VerdictCounts(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    ok = serializers.IntegerField()
    failed = serializers.IntegerField()


class JudgeRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    judge = serializers.IntegerField()
    judge_version = serializers.IntegerField()
    source = serializers.CharField(help_text="ai:<judge>@v<version>, as in the exports' source column.")
    batch = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    sample_size = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField()
    items_total = serializers.IntegerField()
    verdicts = VerdictCounts(help_text="Two per item: one per display order.")
    failures = serializers.DictField(
        child=serializers.IntegerField(), help_text="Failed verdicts by kind: malformed, invalid, refused..."
    )
    percent = serializers.FloatField()
    ai_judgments = serializers.IntegerField(
        help_text="Items whose two verdicts agreed and became a judgment."
    )
    triage = serializers.BooleanField()
    triage_ceiling = serializers.IntegerField(allow_null=True)
    triage_raised = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class AlphaOutput(serializers.Serializer):
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's alpha.")
    agreement = serializers.FloatField(allow_null=True, help_text="Plain agreement.")
    units = serializers.IntegerField()


class AgreementOutput(serializers.Serializer):
    side = AlphaOutput()
    signed_strength = AlphaOutput()
    per_verdict_side_agreement = serializers.FloatField(allow_null=True)


class ConsistencyOutput(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True)
    consistent = serializers.IntegerField()
    units = serializers.IntegerField()


class PositionBiasOutput(serializers.Serializer):
    expected = serializers.FloatField(allow_null=True)
    judge_first_shown_wins = serializers.FloatField(allow_null=True)
    humans_first_shown_wins = serializers.FloatField(allow_null=True)
    judge_verdicts = serializers.IntegerField()
    human_judgments = serializers.IntegerField()


class LengthBiasOutput(serializers.Serializer):
    judge_longer_preferred = serializers.FloatField(allow_null=True)
    humans_longer_preferred = serializers.FloatField(allow_null=True)
    judge_pairs = serializers.IntegerField()
    human_pairs = serializers.IntegerField()


class SafetyOutput(AlphaOutput):
    confusion = serializers.JSONField(help_text="{human label: {judge label: responses}}.")


class JudgeStatsOutput(serializers.Serializer):
    batch = serializers.IntegerField()
    track = serializers.ChoiceField(choices=Track.choices)
    mode = serializers.ChoiceField(choices=Mode.choices)
    judge_version = serializers.IntegerField()
    source = serializers.CharField()
    items_judged = serializers.IntegerField()
    items_with_human_judgments = serializers.IntegerField()
    human_judgments = serializers.IntegerField()
    units_compared = serializers.IntegerField()
    agreement = AgreementOutput()
    position_consistency = ConsistencyOutput()
    position_bias = PositionBiasOutput()
    length_bias = LengthBiasOutput()
    safety = SafetyOutput(allow_null=True)


class JudgeRunOutputFromRun(JudgeRunOutput):
    def to_representation(self, instance: JudgeRun) -> dict[str, Any]:
        return super().to_representation(selectors.judge_run_to_dict(instance))


class JudgeRunListView(ListApiView):
    permission_classes = [IsBatchAdmin]
    output_serializer = JudgeRunOutputFromRun
    orderings = {"created_at": "created_at", "id": "id"}
    default_ordering = "-created_at"

    def get_queryset(self) -> QuerySet[JudgeRun]:
        return selectors.judge_runs_visible_to(self.request.user)

    @extend_schema(
        operation_id="judge_runs_list",
        tags=TAGS,
        summary="Judging runs, newest first",
        responses={200: paginated("PaginatedJudgeRunList", JudgeRunOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()

    @extend_schema(
        operation_id="judge_runs_create",
        tags=TAGS,
        summary="Start a run of a judge over a batch (or a seeded sample); workers judge each item twice",
        request=JudgeRunCreateInput,
        responses={201: JudgeRunOutput, **write_errors(404, 409)},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(JudgeRunCreateInput)
        run = judge_run_start(
            judge_id=data["judge"],
            batch_id=data["batch"],
            user=request.user,
            sample_size=data.get("sample_size"),
            seed=data.get("seed"),
            triage=data.get("triage", False),
            triage_ceiling=data.get("triage_ceiling"),
        )
        return Response(JudgeRunOutputFromRun(run).data, status=201)


class JudgeRunScoped:
    lookup_url_kwarg = "run_id"
    request: Request

    def get_queryset(self) -> QuerySet[JudgeRun]:
        return selectors.judge_runs_visible_to(self.request.user)


class JudgeRunDetailView(JudgeRunScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="judge_runs_retrieve",
        tags=TAGS,
        summary="A run's progress: verdicts by status, failures by kind, judgments stored",
        responses={200: JudgeRunOutput, **errors(404)},
    )
    def get(self, request: Request, run_id: int) -> Response:
        return Response(JudgeRunOutputFromRun(self.get_object()).data)


class JudgeRunStatsView(JudgeRunScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="judge_runs_stats",
        tags=TAGS,
        summary="The run's judge version against the batch's humans: agreement, consistency, biases, safety",
        responses={200: JudgeStatsOutput, **errors(404)},
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = self.get_object()
        return Response(JudgeStatsOutput(selectors.judge_stats(version=run.version, batch=run.batch)).data)
