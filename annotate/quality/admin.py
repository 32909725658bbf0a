"""Quality in the admin: reports (read-only, with their annotator rows), gold items on the item form, and
the batch admin's "recompute quality" action and dashboard link.

Wired into annotate/batches/admin.py:
    ItemAdmin.form = GoldItemForm (gold_slot / gold_min_strength / gold_ranking instead of raw JSON)
    BatchAdmin: list_display += [batch_quality_link], actions += [recompute_quality]
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from kombu.exceptions import OperationalError as KombuOperationalError

from annotate.batches.models import Batch, Item
from annotate.core.admin_helpers import ReadOnlyAdmin
from annotate.core.choices import Mode, Strength
from annotate.core.errors import DomainError
from annotate.quality.models import AnnotatorStats, QualityReport
from annotate.quality.services import gold_expected_parse, quality_enqueue_recompute


class GoldItemForm(forms.ModelForm):
    """The expected answer of a gold item as form fields, checked against the batch's mode and K."""

    gold_slot = forms.IntegerField(
        required=False, min_value=0, label="Gold: better response (slot)", help_text="Pairwise: 0 or 1."
    )
    gold_min_strength = forms.ChoiceField(
        required=False,
        choices=[("", "any strength"), *Strength.choices],
        label="Gold: at least this strength",
    )
    gold_ranking = forms.CharField(
        required=False,
        label="Gold: expected ranking",
        help_text="Ranking batches: the slots best first, e.g. 2,0,1,3.",
    )

    class Meta:
        model = Item
        fields = [
            "batch",
            "conversation",
            "status",
            "wanted",
            "is_gold",
            "metadata",
            "source",
            "external_id",
            "turn_index",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        expected = self.instance.gold_expected if self.instance and self.instance.pk else None
        if expected:
            self.initial.setdefault("gold_slot", expected.get("slot"))
            self.initial.setdefault("gold_min_strength", expected.get("min_strength") or "")
            if expected.get("ranking") is not None:
                self.initial.setdefault("gold_ranking", ",".join(str(s) for s in expected["ranking"]))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        batch: Batch | None = data.get("batch") or getattr(self.instance, "batch", None)
        if not data.get("is_gold"):
            self.instance.gold_expected = None
            return data
        if batch is None:
            return data
        if batch.mode == Mode.PAIRWISE:
            raw: dict[str, Any] = {
                "slot": data.get("gold_slot"),
                "min_strength": data.get("gold_min_strength"),
            }
        else:
            text = (data.get("gold_ranking") or "").replace(" ", "")
            try:
                ranking: Any = [int(part) for part in text.split(",") if part]
            except ValueError:
                ranking = None
            raw = {"ranking": ranking}
        try:
            self.instance.gold_expected = gold_expected_parse(batch=batch, raw=raw)
        except DomainError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return data


class AnnotatorStatsInline(admin.TabularInline):
    model = AnnotatorStats
    extra = 0
    can_delete = False
    fields = [
        "annotator",
        "judgments",
        "median_time_ms",
        "agreement",
        "agreement_n",
        "gold_accuracy",
        "gold_n",
        "left_share",
        "longer_share",
        "flagged",
        "flag_reasons",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(QualityReport)
class QualityReportAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "n_judgments",
        "agreement_rate",
        "alpha_nominal",
        "alpha_ordinal",
        "alpha_ranking",
        "computed_at",
        "dashboard",
    ]
    list_filter = ["scope", "track"]
    list_select_related = ["batch"]
    inlines = [AnnotatorStatsInline]
    exclude = ["leaderboard", "judgments_per_day"]

    @admin.display(description="Dashboard")
    def dashboard(self, obj: QualityReport) -> SafeString:
        if obj.batch_id is not None:
            return format_html('<a href="{}">open</a>', reverse("quality:batch", args=[obj.batch_id]))
        return format_html('<a href="{}">open</a>', reverse("quality:track", args=[obj.track]))


@admin.register(AnnotatorStats)
class AnnotatorStatsAdmin(ReadOnlyAdmin):
    list_display = [
        "annotator",
        "batch",
        "judgments",
        "agreement",
        "gold_accuracy",
        "left_share",
        "longer_share",
        "flagged",
    ]
    list_filter = ["flagged", "batch__track"]
    list_select_related = ["annotator", "batch"]
    search_fields = ["annotator__username", "=batch__id"]


@admin.display(description="Quality")
def batch_quality_link(obj: Batch) -> SafeString:
    return format_html('<a href="{}">dashboard</a>', reverse("quality:batch", args=[obj.pk]))


@admin.action(description="Recompute quality figures now (queued)")
def recompute_quality(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
    rows = list(queryset.values_list("pk", "track"))
    try:
        quality_enqueue_recompute(
            batch_ids=[pk for pk, _ in rows], tracks=sorted({track for _, track in rows})
        )
    except KombuOperationalError:
        modeladmin.message_user(
            request, "The task broker is unreachable, so nothing was queued.", level=messages.ERROR
        )
        return
    modeladmin.message_user(
        request, f"Quality recomputation queued for {len(rows)} batch(es).", level=messages.SUCCESS
    )


@admin.action(description="Unmark as gold")
def unmark_gold(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Item]) -> None:
    changed = queryset.filter(is_gold=True).update(is_gold=False, gold_expected=None)
    modeladmin.message_user(request, f"{changed} item(s) are no longer gold.", level=messages.SUCCESS)
