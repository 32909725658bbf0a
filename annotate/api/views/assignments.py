"""Annotating through the API: your assignments, submitting a judgment, skipping, flagging; and reading
judgments. The same services as the workbench pages, so the same rules (leases, overlap, idempotency,
validation) hold."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api import selectors
from annotate.api.idempotency import REPLAYED_HEADER, derived_judgment_key
from annotate.api.pagination import IdCursorPagination
from annotate.api.permissions import IsAuthenticated
from annotate.api.serializers import (
    AssignmentFilter,
    AssignmentOutput,
    AssignmentSummaryOutput,
    FlagInput,
    JudgmentFilter,
    JudgmentOutput,
    JudgmentSubmitInput,
    SkipInput,
)
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors
from annotate.assignments import services as assignments
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches.services import responses_ensure_rendered
from annotate.judgments import services as judgments
from annotate.judgments.models import Judgment

LABELS = "ABCDEFGHI"
TAGS = ["annotating"]


def assignment_payload(assignment: Assignment) -> dict[str, Any]:
    """An assignment as its annotator sees it: the responses in the assignment's order, and nothing about
    where they came from (no model name, sampling config or slot)."""
    batch = assignment.batch
    ordered = assignments.responses_in_order(assignment)
    rendered = responses_ensure_rendered(ordered)
    return {
        "id": assignment.pk,
        "batch_id": assignment.batch_id,
        "item_id": assignment.item_id,
        "annotator": assignment.annotator,
        "status": assignment.status,
        "leased_at": assignment.leased_at,
        "expires_at": assignment.expires_at,
        "finished_at": assignment.finished_at,
        "skip_reason": assignment.skip_reason,
        "flag": assignment.flag,
        "flag_note": assignment.flag_note,
        "mode": batch.mode,
        "track": batch.track,
        "guidelines_version": assignment.guidelines_version,
        "lease_expired": assignment.status == AssignmentStatus.EXPIRED
        or (assignment.status == AssignmentStatus.ACTIVE and assignment.expires_at < timezone.now()),
        "conversation": [
            {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
            for m in assignment.item.conversation or []
            if isinstance(m, dict)
        ],
        "responses": [
            {
                "id": r.pk,
                "label": LABELS[position],
                "position": position,
                "content": r.content,
                "content_html": rendered[r.pk],
            }
            for position, r in enumerate(ordered)
        ],
    }


class AssignmentListView(ListApiView):
    permission_classes = [IsAuthenticated]
    pagination_class = IdCursorPagination
    output_serializer = AssignmentSummaryOutput
    filter_serializer = AssignmentFilter
    orderings = {"id": "id"}
    default_ordering = "-id"

    def get_queryset(self) -> QuerySet[Assignment]:
        return selectors.assignments_visible_to(self.request.user)

    def filter_queryset(
        self, queryset: QuerySet[Assignment], filters: dict[str, Any]
    ) -> QuerySet[Assignment]:
        if "batch" in filters:
            queryset = queryset.filter(batch_id=filters["batch"])
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        return queryset

    @extend_schema(
        operation_id="assignments_list",
        tags=TAGS,
        summary="Your assignments (batch admins: everyone's), newest first",
        responses={
            200: paginated("PaginatedAssignmentList", AssignmentSummaryOutput, cursor=True),
            **errors(400),
        },
    )
    def get(self, request: Request) -> Response:
        return self.list_response()


class AssignmentScoped:
    lookup_url_kwarg = "assignment_id"
    request: Request

    def get_queryset(self) -> QuerySet[Assignment]:
        return selectors.assignments_visible_to(self.request.user)


class AssignmentDetailView(AssignmentScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="assignments_retrieve",
        tags=TAGS,
        summary="An assignment with its conversation and responses in the order shown",
        responses={200: AssignmentOutput, **errors(404)},
    )
    def get(self, request: Request, assignment_id: int) -> Response:
        return Response(AssignmentOutput(assignment_payload(self.get_object())).data)


class SubmitView(AssignmentScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="assignments_submit",
        tags=TAGS,
        summary="Submit your judgment of an assignment",
        description=(
            "Pairwise: `chosen` (a response id) and `strength`. Ranking: `ranking` (every response id, best "
            "first). Safety track: also `safety_labels` for every response. Exactly once per idempotency "
            "key: the body's `idempotency_key`, or one derived from the Idempotency-Key header; a replay "
            "answers 200 with the stored judgment. 400 names every wrong field; 409 `already_submitted`, "
            "`already_skipped`, `lease_expired` (the item filled up after your lease ran out)."
        ),
        request=JudgmentSubmitInput,
        responses={
            201: JudgmentOutput,
            200: OpenApiResponse(JudgmentOutput, description="A replay: the judgment stored earlier."),
            **write_errors(404, 409),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = self.parse(JudgmentSubmitInput)
        key = data.get("idempotency_key") or derived_judgment_key(request) or ""
        answer = judgments.JudgmentInput(
            idempotency_key=key,
            chosen=data.get("chosen"),
            strength=data.get("strength", ""),
            ranking=data.get("ranking"),
            safety_labels=data.get("safety_labels", {}),
            rationale=data.get("rationale", ""),
            time_spent_ms=data.get("time_spent_ms"),
            confirm_unsafe_choice=data.get("confirm_unsafe_choice", False),
        )
        result = judgments.judgment_submit(annotator=request.user, assignment_id=assignment_id, data=answer)
        headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
        return Response(
            JudgmentOutput(result.judgment).data, status=200 if result.replayed else 201, headers=headers
        )


class SkipView(AssignmentScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="assignments_skip",
        tags=TAGS,
        summary="Skip an assignment (say why; optionally flag the item too)",
        request=SkipInput,
        responses={200: AssignmentSummaryOutput, **write_errors(404, 409)},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = self.parse(SkipInput)
        with transaction.atomic():  # flag and skip together, or neither
            if data.get("flag"):
                assignments.assignment_flag(
                    annotator=request.user,
                    assignment_id=assignment_id,
                    flag=data["flag"],
                    note=data.get("note", ""),
                )
            assignment = assignments.assignment_skip(
                annotator=request.user, assignment_id=assignment_id, reason=data["reason"]
            )
        return Response(AssignmentSummaryOutput(assignment).data)


class FlagView(AssignmentScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="assignments_flag",
        tags=TAGS,
        summary="Flag an assignment's item (broken, offensive, needs review) without skipping it",
        request=FlagInput,
        responses={200: AssignmentSummaryOutput, **write_errors(404)},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = self.parse(FlagInput)
        assignment = assignments.assignment_flag(
            annotator=request.user, assignment_id=assignment_id, flag=data["flag"], note=data.get("note", "")
        )
        return Response(AssignmentSummaryOutput(assignment).data)


class JudgmentListView(ListApiView):
    permission_classes = [IsAuthenticated]
    pagination_class = IdCursorPagination
    output_serializer = JudgmentOutput
    filter_serializer = JudgmentFilter
    orderings = {"id": "id"}
    default_ordering = "id"

    def get_queryset(self) -> QuerySet[Judgment]:
        return selectors.judgments_visible_to(self.request.user)

    def filter_queryset(self, queryset: QuerySet[Judgment], filters: dict[str, Any]) -> QuerySet[Judgment]:
        lookups = {
            "batch": "batch_id",
            "track": "track",
            "mode": "mode",
            "annotator": "annotator__pseudonym",
            "created_after": "created_at__gte",
            "created_before": "created_at__lt",
        }
        return queryset.filter(**{lookups[name]: value for name, value in filters.items()})

    @extend_schema(
        operation_id="judgments_list",
        tags=["judgments"],
        summary="Judgments (annotators: their own; exporters and batch admins: all), by id",
        responses={200: paginated("PaginatedJudgmentList", JudgmentOutput, cursor=True), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()


class JudgmentDetailView(ApiView):
    permission_classes = [IsAuthenticated]
    lookup_url_kwarg = "judgment_id"

    def get_queryset(self) -> QuerySet[Judgment]:
        return selectors.judgments_visible_to(self.request.user)

    @extend_schema(
        operation_id="judgments_retrieve",
        tags=["judgments"],
        summary="A judgment",
        responses={200: JudgmentOutput, **errors(404)},
    )
    def get(self, request: Request, judgment_id: int) -> Response:
        return Response(JudgmentOutput(self.get_object()).data)
