from __future__ import annotations

from django.contrib import admin
from django.utils.safestring import SafeString

from annotate.core.admin_helpers import ReadOnlyAdmin, rendered_block
from annotate.judgments.models import Judgment


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "batch",
        "annotator",
        "track",
        "mode",
        "strength",
        "safety_bin",
        "flagged",
        "time_spent_ms",
        "created_at",
    ]
    list_filter = ["track", "mode", "strength", "safety_bin", "flagged", "annotator__kind", "batch"]
    search_fields = ["annotator__username", "=item__id", "=id"]
    list_select_related = ["batch", "annotator"]
    date_hierarchy = "created_at"
    exclude = ["rationale"]
    readonly_fields = ["rationale_rendered"]
    show_full_result_count = False

    @admin.display(description="Rationale")
    def rationale_rendered(self, obj: Judgment) -> SafeString:
        return rendered_block(obj.rationale)
