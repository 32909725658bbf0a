"""OpenAPI details added to every operation centrally: list parameters, the Idempotency-Key header, and
the token authentication scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object

from annotate.api.views.base import IDEMPOTENCY_PARAMETER, ListApiView, page_parameters


class ApiAutoSchema(AutoSchema):
    def get_override_parameters(self) -> list[Any]:
        params = list(super().get_override_parameters())
        if isinstance(self.view, ListApiView) and self.method == "GET":
            params = page_parameters(type(self.view)) + params
        if self.method in {"POST", "PUT", "PATCH", "DELETE"}:
            params.append(IDEMPOTENCY_PARAMETER)
        return params


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "annotate.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        definition = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
        definition["description"] = "A personal API token: `Authorization: Token annot_...`."
        return definition


class CsrfSessionScheme(OpenApiAuthenticationExtension):
    target_class = "annotate.api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        from django.conf import settings

        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
