"""The batch admin's "Import prompts (JSONL)" page: a file upload that goes through `batch_import_prompts`.

A mixin for BatchAdmin, so the page lives apart from the admin's other code. The button on the batch's change
page comes from frontend/templates/admin/batches/batch/change_form.html (Django's per-model template).

Uploads stream: Django keeps files up to FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) in memory and writes bigger
ones to a temporary file, which the import then reads in chunks. DATA_UPLOAD_MAX_MEMORY_SIZE counts only the
non-file fields of a multipart body, so it does not limit the file.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from annotate.batches.imports import ImportReport, batch_import_prompts
from annotate.batches.models import Batch
from annotate.core.choices import Mode
from annotate.core.errors import DomainError


class PromptImportForm(forms.Form):
    file = forms.FileField(
        label="JSONL file", help_text="One JSON object per line; see the format below.", allow_empty_file=True
    )


class PromptImportAdminMixin:
    """Adds <batch id>/import-prompts/ to a ModelAdmin of Batch."""

    def get_urls(self) -> list[URLPattern]:
        urls = super().get_urls()  # type: ignore[misc]
        opts = self.model._meta  # type: ignore[attr-defined]
        view = self.admin_site.admin_view(self.import_prompts_view)  # type: ignore[attr-defined]
        # Before the default patterns: "<path:object_id>/" would swallow this one otherwise.
        return [
            path(
                "<path:object_id>/import-prompts/",
                view,
                name=f"{opts.app_label}_{opts.model_name}_import_prompts",
            ),
            *urls,
        ]

    def import_prompts_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        batch = Batch.objects.filter(pk=int(object_id)).first() if object_id.isdigit() else None
        if batch is None:
            raise Http404("No such batch.")
        if not self.has_change_permission(request, batch):  # type: ignore[attr-defined]
            raise PermissionDenied
        report: ImportReport | None = None
        if request.method == "POST":
            form = PromptImportForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    report = batch_import_prompts(batch_id=batch.pk, stream=upload, user=request.user)
                except DomainError as exc:
                    form.add_error(None, exc.message)
                else:
                    if not report.refused:
                        self.message_user(  # type: ignore[attr-defined]
                            request, f"{batch.name}: {report.summary()}", level=messages.SUCCESS
                        )
                        change_url = reverse(
                            f"{self.admin_site.name}:batches_batch_change",  # type: ignore[attr-defined]
                            args=[batch.pk],
                        )
                        return HttpResponseRedirect(change_url)
        else:
            form = PromptImportForm()
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "original": batch,
            "title": f"Import prompts into {batch.name}",
            "form": form,
            "report": report,
            "k": batch.responses_per_item,
            "is_pairwise": batch.mode == Mode.PAIRWISE,
        }
        return TemplateResponse(request, "admin/batches/import_prompts.html", context)
