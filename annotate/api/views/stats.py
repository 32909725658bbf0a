"""Quality figures (batch admins): the same stored reports the dashboards show, and recomputing them.

Anyone else gets a 404 for a batch or track report: they may not see these objects at all.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api import selectors as api_selectors
from annotate.api.permissions import IsBatchAdmin
from annotate.api.views.base import ApiView, errors, write_errors
from annotate.batches.models import Batch
from annotate.core.choices import Track
from annotate.quality.selectors import batch_report, report_to_dict, track_report
from annotate.quality.services import quality_enqueue_recompute

TAGS = ["stats"]
TRACK_PARAMETER = OpenApiParameter("track", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(Track.values))


class StatsFigure(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="Null when undefined (too few items).")
    items = serializers.IntegerField(help_text="Items with two or more judgments it rests on.")


class StatsKappaFigure(StatsFigure):
    raters = serializers.IntegerField(help_text="Judgments per item used (the most common count).")


class StatsAgreementOutput(serializers.Serializer):
    agreement_rate = StatsFigure(
        help_text="Pairwise percent agreement on the choice (rankings: the top response)."
    )
    alpha_nominal = StatsFigure(help_text="Krippendorff's alpha, nominal, on the choice.")
    alpha_ordinal = StatsFigure(
        help_text="Krippendorff's alpha, ordinal, on the signed strength -4..4 (pairwise)."
    )
    fleiss_kappa = StatsKappaFigure()
    alpha_ranking = StatsFigure(help_text="Krippendorff's alpha with the Kendall tau distance (rankings).")


class StatsDayOutput(serializers.Serializer):
    day = serializers.DateField()
    judgments = serializers.IntegerField()
    cumulative = serializers.IntegerField()


class StatsLeaderboardRow(serializers.Serializer):
    name = serializers.CharField()
    score = serializers.FloatField(allow_null=True, help_text="Bradley-Terry log-strength, mean 0.")
    lower = serializers.FloatField(allow_null=True)
    upper = serializers.FloatField(allow_null=True)
    rating = serializers.FloatField(allow_null=True, help_text="Elo-like: 1000 + 400 * score / ln(10).")
    rating_lower = serializers.FloatField(allow_null=True)
    rating_upper = serializers.FloatField(allow_null=True)
    comparisons = serializers.IntegerField()
    wins = serializers.FloatField(help_text="Ties count half.")


class StatsLeaderboardOutput(serializers.Serializer):
    rows = StatsLeaderboardRow(many=True, help_text="Best first.")
    names = serializers.ListField(child=serializers.CharField(), help_text="The order of the matrices.")
    win_rate = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="win_rate[i][j]: share of comparisons row i won against column j (ties half).",
    )
    comparisons = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    rounds = serializers.IntegerField(help_text="Bootstrap rounds of the intervals.")
    confidence = serializers.FloatField()
    regularized = serializers.BooleanField(help_text="A model never lost or never won: unbounded score.")
    total_comparisons = serializers.IntegerField()


class StatsAnnotatorStatsOutput(serializers.Serializer):
    annotator_id = serializers.IntegerField()
    annotator = serializers.CharField()
    pseudonym = serializers.CharField()
    judgments = serializers.IntegerField()
    median_time_ms = serializers.IntegerField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True, help_text="With the majority of the others.")
    agreement_n = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    gold_n = serializers.IntegerField()
    left_share = serializers.FloatField(allow_null=True, help_text="Share of choices of the left response.")
    left_n = serializers.IntegerField()
    longer_share = serializers.FloatField(allow_null=True, help_text="Share of choices of the longer one.")
    longer_n = serializers.IntegerField()
    strength_distribution = serializers.DictField(child=serializers.IntegerField())
    flagged = serializers.BooleanField()
    flag_reasons = serializers.ListField(child=serializers.CharField())


class StatsProgressOutput(serializers.Serializer):
    judgments_done = serializers.IntegerField()
    judgments_wanted = serializers.IntegerField()
    percent = serializers.FloatField()


class StatsOutput(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["batch", "track"])
    batch = serializers.IntegerField(allow_null=True)
    track = serializers.ChoiceField(choices=Track.choices)
    computed_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    judgments = serializers.IntegerField(help_text="Human judgments the figures rest on.")
    items = serializers.IntegerField()
    annotators = serializers.IntegerField()
    agreement = StatsAgreementOutput()
    strength_distribution = serializers.DictField(child=serializers.IntegerField())
    safety_bins = serializers.DictField(child=serializers.IntegerField())
    judgments_per_day = StatsDayOutput(many=True)
    leaderboard = StatsLeaderboardOutput(allow_null=True)
    leaderboard_by_config = StatsLeaderboardOutput(allow_null=True)


class BatchStatsOutput(StatsOutput):
    progress = StatsProgressOutput()
    annotator_stats = StatsAnnotatorStatsOutput(many=True)


class StatsRecomputeOutput(serializers.Serializer):
    queued = serializers.BooleanField()


def _enqueue(batch_ids: list[int], tracks: list[str]) -> Response:
    try:
        quality_enqueue_recompute(batch_ids=batch_ids, tracks=tracks)
    except KombuOperationalError:
        raise exceptions.APIException("The task broker is unreachable; nothing was queued.") from None
    return Response({"queued": True}, status=202)


class HiddenFromOthers:
    """A signed-in caller who is not a batch admin gets a 404: these reports do not exist for them."""

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated()
        raise exceptions.NotFound()


class BatchStatsScoped(HiddenFromOthers):
    lookup_url_kwarg = "batch_id"
    request: Request

    def get_queryset(self) -> QuerySet[Batch]:
        # Only batch admins may see quality reports: for anyone else the batch's report does not exist.
        if api_selectors.is_batch_admin(self.request.user):
            return Batch.objects.all()
        return Batch.objects.none()


class BatchStatsView(BatchStatsScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="stats_batch",
        tags=TAGS,
        summary="Quality figures of a batch: agreement, annotators (with flags), distributions, leaderboard",
        responses={200: BatchStatsOutput, **errors(404)},
    )
    def get(self, request: Request, batch_id: int) -> Response:
        batch: Any = self.get_object()
        return Response(BatchStatsOutput(report_to_dict(batch_report(batch=batch))).data)


class BatchStatsRecomputeView(BatchStatsScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="stats_batch_recompute",
        tags=TAGS,
        summary="Queue a recomputation of a batch's quality figures (and its track's)",
        request=None,
        responses={202: StatsRecomputeOutput, **write_errors(404)},
    )
    def post(self, request: Request, batch_id: int) -> Response:
        self.no_body()
        batch: Any = self.get_object()
        return _enqueue([batch.pk], [batch.track])


class TrackStatsView(HiddenFromOthers, ApiView):
    permission_classes = [IsBatchAdmin]

    def get_queryset(self) -> QuerySet[Batch]:
        return Batch.objects.none()

    @extend_schema(
        operation_id="stats_track",
        tags=TAGS,
        summary="Quality figures of a whole track: agreement, distributions, model leaderboard",
        parameters=[TRACK_PARAMETER],
        responses={200: StatsOutput, **errors(404)},
    )
    def get(self, request: Request, track: str) -> Response:
        if track not in Track.values:
            raise exceptions.NotFound()
        return Response(StatsOutput(report_to_dict(track_report(track=track))).data)


class TrackStatsRecomputeView(HiddenFromOthers, ApiView):
    permission_classes = [IsBatchAdmin]

    def get_queryset(self) -> QuerySet[Batch]:
        return Batch.objects.none()

    @extend_schema(
        operation_id="stats_track_recompute",
        tags=TAGS,
        summary="Queue a recomputation of a track's quality figures",
        parameters=[TRACK_PARAMETER],
        request=None,
        responses={202: StatsRecomputeOutput, **write_errors(404)},
    )
    def post(self, request: Request, track: str) -> Response:
        self.no_body()
        if track not in Track.values:
            raise exceptions.NotFound()
        return _enqueue([], [track])
