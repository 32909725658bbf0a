from django.contrib import admin

from annotate.assignments.models import Assignment
from annotate.core.admin_helpers import ReadOnlyAdmin


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "batch", "item", "annotator", "status", "leased_at", "expires_at", "flag"]
    list_filter = ["status", "flag", "batch"]
    search_fields = ["annotator__username", "=item__id", "=id", "skip_reason", "flag_note"]
    list_select_related = ["batch", "annotator", "item"]
    date_hierarchy = "leased_at"
    show_full_result_count = False
