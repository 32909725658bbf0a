from __future__ import annotations

import os

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from annotate.endpoints import services
from annotate.endpoints.models import ModelEndpoint, SamplingConfig

# Each test is a real request that may take up to its timeout: keep one admin click bounded.
MAX_ENDPOINTS_PER_TEST = 5


class SamplingConfigInline(admin.TabularInline):
    model = SamplingConfig
    extra = 0
    fields = ["label", "temperature", "top_p", "max_tokens", "seed", "enabled"]
    show_change_link = True


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "base_url",
        "model",
        "api_key_status",
        "max_concurrency",
        "requests_per_minute",
        "enabled",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "base_url", "model"]
    readonly_fields = ["api_key_status", "created_at", "updated_at"]
    fields = [
        "name",
        "base_url",
        "model",
        "api_key_env",
        "api_key_status",
        "timeout_s",
        "max_concurrency",
        "requests_per_minute",
        "enabled",
        "created_at",
        "updated_at",
    ]
    inlines = [SamplingConfigInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["test_endpoints"]

    @admin.action(description="Test endpoint (send one short request)")
    def test_endpoints(self, request: HttpRequest, queryset: QuerySet[ModelEndpoint]) -> None:
        ids = list(queryset.order_by("name").values_list("pk", flat=True)[: MAX_ENDPOINTS_PER_TEST + 1])
        if len(ids) > MAX_ENDPOINTS_PER_TEST:
            self.message_user(
                request,
                f"Select at most {MAX_ENDPOINTS_PER_TEST} endpoints to test at once.",
                messages.WARNING,
            )
            return
        for endpoint_id in ids:
            result = services.endpoint_test(endpoint_id=endpoint_id)
            self.message_user(request, result.message, messages.SUCCESS if result.ok else messages.ERROR)

    @admin.display(description="API key")
    def api_key_status(self, obj: ModelEndpoint) -> str:
        # Only whether the named variable is set in this process: the key itself is never read out.
        if not obj.api_key_env:
            return "none (no Authorization header)"
        return f"{obj.api_key_env}: {'set' if os.environ.get(obj.api_key_env) else 'missing'}"


@admin.register(SamplingConfig)
class SamplingConfigAdmin(admin.ModelAdmin):
    list_display = ["label", "endpoint", "temperature", "top_p", "max_tokens", "seed", "enabled"]
    list_filter = ["enabled", "endpoint"]
    search_fields = ["label", "endpoint__name", "endpoint__model"]
    list_select_related = ["endpoint"]
