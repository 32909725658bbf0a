"""The API's routes: /api/v1/... , the OpenAPI schema at /api/schema/ and its docs at /api/docs/."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from annotate.api.docs import DocsView
from annotate.api.errors import api_not_found
from annotate.api.views import (
    account,
    assignments,
    audit,
    batches,
    endpoints,
    exports,
    judges,
    live,
    people,
    stats,
)

v1 = [
    path("me/", account.MeView.as_view(), name="me"),
    path("me/safety-consent/", account.SafetyConsentView.as_view(), name="safety-consent"),
    path("tokens/", account.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", account.TokenDetailView.as_view(), name="token"),
    path("endpoints/", endpoints.EndpointListView.as_view(), name="endpoints"),
    path("endpoints/<int:endpoint_id>/", endpoints.EndpointDetailView.as_view(), name="endpoint"),
    path("endpoints/<int:endpoint_id>/test/", endpoints.EndpointTestView.as_view(), name="endpoint-test"),
    path("sampling-configs/", endpoints.SamplingConfigListView.as_view(), name="sampling-configs"),
    path(
        "sampling-configs/<int:config_id>/",
        endpoints.SamplingConfigDetailView.as_view(),
        name="sampling-config",
    ),
    path("batches/", batches.BatchListView.as_view(), name="batches"),
    path("batches/<int:batch_id>/", batches.BatchDetailView.as_view(), name="batch"),
    path("batches/<int:batch_id>/import/", batches.BatchImportView.as_view(), name="batch-import"),
    path("batches/<int:batch_id>/start/", batches.BatchStartView.as_view(), name="batch-start"),
    path("batches/<int:batch_id>/open/", batches.BatchOpenView.as_view(), name="batch-open"),
    path("batches/<int:batch_id>/pause/", batches.BatchPauseView.as_view(), name="batch-pause"),
    path("batches/<int:batch_id>/close/", batches.BatchCloseView.as_view(), name="batch-close"),
    path(
        "batches/<int:batch_id>/retry-failed/",
        batches.BatchRetryFailedView.as_view(),
        name="batch-retry-failed",
    ),
    path(
        "batches/<int:batch_id>/drop-failed/", batches.BatchDropFailedView.as_view(), name="batch-drop-failed"
    ),
    path("batches/<int:batch_id>/progress/", batches.BatchProgressView.as_view(), name="batch-progress"),
    path(
        "batches/<int:batch_id>/guidelines/", batches.BatchGuidelinesView.as_view(), name="batch-guidelines"
    ),
    path("batches/<int:batch_id>/claim/", batches.ClaimView.as_view(), name="batch-claim"),
    path("batches/<int:batch_id>/live/", live.LiveStartView.as_view(), name="batch-live"),
    path("dialogues/<uuid:dialogue_id>/", live.DialogueDetailView.as_view(), name="dialogue"),
    path(
        "dialogues/<uuid:dialogue_id>/continue/",
        live.DialogueContinueView.as_view(),
        name="dialogue-continue",
    ),
    path("dialogues/<uuid:dialogue_id>/end/", live.DialogueEndView.as_view(), name="dialogue-end"),
    path("dialogues/<uuid:dialogue_id>/retry/", live.DialogueRetryView.as_view(), name="dialogue-retry"),
    path("items/", batches.ItemListView.as_view(), name="items"),
    path("items/<int:item_id>/", batches.ItemDetailView.as_view(), name="item"),
    path("assignments/", assignments.AssignmentListView.as_view(), name="assignments"),
    path("assignments/<int:assignment_id>/", assignments.AssignmentDetailView.as_view(), name="assignment"),
    path(
        "assignments/<int:assignment_id>/submit/", assignments.SubmitView.as_view(), name="assignment-submit"
    ),
    path("assignments/<int:assignment_id>/skip/", assignments.SkipView.as_view(), name="assignment-skip"),
    path("assignments/<int:assignment_id>/flag/", assignments.FlagView.as_view(), name="assignment-flag"),
    path("judgments/", assignments.JudgmentListView.as_view(), name="judgments"),
    path("judgments/<int:judgment_id>/", assignments.JudgmentDetailView.as_view(), name="judgment"),
    path("annotators/", people.AnnotatorListView.as_view(), name="annotators"),
    path("annotators/<int:user_id>/", people.AnnotatorDetailView.as_view(), name="annotator"),
    path(
        "annotators/<int:user_id>/qualifications/",
        people.QualificationListView.as_view(),
        name="annotator-qualifications",
    ),
    path(
        "annotators/<int:user_id>/qualifications/<str:track>/",
        people.QualificationDetailView.as_view(),
        name="annotator-qualification",
    ),
    path("audit/", audit.AuditEventListView.as_view(), name="audit"),
    path("stats/batches/<int:batch_id>/", stats.BatchStatsView.as_view(), name="stats-batch"),
    path(
        "stats/batches/<int:batch_id>/recompute/",
        stats.BatchStatsRecomputeView.as_view(),
        name="stats-batch-recompute",
    ),
    path("stats/tracks/<str:track>/", stats.TrackStatsView.as_view(), name="stats-track"),
    path(
        "stats/tracks/<str:track>/recompute/",
        stats.TrackStatsRecomputeView.as_view(),
        name="stats-track-recompute",
    ),
    path("exports/", exports.ExportListView.as_view(), name="exports"),
    path("exports/<int:export_id>/", exports.ExportDetailView.as_view(), name="export"),
    path("exports/<int:export_id>/download/", exports.ExportDownloadView.as_view(), name="export-download"),
    path("judge-runs/", judges.JudgeRunListView.as_view(), name="judge-runs"),
    path("judge-runs/<int:run_id>/", judges.JudgeRunDetailView.as_view(), name="judge-run"),
    path("judge-runs/<int:run_id>/stats/", judges.JudgeRunStatsView.as_view(), name="judge-run-stats"),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
    # Anything else under /api/ is a JSON 404 (and so never a trailing-slash redirect of a POST).
    re_path(r"^.*$", api_not_found),
]
