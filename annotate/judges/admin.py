"""Admin for AI judges: edit a judge (saving a change publishes a new version), preview the exact messages on
a real item, start a run (the run "add" page is a form over judge_run_start), follow it, act on it, and read
its figures against the humans."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from annotate.batches.models import Batch, Item, ItemStatus
from annotate.core.admin_helpers import ReadOnlyAdmin, short
from annotate.core.errors import DomainError
from annotate.judges import selectors, services
from annotate.judges.models import Judge, JudgeRun, JudgeVersion, Verdict


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["name", "sampling_config", "current_version", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    fields = [
        "name",
        "description",
        "sampling_config",
        "json_mode",
        "enabled",
        "helpfulness_prompt",
        "safety_prompt",
        "safety_principles",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Judge | None = None) -> list[str]:
        # The name is part of every version's label (ai:<name>@v<n>): fixed once versions exist.
        return ["name"] if obj is not None and obj.pk else []

    @admin.display(description="Current version")
    def current_version(self, obj: Judge) -> str:
        latest = obj.versions.order_by("-version").first()
        return latest.label if latest else "-"

    def save_model(self, request: HttpRequest, obj: Judge, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        version = services.judge_publish_version(judge_id=obj.pk, user=request.user)  # type: ignore[arg-type]
        self.message_user(request, f"Runs of {obj.name} now use {version.label}.", level=messages.INFO)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.preview_view)
        return [path("<int:judge_id>/preview/", view, name="judges_judge_preview"), *super().get_urls()]

    def preview_view(self, request: HttpRequest, judge_id: int) -> HttpResponse:
        judge = Judge.objects.select_related("sampling_config__endpoint").filter(pk=judge_id).first()
        if judge is None:
            raise Http404("No such judge.")
        if not self.has_view_permission(request, judge):
            raise PermissionDenied
        raw = request.GET.get("item", "")
        item = None
        error = ""
        if raw:
            item = (
                Item.objects.select_related("batch").filter(pk=int(raw), status=ItemStatus.READY).first()
                if raw.isdigit()
                else None
            )
            if item is None:
                error = "No ready item with that id."
        else:
            item = (
                Item.objects.select_related("batch").filter(status=ItemStatus.READY).order_by("-pk").first()
            )
        previews = selectors.judge_preview(judge=judge, item=item) if item is not None else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "judge": judge,
            "item": item,
            "error": error,
            "item_value": raw,
            "orders": [{"order": n, "messages": msgs} for n, msgs in enumerate(previews)],
            "title": f"Preview of {judge.name}",
        }
        return TemplateResponse(request, "admin/judges/judge/preview.html", context)


@admin.register(JudgeVersion)
class JudgeVersionAdmin(ReadOnlyAdmin):
    list_display = ["label", "judge", "sampling_config", "user", "created_at"]
    list_filter = ["judge"]
    list_select_related = ["judge", "sampling_config", "user"]


class StartRunForm(forms.Form):
    judge = forms.ModelChoiceField(queryset=Judge.objects.filter(enabled=True))
    batch = forms.ModelChoiceField(queryset=Batch.objects.all())
    sample_size = forms.IntegerField(
        required=False, min_value=1, max_value=services.MAX_SAMPLE, help_text="Empty: every ready item."
    )
    seed = forms.IntegerField(required=False, min_value=0, help_text="Empty: chosen at random and stored.")
    triage = forms.BooleanField(
        required=False, help_text="Send items where the judge and the first human disagree to one more human."
    )
    triage_ceiling = forms.IntegerField(
        required=False, min_value=2, max_value=50, help_text="Empty: the batch's overlap + 1."
    )


@admin.register(JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin):
    list_display = ["id", "version", "batch", "status", "items_total", "progress", "triage", "created_at"]
    list_filter = ["status", "triage"]
    list_select_related = ["version", "batch"]
    actions = ["cancel_runs", "retry_failed", "enqueue_pending", "triage_now"]
    readonly_fields = [
        "version", "batch", "sample_size", "seed", "items_total", "status", "triage", "triage_ceiling",
        "created_by", "created_at", "finished_at", "progress", "stats_link",
    ]  # fmt: skip

    def has_change_permission(self, request: HttpRequest, obj: JudgeRun | None = None) -> bool:
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: JudgeRun | None = None) -> bool:
        return False

    @admin.display(description="Progress")
    def progress(self, obj: JudgeRun) -> str:
        data = selectors.judge_run_to_dict(obj)
        v = data["verdicts"]
        failures = ", ".join(f"{k or '?'} {n}" for k, n in data["failures"].items())
        return (
            f"{data['percent']}% ({v['ok']} ok, {v['failed']} failed, {v['pending']} pending "
            f"of {v['total']}); "
            f"{data['ai_judgments']} judgments" + (f"; failed: {failures}" if failures else "")
        )

    @admin.display(description="Figures")
    def stats_link(self, obj: JudgeRun) -> str:
        from django.utils.html import format_html

        url = reverse("admin:judges_judgerun_stats", args=[obj.pk])
        return format_html('<a href="{}">Judge vs humans</a>', url)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.stats_view)
        return [path("<int:run_id>/stats/", view, name="judges_judgerun_stats"), *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StartRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                run = services.judge_run_start(
                    judge_id=data["judge"].pk,
                    batch_id=data["batch"].pk,
                    user=request.user,  # type: ignore[arg-type]
                    sample_size=data["sample_size"],
                    seed=data["seed"],
                    triage=data["triage"],
                    triage_ceiling=data["triage_ceiling"],
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                self.message_user(request, f"Started {run}: {run.items_total} items.", level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:judges_judgerun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Start a judging run",
        }
        return TemplateResponse(request, "admin/judges/judgerun/start.html", context)

    def stats_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        run = JudgeRun.objects.select_related("version", "batch").filter(pk=run_id).first()
        if run is None:
            raise Http404("No such run.")
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "run": run,
            "progress": selectors.judge_run_to_dict(run),
            "stats": selectors.judge_stats(version=run.version, batch=run.batch),
            "title": f"{run.version.label} against the humans of {run.batch}",
        }
        return TemplateResponse(request, "admin/judges/judgerun/stats.html", context)

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        done = 0
        for run in queryset.filter(status="running"):
            services.judge_run_cancel(run_id=run.pk)
            done += 1
        self.message_user(request, f"Cancelled {done} run(s).")

    @admin.action(description="Retry the failed verdicts of the selected runs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        total = sum(services.judge_run_retry_failed(run_id=run.pk) for run in queryset)
        self.message_user(request, f"{total} failed verdict(s) put back to pending.")

    @admin.action(description="Enqueue the pending verdicts again (safe: a task skips finished work)")
    def enqueue_pending(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        from annotate.judges.tasks import judge_run_enqueue

        for run in queryset.filter(status="running"):
            judge_run_enqueue.delay(run.pk)
        self.message_user(request, "Enqueued.")

    @admin.action(description="Triage now (items where the judge and the first human disagree)")
    def triage_now(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        total = sum(services.judge_run_triage(run_id=run.pk) for run in queryset.filter(triage=True))
        self.message_user(request, f"{total} item(s) sent to one more human.")


@admin.register(Verdict)
class VerdictAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "item",
        "order",
        "status",
        "failure",
        "attempts",
        "short_rationale",
        "judged_at",
    ]
    list_filter = ["status", "failure", "order"]
    search_fields = ["=item__id", "=run__id"]
    list_select_related = ["run"]
    show_full_result_count = False

    @admin.display(description="Rationale")
    def short_rationale(self, obj: Verdict) -> str:
        return short(obj.rationale or obj.error, 80)
