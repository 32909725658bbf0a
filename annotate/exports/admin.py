from django.contrib import admin

from annotate.core.admin_helpers import ReadOnlyAdmin
from annotate.exports.models import ExportJob


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
    ]
    list_filter = ["status", "schema", "format"]
    search_fields = ["=id", "requested_by__username", "sha256"]
    list_select_related = ["requested_by"]
