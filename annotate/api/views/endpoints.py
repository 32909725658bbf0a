"""Model endpoints (with a test call) and sampling configs: batch admins only."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api import selectors
from annotate.api.permissions import IsBatchAdmin
from annotate.api.serializers import (
    EndpointInput,
    EndpointOutput,
    EndpointTestOutput,
    SamplingConfigInput,
    SamplingConfigOutput,
)
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors
from annotate.endpoints import services as endpoint_services
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

TAGS = ["endpoints"]


class EndpointListView(ListApiView):
    permission_classes = [IsBatchAdmin]
    output_serializer = EndpointOutput
    orderings = {"name": "name", "created_at": "created_at", "id": "id"}
    default_ordering = "name"

    def get_queryset(self) -> QuerySet[ModelEndpoint]:
        return selectors.endpoints_visible_to(self.request.user)

    @extend_schema(
        operation_id="endpoints_list",
        tags=TAGS,
        summary="Model endpoints",
        responses={200: paginated("PaginatedEndpointList", EndpointOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()

    @extend_schema(
        operation_id="endpoints_create",
        tags=TAGS,
        summary="Add a model endpoint (an OpenAI-compatible chat-completions server)",
        request=EndpointInput,
        responses={201: EndpointOutput, **write_errors(409)},
    )
    def post(self, request: Request) -> Response:
        endpoint = endpoint_services.endpoint_create(actor=request.user, **self.parse(EndpointInput))
        return Response(EndpointOutput(endpoint).data, status=201)


class EndpointDetailView(ApiView):
    permission_classes = [IsBatchAdmin]
    lookup_url_kwarg = "endpoint_id"

    def get_queryset(self) -> QuerySet[ModelEndpoint]:
        return selectors.endpoints_visible_to(self.request.user)

    @extend_schema(
        operation_id="endpoints_retrieve",
        tags=TAGS,
        summary="A model endpoint",
        responses={200: EndpointOutput, **errors(404)},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(EndpointOutput(self.get_object()).data)

    @extend_schema(
        operation_id="endpoints_update",
        tags=TAGS,
        summary="Change a model endpoint (only the fields sent)",
        request=EndpointInput(partial=True),
        responses={200: EndpointOutput, **write_errors(404, 409)},
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = self.get_object()
        changes = self.parse(EndpointInput, partial=True)
        endpoint = endpoint_services.endpoint_update(
            endpoint_id=endpoint.pk, changes=changes, actor=request.user
        )
        return Response(EndpointOutput(endpoint).data)


class EndpointTestView(ApiView):
    permission_classes = [IsBatchAdmin]
    lookup_url_kwarg = "endpoint_id"

    def get_queryset(self) -> QuerySet[ModelEndpoint]:
        return selectors.endpoints_visible_to(self.request.user)

    @extend_schema(
        operation_id="endpoints_test",
        tags=TAGS,
        summary="Send one short chat completion to the endpoint and report what came back",
        description="`ok` is false when the endpoint failed; the call itself still answers 200.",
        request=None,
        responses={200: EndpointTestOutput, **write_errors(404)},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        self.no_body()
        endpoint = self.get_object()
        result = endpoint_services.endpoint_test(endpoint_id=endpoint.pk)
        return Response(EndpointTestOutput(result).data)


class SamplingConfigListView(ListApiView):
    permission_classes = [IsBatchAdmin]
    output_serializer = SamplingConfigOutput
    orderings = {"label": "label", "created_at": "created_at", "id": "id"}
    default_ordering = "label"

    def get_queryset(self) -> QuerySet[SamplingConfig]:
        return selectors.sampling_configs_visible_to(self.request.user)

    @extend_schema(
        operation_id="sampling_configs_list",
        tags=TAGS,
        summary="Sampling configs (endpoint + temperature, top_p, max_tokens, system prompt)",
        responses={200: paginated("PaginatedSamplingConfigList", SamplingConfigOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()

    @extend_schema(
        operation_id="sampling_configs_create",
        tags=TAGS,
        summary="Add a sampling config",
        request=SamplingConfigInput,
        responses={201: SamplingConfigOutput, **write_errors(409)},
    )
    def post(self, request: Request) -> Response:
        config = endpoint_services.sampling_config_create(
            actor=request.user, **self.parse(SamplingConfigInput)
        )
        return Response(SamplingConfigOutput(config).data, status=201)


class SamplingConfigDetailView(ApiView):
    permission_classes = [IsBatchAdmin]
    lookup_url_kwarg = "config_id"

    def get_queryset(self) -> QuerySet[SamplingConfig]:
        return selectors.sampling_configs_visible_to(self.request.user)

    @extend_schema(
        operation_id="sampling_configs_retrieve",
        tags=TAGS,
        summary="A sampling config",
        responses={200: SamplingConfigOutput, **errors(404)},
    )
    def get(self, request: Request, config_id: int) -> Response:
        return Response(SamplingConfigOutput(self.get_object()).data)

    @extend_schema(
        operation_id="sampling_configs_update",
        tags=TAGS,
        summary="Change a sampling config (only the fields sent)",
        request=SamplingConfigInput(partial=True),
        responses={200: SamplingConfigOutput, **write_errors(404, 409)},
    )
    def patch(self, request: Request, config_id: int) -> Response:
        config = self.get_object()
        changes: dict[str, Any] = self.parse(SamplingConfigInput, partial=True)
        config = endpoint_services.sampling_config_update(
            config_id=config.pk, changes=changes, actor=request.user
        )
        return Response(SamplingConfigOutput(config).data)
