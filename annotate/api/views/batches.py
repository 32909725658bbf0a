"""Batches: create, change, import prompts, start / open / pause / close, progress, guidelines, and the
annotator's claim of the next item. Items and their responses (read, batch admins)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from typing import IO, Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.accounts.models import User
from annotate.accounts.selectors import user_can_annotate_track
from annotate.api import selectors
from annotate.api.pagination import IdCursorPagination
from annotate.api.permissions import IsAuthenticated, IsBatchAdmin
from annotate.api.serializers import (
    AssignmentOutput,
    BatchCreateInput,
    BatchOutput,
    BatchProgressOutput,
    BatchUpdateInput,
    CountOutput,
    GenerationStartedOutput,
    GuidelinesAckInput,
    GuidelinesOutput,
    ImportReportOutput,
    ItemFilter,
    ItemOutput,
)
from annotate.api.views.assignments import assignment_payload
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors
from annotate.assignments import services as assignments
from annotate.batches import selectors as batch_selectors
from annotate.batches import services as batch_services
from annotate.batches.imports import batch_import_prompts
from annotate.batches.models import Batch, BatchStatus, Item
from annotate.core.errors import ConflictError, DomainError

TAGS = ["batches"]
IMPORT_MEDIA_TYPES = ("application/x-ndjson", "application/jsonl", "text/plain")
SPOOL_IN_MEMORY_BYTES = 4 * 1024 * 1024
READ_BYTES = 256 * 1024


class BatchScoped:
    """Batch object routes: looked up among the batches the caller may see."""

    lookup_url_kwarg = "batch_id"
    request: Request

    def get_queryset(self) -> QuerySet[Batch]:
        return selectors.batches_visible_to(self.request.user).prefetch_related("sampling_configs")


def require_ready_to_annotate(user: User, batch: Batch) -> None:
    """What claiming an item and starting a live dialogue both need: a qualification for the batch's track
    (with consent on the safety track; 403) and the batch's current guidelines read (409)."""
    if not user_can_annotate_track(user, batch.track):
        raise exceptions.PermissionDenied(
            "You are not qualified for this batch's track (or have not consented to safety content).",
            code="not_qualified",
        )
    if assignments.guidelines_needed(annotator=user, batch=batch):
        raise ConflictError(
            f"Read the guidelines first: GET then POST /api/v1/batches/{batch.pk}/guidelines/.",
            code="guidelines_unread",
        )


