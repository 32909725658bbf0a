"""The audit log (batch admins): who changed what, when. Read-only: there is no route that writes it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api import selectors
from annotate.api.pagination import IdCursorPagination
from annotate.api.permissions import IsBatchAdmin
from annotate.api.serializers import AuditEventFilter, AuditEventOutput
from annotate.api.views.base import ListApiView, errors, paginated
from annotate.core.models import AuditEvent

FILTER_LOOKUPS = {
    "action": "action",
    "object_type": "object_type",
    "object_id": "object_id",
    "actor": "actor_id",
    "created_after": "created_at__gte",
    "created_before": "created_at__lt",
}


class AuditEventListView(ListApiView):
    permission_classes = [IsBatchAdmin]
    pagination_class = IdCursorPagination
    output_serializer = AuditEventOutput
    filter_serializer = AuditEventFilter
    orderings = {"id": "id"}
    default_ordering = "-id"

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return selectors.audit_events_visible_to(self.request.user)

    def filter_queryset(
        self, queryset: QuerySet[AuditEvent], filters: dict[str, Any]
    ) -> QuerySet[AuditEvent]:
        return queryset.filter(**{FILTER_LOOKUPS[name]: value for name, value in filters.items()})

    @extend_schema(
        operation_id="audit_list",
        tags=["audit"],
        summary="The audit log of admin actions that changed data, newest first (batch admins)",
        responses={200: paginated("PaginatedAuditEventList", AuditEventOutput, cursor=True), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()
