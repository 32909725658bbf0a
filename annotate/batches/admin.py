from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from kombu.exceptions import OperationalError as KombuOperationalError

from annotate.batches import selectors, services
from annotate.batches.admin_import import PromptImportAdminMixin
from annotate.batches.models import Batch, BatchStatus, Dialogue, Item, Response
from annotate.core.admin_helpers import conversation_block, rendered_block, short
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction
from annotate.core.errors import DomainError
from annotate.exports.admin import batch_export_actions, batch_export_link
from annotate.quality.admin import GoldItemForm, batch_quality_link, recompute_quality, unmark_gold


@admin.register(Batch)
class BatchAdmin(PromptImportAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "track",
        "mode",
        "responses_per_item",
        "overlap",
        "status",
        "items_ready",
        "judgments_progress",
        "active_leases",
        "created_at",
        batch_export_link,
        batch_quality_link,
    ]
    list_filter = ["status", "track", "mode", "prompt_source"]
    search_fields = ["name", "description"]
    filter_horizontal = ["sampling_configs"]
    readonly_fields = [
        "guidelines_version",
        "created_by",
        "created_at",
        "updated_at",
        "opened_at",
        "closed_at",
        "generation_progress",
    ]
    fieldsets = [
        (None, {"fields": ["name", "description", "status"]}),
        (
            "Task",
            {"fields": ["track", "mode", "responses_per_item", "overlap", "lease_minutes", "gold_rate"]},
        ),
        ("Prompts and generation", {"fields": ["prompt_source", "sampling_configs", "generation_progress"]}),
        ("Guidelines", {"fields": ["guidelines", "guidelines_version"]}),
        (
            "Quality (docs/quality.md)",
            {
                "fields": [
                    "adaptive_overlap",
                    "overlap_ceiling",
                    "adaptive_rule",
                    "flag_min_agreement",
                    "flag_min_gold_accuracy",
                    "flag_min_evidence",
                ]
            },
        ),
        ("History", {"fields": ["created_by", "created_at", "updated_at", "opened_at", "closed_at"]}),
    ]
    actions = [
        "open_batches",
        "pause_batches",
        "close_batches",
        "start_generation",
        "retry_failed_responses",
        "drop_failed_items",
        *batch_export_actions,
        recompute_quality,
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Batch]:
        return selectors.batches_with_progress(super().get_queryset(request))

    @admin.display(description="Items ready", ordering="n_items_ready")
    def items_ready(self, obj: Batch) -> str:
        dropped = f" ({obj.n_items_dropped} dropped)" if obj.n_items_dropped else ""
        return f"{obj.n_items_ready} / {obj.n_items}{dropped}"

    @admin.display(description="Judgments done / wanted", ordering="n_judgments")
    def judgments_progress(self, obj: Batch) -> SafeString:
        wanted = obj.n_wanted or 0
        done = obj.n_judgments or 0
        percent = round(100 * done / wanted) if wanted else 0
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress> {} / {}', percent, percent, done, wanted
        )

    @admin.display(description="Active leases", ordering="n_active")
    def active_leases(self, obj: Batch) -> int:
        return obj.n_active

    def save_model(self, request: HttpRequest, obj: Batch, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        # The admin's change view runs in one transaction: the audit events commit with the change.
        if not change:
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,
                action=AuditAction.BATCH_CREATED,
                obj=obj,
                details={"fields": sorted(form.changed_data), "via": "admin"},
            )
            return
        new_guidelines = obj.guidelines
        new_overlap = obj.overlap
        new_status = obj.status
        original = Batch.objects.get(pk=obj.pk)
        # Fields with rules of their own go through their services; the rest saves as usual.
        obj.guidelines, obj.overlap, obj.status = original.guidelines, original.overlap, original.status
        super().save_model(request, obj, form, change)
        plain = sorted(set(form.changed_data) - {"guidelines", "overlap", "status"})
        if plain:
            audit_record(
                actor=request.user,
                action=AuditAction.BATCH_UPDATED,
                obj=obj,
                details={"fields": plain, "via": "admin"},
            )
        try:
            if "guidelines" in form.changed_data:
                services.batch_update_guidelines(
                    batch_id=obj.pk, guidelines=new_guidelines, actor=request.user
                )
            if "overlap" in form.changed_data:
                services.batch_set_overlap(batch_id=obj.pk, overlap=new_overlap, actor=request.user)
            if "status" in form.changed_data:
                services.batch_set_status(batch_id=obj.pk, status=new_status, actor=request.user)
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        obj.refresh_from_db()

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Batch], status: str) -> None:
        changed = 0
        for batch_id in queryset.values_list("pk", flat=True):
            try:
                services.batch_set_status(batch_id=batch_id, status=status, actor=request.user)
                changed += 1
            except DomainError as exc:
                self.message_user(request, f"Batch {batch_id}: {exc.message}", level=messages.WARNING)
        if changed:
            self.message_user(request, f"{changed} batch(es) now {status}.", level=messages.SUCCESS)

    @admin.action(description="Open selected batches")
    def open_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._set_status(request, queryset, BatchStatus.OPEN)

    @admin.action(description="Pause selected batches")
    def pause_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._set_status(request, queryset, BatchStatus.PAUSED)

    @admin.action(description="Close selected batches")
    def close_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._set_status(request, queryset, BatchStatus.CLOSED)

    @admin.display(description="Generation")
    def generation_progress(self, obj: Batch) -> str:
        if obj.pk is None:
            return "-"
        p = selectors.batch_generation_progress(batch=obj)
        return (
            f"{p.ok} ok, {p.pending} pending, {p.failed} failed of {p.responses} responses; "
            f"{p.items_waiting} item(s) waiting"
        )

    def _each_batch(self, request: HttpRequest, queryset: QuerySet[Batch], run, describe) -> None:  # type: ignore[no-untyped-def]
        for batch in queryset.order_by("pk"):
            try:
                result = run(batch_id=batch.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{batch.name}: {exc.message}", level=messages.WARNING)
                continue
            except KombuOperationalError:
                # The change is committed; only sending the tasks (after commit) failed.
                self.message_user(
                    request,
                    f"{batch.name}: saved, but the task broker is unreachable, so nothing was queued. "
                    "Run “Start generation” again once it is back (a generating batch is only re-queued).",
                    level=messages.ERROR,
                )
                continue
            batch.refresh_from_db()
            p = selectors.batch_generation_progress(batch=batch)
            self.message_user(
                request,
                f"{batch.name}: {describe(result)} Now {batch.status}: {p.ok} ok, {p.pending} pending, "
                f"{p.failed} failed responses.",
                level=messages.SUCCESS,
            )

    @admin.action(description="Start generation (create and generate missing responses)")
    def start_generation(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._each_batch(
            request,
            queryset,
            services.batch_start_generation,
            lambda r: f"{r.responses_created} response(s) created, {r.items_ready} item(s) ready.",
        )

    @admin.action(description="Retry failed responses")
    def retry_failed_responses(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._each_batch(
            request, queryset, services.batch_retry_failed, lambda n: f"{n} response(s) re-queued."
        )

    @admin.action(description="Drop items with failed responses")
    def drop_failed_items(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        self._each_batch(
            request, queryset, services.batch_drop_failed_items, lambda n: f"{n} item(s) dropped."
        )


class ResponseInline(admin.StackedInline):
    model = Response
    extra = 0
    can_delete = False
    fields = ["slot", "model_name", "sampling_config", "status", "rendered", "error", "latency_ms"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    @admin.display(description="Content (rendered, sanitized)")
    def rendered(self, obj: Response) -> SafeString:
        return rendered_block(obj.content)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "batch", "prompt", "status", "taken", "wanted", "is_gold", "source", "created_at"]
    list_filter = ["status", "is_gold", "source", "batch__track", "batch"]
    search_fields = ["external_id", "content_hash", "=id"]
    list_select_related = ["batch"]
    readonly_fields = [
        "conversation_rendered",
        "content_hash",
        "taken",
        "created_by",
        "created_at",
        "dialogue",
    ]
    fields = [
        "batch",
        "conversation_rendered",
        "conversation",
        "status",
        "wanted",
        "taken",
        "is_gold",
        "gold_slot",
        "gold_min_strength",
        "gold_ranking",
        "metadata",
        "source",
        "external_id",
        "content_hash",
        "dialogue",
        "turn_index",
        "created_by",
        "created_at",
    ]
    raw_id_fields = ["batch"]
    form = GoldItemForm
    actions = [unmark_gold]
    inlines = [ResponseInline]
    show_full_result_count = False  # no COUNT(*) over a million items on every page

    @admin.display(description="Last user turn")
    def prompt(self, obj: Item) -> str:
        return short(obj.last_user_message)

    @admin.display(description="Conversation (rendered, sanitized)")
    def conversation_rendered(self, obj: Item) -> SafeString:
        return conversation_block(obj.conversation)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "item",
        "slot",
        "model_name",
        "status",
        "attempts",
        "latency_ms",
        "completion_tokens",
    ]
    list_filter = ["status", "model_name", "sampling_config"]
    search_fields = ["=id", "=item__id", "model_name", "error"]
    raw_id_fields = ["item"]
    list_select_related = ["item"]
    readonly_fields = ["rendered", "generated_at", "request_id", "attempts"]
    show_full_result_count = False

    @admin.display(description="Content (rendered, sanitized)")
    def rendered(self, obj: Response) -> SafeString:
        return rendered_block(obj.content)


class TurnInline(admin.TabularInline):
    model = Item
    fields = ["turn_index", "status", "prompt", "taken", "wanted"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["turn_index"]

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    @admin.display(description="User turn")
    def prompt(self, obj: Item) -> str:
        return short(obj.last_user_message)


@admin.register(Dialogue)
class DialogueAdmin(admin.ModelAdmin):
    """Live dialogues: read-only here (annotators write them in the workbench)."""

    list_display = ["id", "batch", "author", "status", "created_at", "ended_at"]
    list_filter = ["status", "batch"]
    list_select_related = ["batch", "author"]
    readonly_fields = ["id", "batch", "author", "status", "idempotency_key", "created_at", "ended_at"]
    fields = readonly_fields
    inlines = [TurnInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
