"""Export jobs in the admin: read-only rows with download links, and exporting batches from the batch admin.

For the batch admin (annotate/batches/admin.py), the lead wires in:
    from annotate.exports.admin import batch_export_actions, batch_export_link
    list_display = [..., batch_export_link]           # an "Export…" button per batch (schema/format form)
    actions = [..., *batch_export_actions]            # export the selected batches (JSONL / Parquet)
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from annotate.core.admin_helpers import ReadOnlyAdmin
from annotate.core.errors import DomainError
from annotate.exports.models import ExportFormat, ExportJob, ExportSchema, ExportStatus
from annotate.exports.selectors import export_open_file
from annotate.exports.services import export_request

PARTS = (("data", "file"), ("manifest", "manifest.json"), ("readme", "README.md"))


def _may_export(request: HttpRequest) -> bool:
    user: Any = request.user
    return bool(
        user.is_active and (user.is_staff or user.is_superuser or getattr(user, "is_exporter", False))
    )


def _job_link(job: ExportJob) -> SafeString:
    url = reverse("admin:exports_exportjob_change", args=[job.pk])
    return format_html('<a href="{}">export {}</a>', url, job.pk)


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "schema",
        "format",
        "status",
        "row_count",
        "requested_by",
        "created_at",
        "finished_at",
        "download",
    ]
    list_filter = ["status", "schema", "format"]
    search_fields = ["=id", "requested_by__username", "sha256"]
    list_select_related = ["requested_by"]
    readonly_fields = ["download", "error"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "<int:job_id>/download/<str:part>/",
                view(self.download_view),
                name="exports_exportjob_download",
            ),
            path("batch/<int:batch_id>/", view(self.batch_export_view), name="exports_batch_export"),
            *super().get_urls(),
        ]

    @admin.display(description="Download")
    def download(self, obj: ExportJob) -> SafeString | str:
        if obj.status != ExportStatus.DONE:
            return obj.get_status_display() if obj.status != ExportStatus.FAILED else "failed (see error)"
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:exports_exportjob_download", args=[obj.pk, part]), label)
                for part, label in PARTS
            ),
        )

    def download_view(self, request: HttpRequest, job_id: int, part: str) -> HttpResponse:
        job = get_object_or_404(ExportJob, pk=job_id)
        if not self.has_view_permission(request, job):
            return HttpResponse(status=403)
        try:
            download = export_open_file(job, part=part)
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.WARNING)
            return HttpResponseRedirect(reverse("admin:exports_exportjob_changelist"))
        return FileResponse(
            download.file, as_attachment=True, filename=download.filename, content_type=download.content_type
        )

    def batch_export_view(self, request: HttpRequest, batch_id: int) -> HttpResponse:
        from annotate.batches.models import Batch

        batch = get_object_or_404(Batch, pk=batch_id)
        if not _may_export(request):
            return HttpResponse(status=403)
        if request.method == "POST":
            try:
                job = export_request(
                    user=request.user,
                    spec={"batches": [batch.pk]},
                    schema=request.POST.get("schema"),
                    format=request.POST.get("format"),
                )
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
            else:
                self.message_user(
                    request,
                    format_html(
                        "Batch {} queued as {}; it is ready when its status is done.", batch, _job_link(job)
                    ),
                    level=messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:exports_exportjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Export batch “{batch}”",
            "batch": batch,
            "schemas": ExportSchema.choices,
            "formats": ExportFormat.choices,
            "opts": self.model._meta,
            "recent": ExportJob.objects.filter(spec__batches=[batch.pk]).order_by("-created_at")[:10],
        }
        return TemplateResponse(request, "admin/exports/batch_export.html", context)


# --- For the batch admin ----------------------------------------------------------------------------------


@admin.display(description="Export")
def batch_export_link(batch: Any) -> SafeString:
    url = reverse("admin:exports_batch_export", args=[batch.pk])
    return format_html('<a class="button" href="{}">Export…</a>', url)


def _export_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, fmt: str
) -> None:
    if not _may_export(request):
        modeladmin.message_user(request, "You may not create exports.", level=messages.ERROR)
        return
    ids = sorted(queryset.values_list("pk", flat=True))
    try:
        job = export_request(
            user=request.user, spec={"batches": ids}, schema=ExportSchema.TRL_PREFERENCE, format=fmt
        )
    except DomainError as exc:
        modeladmin.message_user(request, exc.message, level=messages.ERROR)
        return
    modeladmin.message_user(
        request,
        format_html("{} batch(es) queued as {} (TRL preference, {}).", len(ids), _job_link(job), fmt),
        level=messages.SUCCESS,
    )


@admin.action(description="Export selected batches (TRL preference, JSONL)")
def export_batches_jsonl(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _export_selected(modeladmin, request, queryset, ExportFormat.JSONL)


@admin.action(description="Export selected batches (TRL preference, Parquet)")
def export_batches_parquet(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    _export_selected(modeladmin, request, queryset, ExportFormat.PARQUET)


batch_export_actions = [export_batches_jsonl, export_batches_parquet]