class BatchListView(ListApiView):
    permission_classes = [IsAuthenticated]
    method_permissions = {"POST": [IsBatchAdmin]}
    output_serializer = BatchOutput
    orderings = {"created_at": "created_at", "name": "name", "id": "id"}
    default_ordering = "-created_at"

    def get_queryset(self) -> QuerySet[Batch]:
        return selectors.batches_visible_to(self.request.user).prefetch_related("sampling_configs")

    @extend_schema(
        operation_id="batches_list",
        tags=TAGS,
        summary="Batches you may see (annotators: open, paused and closed batches of their tracks)",
        responses={200: paginated("PaginatedBatchList", BatchOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()

    @extend_schema(
        operation_id="batches_create",
        tags=TAGS,
        summary="Create a draft batch (batch admins)",
        request=BatchCreateInput,
        responses={201: BatchOutput, **write_errors()},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(BatchCreateInput)
        batch = batch_services.batch_create(
            created_by=request.user, sampling_configs=data.pop("sampling_configs", []), **data
        )
        return Response(BatchOutput(batch).data, status=201)


class BatchDetailView(BatchScoped, ApiView):
    permission_classes = [IsAuthenticated]
    method_permissions = {"PATCH": [IsBatchAdmin]}

    @extend_schema(
        operation_id="batches_retrieve",
        tags=TAGS,
        summary="A batch",
        responses={200: BatchOutput, **errors(404)},
    )
    def get(self, request: Request, batch_id: int) -> Response:
        return Response(BatchOutput(self.get_object()).data)

    @extend_schema(
        operation_id="batches_update",
        tags=TAGS,
        summary="Change a batch (batch admins): name, description, guidelines (new version), overlap ...",
        request=BatchUpdateInput,
        responses={200: BatchOutput, **write_errors(404)},
    )
    def patch(self, request: Request, batch_id: int) -> Response:
        batch = self.get_object()
        batch = batch_services.batch_update(
            batch_id=batch.pk, changes=self.parse(BatchUpdateInput, partial=True), actor=request.user
        )
        return Response(BatchOutput(batch).data)


def _status_action(status: str, operation_id: str, summary: str) -> type[ApiView]:
    class StatusView(BatchScoped, ApiView):
        permission_classes = [IsBatchAdmin]

        @extend_schema(
            operation_id=operation_id,
            tags=TAGS,
            summary=summary,
            request=None,
            responses={200: BatchOutput, **write_errors(404)},
        )
        def post(self, request: Request, batch_id: int) -> Response:
            self.no_body()
            batch = self.get_object()
            batch_services.batch_set_status(batch_id=batch.pk, status=status, actor=request.user)
            return Response(BatchOutput(self.get_object()).data)

    StatusView.__name__ = StatusView.__qualname__ = f"Batch{status.title()}View"
    return StatusView


BatchOpenView = _status_action(BatchStatus.OPEN, "batches_open", "Open (or reopen) a batch for annotation")
BatchPauseView = _status_action(BatchStatus.PAUSED, "batches_pause", "Pause a batch: no new claims")
BatchCloseView = _status_action(BatchStatus.CLOSED, "batches_close", "Close a batch")


class BatchStartView(BatchScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="batches_start",
        tags=TAGS,
        summary="Start a draft batch: generate the missing responses, open it when every item is ready",
        request=None,
        responses={200: GenerationStartedOutput, **write_errors(404)},
    )
    def post(self, request: Request, batch_id: int) -> Response:
        self.no_body()
        batch = self.get_object()
        started = batch_services.batch_start_generation(batch_id=batch.pk, actor=request.user)
        data = {
            "responses_created": started.responses_created,
            "items_ready": started.items_ready,
            "items_waiting": started.items_waiting,
            "opened": started.opened,
            "batch": self.get_object(),
        }
        return Response(GenerationStartedOutput(data).data)


def _count_action(run: Callable[..., int], operation_id: str, summary: str, name: str) -> type[ApiView]:
    class CountView(BatchScoped, ApiView):
        permission_classes = [IsBatchAdmin]

        @extend_schema(
            operation_id=operation_id,
            tags=TAGS,
            summary=summary,
            request=None,
            responses={200: CountOutput, **write_errors(404)},
        )
        def post(self, request: Request, batch_id: int) -> Response:
            self.no_body()
            batch = self.get_object()
            count = run(batch_id=batch.pk, actor=request.user)
            return Response(CountOutput({"count": count, "batch": self.get_object()}).data)

    CountView.__name__ = CountView.__qualname__ = name
    return CountView


BatchRetryFailedView = _count_action(
    batch_services.batch_retry_failed,
    "batches_retry_failed",
    "Queue the failed responses of waiting items again",
    "BatchRetryFailedView",
)
BatchDropFailedView = _count_action(
    batch_services.batch_drop_failed_items,
    "batches_drop_failed",
    "Drop the waiting items that have a failed response (then open the batch if the rest is ready)",
    "BatchDropFailedView",
)


class BatchProgressView(BatchScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="batches_progress",
        tags=TAGS,
        summary="Progress of a batch: items, judgments done and wanted, leases, generation",
        responses={200: BatchProgressOutput, **errors(404)},
    )
    def get(self, request: Request, batch_id: int) -> Response:
        batch = self.get_object()
        progress = batch_selectors.batch_progress(batch=batch)
        generation = batch_selectors.batch_generation_progress(batch=batch)
        data = {
            "status": batch.status,
            "items": progress.items,
            "items_ready": progress.items_ready,
            "items_dropped": progress.items_dropped,
            "judgments_done": progress.judgments_done,
            "judgments_wanted": progress.judgments_wanted,
            "active_leases": progress.active_leases,
            "percent": progress.percent,
            "generation": generation,
        }
        return Response(BatchProgressOutput(data).data)


class ImportRefused(DomainError):
    def __init__(self, message: str, fields: dict[str, list[str]]) -> None:
        super().__init__(message, code="import_refused")
        self.fields = fields

    def as_dict(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class BatchImportView(BatchScoped, ApiView):
    """The body is the JSONL file itself, streamed to the importer (never held whole in memory)."""

    permission_classes = [IsBatchAdmin]

    def body_digest_function(self) -> Callable[[], str]:
        def digest() -> str:
            # With an Idempotency-Key the body is hashed before anything runs, so it is spooled (to disk
            # past a few MB) and the import then reads the spool.
            spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
            sha = hashlib.sha256()
            while chunk := self.request._request.read(READ_BYTES):
                sha.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            self._spool = spool
            return sha.hexdigest()

        return digest

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        spool = getattr(self, "_spool", None)
        if spool is not None:  # also after a replay or an error, when the import never read it
            spool.close()
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="batches_import",
        tags=TAGS,
        summary="Import prompts (JSONL, one conversation per line) into a batch, all or nothing",
        description=(
            "Send the JSONL file as the body (`Content-Type: application/x-ndjson`). Each line: "
            '`{"prompt": "..."}` or `{"messages": [...]}`, optionally `responses` (K pre-generated, '
            "`{model, content}`), `metadata`, `gold`, `id`. Any invalid line refuses the whole upload "
            "(400, `fields` keyed `lines.<n>.<field>`)."
        ),
        request=dict.fromkeys(IMPORT_MEDIA_TYPES, OpenApiTypes.STR),
        examples=[
            OpenApiExample(
                "Two prompts",
                value='{"prompt": "How do I reverse a list in Python?"}\n{"prompt": "Name three primes."}\n',
                request_only=True,
                media_type="application/x-ndjson",
            )
        ],
        responses={200: ImportReportOutput, **write_errors(404, 409, 413)},
    )
    def post(self, request: Request, batch_id: int) -> Response:
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media not in IMPORT_MEDIA_TYPES:
            raise exceptions.UnsupportedMediaType(media or "(none)")
        batch = self.get_object()
        stream = getattr(self, "_spool", None) or request._request
        report = batch_import_prompts(batch_id=batch.pk, stream=stream, user=request.user)
        if report.refused:
            fields: dict[str, list[str]] = {}
            for error in report.errors:
                fields.setdefault(f"lines.{error.line}.{error.field}", []).append(error.message)
            raise ImportRefused(report.summary(), fields)
        return Response(ImportReportOutput(report.as_dict()).data)


class BatchGuidelinesView(BatchScoped, ApiView):
    permission_classes = [IsAuthenticated]

    def _payload(self, batch: Batch) -> dict[str, Any]:
        return {
            "batch": batch.pk,
            "version": batch.guidelines_version,
            "guidelines": batch.guidelines,
            "must_read": assignments.guidelines_needed(annotator=self.request.user, batch=batch),
        }

    @extend_schema(
        operation_id="batches_guidelines",
        tags=["annotating"],
        summary="A batch's guidelines (markdown) and whether you still have to read this version",
        responses={200: GuidelinesOutput, **errors(404)},
    )
    def get(self, request: Request, batch_id: int) -> Response:
        return Response(GuidelinesOutput(self._payload(self.get_object())).data)

    @extend_schema(
        operation_id="batches_guidelines_acknowledge",
        tags=["annotating"],
        summary="Acknowledge that you read the guidelines (needed before claiming items)",
        request=GuidelinesAckInput,
        responses={200: GuidelinesOutput, **write_errors(404, 409)},
    )
    def post(self, request: Request, batch_id: int) -> Response:
        data = self.parse(GuidelinesAckInput)
        batch = self.get_object()
        if data["version"] != batch.guidelines_version:
            raise ConflictError(
                f"The guidelines changed: read version {batch.guidelines_version} and acknowledge that one.",
                code="guidelines_changed",
            )
        assignments.guidelines_mark_seen(annotator=request.user, batch=batch)
        return Response(GuidelinesOutput(self._payload(batch)).data)


class ClaimView(BatchScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="batches_claim",
        tags=["annotating"],
        summary="Claim the next item of a batch (or get back the one you hold)",
        description=(
            "Gives your lease on an item: the conversation and the responses in the order to show them "
            "(never model names). Claiming again while you hold a lease renews and returns the same one. "
            "204 when the batch has nothing left for you. 409 `guidelines_unread` until you acknowledge "
            "the current guidelines; 409 `batch_not_open`, `too_many_leases`."
        ),
        request=None,
        responses={
            200: AssignmentOutput,
            204: OpenApiResponse(description="Nothing left in this batch for you."),
            **write_errors(404, 409),
        },
    )
    def post(self, request: Request, batch_id: int) -> Response:
        self.no_body()
        batch = self.get_object()
        require_ready_to_annotate(request.user, batch)
        assignment = assignments.assignment_claim_next(annotator=request.user, batch_id=batch.pk)
        if assignment is None:
            return Response(status=204)
        return Response(AssignmentOutput(assignment_payload(assignment)).data)


# --- Items and responses ---------------------------------------------------------------------------


class ItemListView(ListApiView):
    permission_classes = [IsBatchAdmin]
    pagination_class = IdCursorPagination
    output_serializer = ItemOutput
    filter_serializer = ItemFilter
    orderings = {"id": "id"}
    default_ordering = "id"

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.items_visible_to(self.request.user)

    def filter_queryset(self, queryset: QuerySet[Item], filters: dict[str, Any]) -> QuerySet[Item]:
        if "batch" in filters:
            queryset = queryset.filter(batch_id=filters["batch"])
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        return queryset

    @extend_schema(
        operation_id="items_list",
        tags=TAGS,
        summary="Items with their responses, model names included (batch admins)",
        responses={200: paginated("PaginatedItemList", ItemOutput, cursor=True), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()


class ItemDetailView(ApiView):
    permission_classes = [IsBatchAdmin]
    lookup_url_kwarg = "item_id"

    def get_queryset(self) -> QuerySet[Item]:
        return selectors.items_visible_to(self.request.user)

    @extend_schema(
        operation_id="items_retrieve",
        tags=TAGS,
        summary="An item with its responses (batch admins)",
        responses={200: ItemOutput, **errors(404)},
    )
    def get(self, request: Request, item_id: int) -> Response:
        return Response(ItemOutput(self.get_object()).data)
