"""Dataset exports (exporters and batch admins): request one, follow it, download its files."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api.filters import parse_list_query
from annotate.api.permissions import IsExporter
from annotate.api.serializers import DownloadFilter, ExportCreateInput, ExportFilter, ExportOutput
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors
from annotate.exports import selectors as export_selectors
from annotate.exports.models import ExportJob
from annotate.exports.services import export_request

TAGS = ["exports"]
DOWNLOAD_TYPES = (
    "application/x-ndjson",
    "application/vnd.apache.parquet",
    "application/json",
    "text/markdown",
)


class ExportOutputFromJob(ExportOutput):
    def to_representation(self, instance: ExportJob) -> dict[str, Any]:
        return super().to_representation(export_selectors.export_job_to_dict(instance))


class ExportListView(ListApiView):
    permission_classes = [IsExporter]
    output_serializer = ExportOutputFromJob
    filter_serializer = ExportFilter
    orderings = {"created_at": "created_at", "id": "id"}
    default_ordering = "-created_at"

    def get_queryset(self) -> QuerySet[ExportJob]:
        return export_selectors.export_jobs_visible_to(self.request.user)

    def filter_queryset(self, queryset: QuerySet[ExportJob], filters: dict[str, Any]) -> QuerySet[ExportJob]:
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        return queryset

    @extend_schema(
        operation_id="exports_list",
        tags=TAGS,
        summary="Exports (exporters: their own; batch admins: all)",
        responses={200: paginated("PaginatedExportList", ExportOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()

    @extend_schema(
        operation_id="exports_create",
        tags=TAGS,
        summary="Request an export; a worker builds it (follow its status, then download)",
        request=ExportCreateInput,
        responses={201: ExportOutput, **write_errors()},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(ExportCreateInput)
        job = export_request(
            user=request.user, spec=data.get("spec") or {}, schema=data["schema"], format=data["format"]
        )
        return Response(ExportOutputFromJob(job).data, status=201)


class ExportScoped:
    lookup_url_kwarg = "export_id"
    request: Request

    def get_queryset(self) -> QuerySet[ExportJob]:
        return export_selectors.export_jobs_visible_to(self.request.user)


class ExportDetailView(ExportScoped, ApiView):
    permission_classes = [IsExporter]

    @extend_schema(
        operation_id="exports_retrieve",
        tags=TAGS,
        summary="An export: status, row count, checksum, and its manifest once done",
        responses={200: ExportOutput, **errors(404)},
    )
    def get(self, request: Request, export_id: int) -> Response:
        return Response(ExportOutputFromJob(self.get_object()).data)


class ExportDownloadView(ExportScoped, ApiView):
    permission_classes = [IsExporter]

    @extend_schema(
        operation_id="exports_download",
        tags=TAGS,
        summary="Download an export's data file (or ?part=manifest / readme)",
        parameters=[DownloadFilter],
        responses={
            **{(200, media): OpenApiResponse(OpenApiTypes.BINARY) for media in DOWNLOAD_TYPES},
            **errors(400, 404, 409),
        },
    )
    def get(self, request: Request, export_id: int) -> FileResponse:
        query = parse_list_query(
            request, filter_serializer=DownloadFilter, orderings=(), default_ordering="", pagination_params=()
        )
        job = self.get_object()
        download = export_selectors.export_open_file(job, part=query.filters.get("part", "data"))
        response = FileResponse(
            download.file, as_attachment=True, filename=download.filename, content_type=download.content_type
        )
        if download.sha256 and query.filters.get("part", "data") == "data":
            response["X-Content-SHA256"] = download.sha256
        return response
