"""The current user, their safety consent, and their personal API tokens."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.accounts.selectors import usable_tracks
from annotate.accounts.services import qualification_record_consent
from annotate.api import selectors, services
from annotate.api.models import ApiToken
from annotate.api.permissions import IsAuthenticated
from annotate.api.serializers import (
    MeOutput,
    SafetyConsentInput,
    TokenCreatedOutput,
    TokenCreateInput,
    TokenOutput,
)
from annotate.api.views.base import ApiView, ListApiView, errors, paginated, write_errors


def me_payload(request: Request) -> dict[str, Any]:
    user = request.user
    return {
        "id": user.pk,
        "username": user.get_username(),
        "pseudonym": user.pseudonym,
        "is_batch_admin": user.is_batch_admin,
        "is_exporter": user.is_exporter,
        "tracks": sorted(usable_tracks(user)),
        "qualifications": list(user.qualifications.order_by("track")),
        "auth": "token" if isinstance(request.auth, ApiToken) else "session",
    }


class MeView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_retrieve",
        tags=["account"],
        summary="The current user: roles and the tracks they may annotate",
        responses={200: MeOutput, **errors()},
    )
    def get(self, request: Request) -> Response:
        return Response(MeOutput(me_payload(request)).data)


class SafetyConsentView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_safety_consent",
        tags=["account"],
        summary="Consent to see potentially harmful content (needed before any safety-track item)",
        request=SafetyConsentInput,
        responses={200: MeOutput, **write_errors()},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(SafetyConsentInput)
        if not data["agree"]:
            raise exceptions.ValidationError({"agree": ["Send true to agree."]})
        qualification_record_consent(user=request.user)
        return Response(MeOutput(me_payload(request)).data)


class TokenListView(ListApiView):
    permission_classes = [IsAuthenticated]
    withheld_on_replay = ("token",)
    output_serializer = TokenOutput
    orderings = {"created_at": "created"}
    default_ordering = "-created_at"

    def get_queryset(self) -> QuerySet[ApiToken]:
        return selectors.tokens_of(self.request.user)

    @extend_schema(
        operation_id="tokens_list",
        tags=["account"],
        summary="Your API tokens (their prefixes, names and expiry; never the tokens)",
        responses={200: paginated("PaginatedTokenList", TokenOutput), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list_response()

    @extend_schema(
        operation_id="tokens_create",
        tags=["account"],
        summary="Create a token; the response holds the token itself, shown this once",
        request=TokenCreateInput,
        responses={201: TokenCreatedOutput, **write_errors(409)},  # 429 as well: creations are limited
    )
    def post(self, request: Request) -> Response:
        data = self.parse(TokenCreateInput)
        if not services.token_create_allowed(request.user):
            raise services.TokenCreationLimited()
        created = services.token_create(
            user=request.user,
            name=data["name"],
            expires_in_days=data.get("expires_in_days"),
            created_with=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        created.token.token = created.secret
        return Response(TokenCreatedOutput(created.token).data, status=201)


class TokenDetailView(ApiView):
    permission_classes = [IsAuthenticated]
    lookup_url_kwarg = "token_id"

    def get_queryset(self) -> QuerySet[ApiToken]:
        return selectors.tokens_of(self.request.user)

    @extend_schema(
        operation_id="tokens_retrieve",
        tags=["account"],
        summary="One of your tokens",
        responses={200: TokenOutput, **errors(404)},
    )
    def get(self, request: Request, token_id: int) -> Response:
        return Response(TokenOutput(self.get_object()).data)

    @extend_schema(
        operation_id="tokens_revoke",
        tags=["account"],
        summary="Revoke one of your tokens (at once: it no longer authenticates)",
        responses={204: OpenApiResponse(description="Revoked."), **errors(400, 404, 422)},
    )
    def delete(self, request: Request, token_id: int) -> Response:
        services.token_revoke(user=request.user, token_id=token_id)
        return Response(status=204)
