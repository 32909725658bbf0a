"""Annotators and their track qualifications (batch admins)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.accounts import services as account_services
from annotate.accounts.models import User
from annotate.api import selectors
from annotate.api.permissions import IsBatchAdmin
from annotate.api.serializers import AnnotatorFilter, AnnotatorOutput, QualificationGrantInput
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors
from annotate.core.choices import Track
from annotate.core.errors import NotFound

TAGS = ["annotators"]


class AnnotatorListView(ListApiView):
    permission_classes = [IsBatchAdmin]
    output_serializer = AnnotatorOutput
    filter_serializer = AnnotatorFilter
    orderings = {"username": "username", "id": "id"}
    default_ordering = "username"

    def get_queryset(self) -> QuerySet[User]:
        return selectors.annotators_visible_to(self.request.user)

    def filter_queryset(self, queryset: QuerySet[User], filters: dict[str, Any]) -> QuerySet[User]:
        if "track" in filters:
            queryset = queryset.filter(
                qualifications__track=filters["track"], qualifications__revoked_at__isnull=True
            )
        if "kind" in filters:
            queryset = queryset.filter(kind=filters["kind"])
        return queryset

    @extend_schema(
        operation_id="annotators_list",
        tags=TAGS,
        summary="Users and their track qualifications (batch admins)",
        responses={200: paginated("PaginatedAnnotatorList", AnnotatorOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()


class AnnotatorScoped:
    lookup_url_kwarg = "user_id"
    request: Request

    def get_queryset(self) -> QuerySet[User]:
        return selectors.annotators_visible_to(self.request.user)


class AnnotatorDetailView(AnnotatorScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="annotators_retrieve",
        tags=TAGS,
        summary="A user and their qualifications (batch admins)",
        responses={200: AnnotatorOutput, **errors(404)},
    )
    def get(self, request: Request, user_id: int) -> Response:
        return Response(AnnotatorOutput(self.get_object()).data)


class QualificationListView(AnnotatorScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="annotators_qualify",
        tags=TAGS,
        summary="Qualify a user for a track (again, if it was revoked)",
        request=QualificationGrantInput,
        responses={200: AnnotatorOutput, **write_errors(404)},
    )
    def post(self, request: Request, user_id: int) -> Response:
        data = self.parse(QualificationGrantInput)
        user = self.get_object()
        account_services.qualification_grant(user=user, track=data["track"], granted_by=request.user)
        return Response(AnnotatorOutput(self.get_object()).data)


class QualificationDetailView(AnnotatorScoped, ApiView):
    permission_classes = [IsBatchAdmin]

    @extend_schema(
        operation_id="annotators_unqualify",
        tags=TAGS,
        summary="Revoke a user's qualification for a track",
        parameters=[OpenApiParameter("track", OpenApiTypes.STR, OpenApiParameter.PATH, enum=Track.values)],
        responses={200: AnnotatorOutput, **errors(400, 404, 422)},
    )
    def delete(self, request: Request, user_id: int, track: str) -> Response:
        user = self.get_object()
        if track not in Track.values:
            raise NotFound("No such track.")
        account_services.qualification_revoke(user=user, track=track, actor=request.user)
        return Response(AnnotatorOutput(self.get_object()).data)
