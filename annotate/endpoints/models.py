"""Model endpoints (OpenAI-compatible chat-completions servers) and sampling configs."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from annotate.core.models import TimeStampedModel
from annotate.endpoints import ssrf

ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")


class ModelEndpoint(TimeStampedModel):
    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(
        max_length=500,
        help_text="Base URL of the OpenAI-compatible API, e.g. http://vllm:8000/v1 (http or https only).",
    )
    model = models.CharField(max_length=200, help_text="Model name sent in the request's `model` field.")
    api_key_env = models.CharField(
        max_length=128,
        blank=True,
        validators=[RegexValidator(ENV_VAR_NAME, "Use an environment variable name like OPENAI_API_KEY.")],
        help_text="Name of the environment variable that holds the API key. The key itself is never stored.",
    )
    timeout_s = models.FloatField(default=60.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)])
    max_concurrency = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1)], help_text="Simultaneous requests across all workers."
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty for no limit."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(timeout_s__gt=0), name="endpoint_timeout_positive"),
            models.CheckConstraint(condition=Q(max_concurrency__gte=1), name="endpoint_concurrency_positive"),
            models.CheckConstraint(
                condition=Q(requests_per_minute__isnull=True) | Q(requests_per_minute__gte=1),
                name="endpoint_rpm_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.base_url and not self.base_url.lower().startswith(("http://", "https://")):
            raise ValidationError({"base_url": "Only http:// and https:// URLs are allowed."})
        if self.base_url:
            # The save-time half of the SSRF guard (the client checks again for every connection).
            try:
                ssrf.validate_url(self.base_url)
            except ssrf.EndpointRefused as exc:
                raise ValidationError({"base_url": str(exc)}) from None


class SamplingConfig(TimeStampedModel):
    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.PROTECT, related_name="sampling_configs")
    label = models.CharField(max_length=100, unique=True, help_text="e.g. llama-3-70b-t0.7")
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    top_p = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    max_tokens = models.PositiveIntegerField(
        default=1024, validators=[MinValueValidator(1), MaxValueValidator(262_144)]
    )
    system_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    extra_params = models.JSONField(
        default=dict, blank=True, help_text='Extra request fields, e.g. {"presence_penalty": 0.5}.'
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2), name="sampling_temperature_range"
            ),
            models.CheckConstraint(condition=Q(top_p__gte=0) & Q(top_p__lte=1), name="sampling_top_p_range"),
            models.CheckConstraint(condition=Q(max_tokens__gte=1), name="sampling_max_tokens_positive"),
        ]

    def __str__(self) -> str:
        return self.label

    # Fields the request builder may never take from extra_params: they are set by the config itself.
    RESERVED_PARAMS = frozenset({"model", "messages", "stream", "temperature", "top_p", "max_tokens", "seed"})

    def clean(self) -> None:
        if not isinstance(self.extra_params, dict):
            raise ValidationError({"extra_params": "Must be a JSON object."})
        clash = sorted(self.RESERVED_PARAMS & set(self.extra_params))
        if clash:
            raise ValidationError({"extra_params": f"Set these with their own fields: {', '.join(clash)}."})
