from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from annotate.accounts.models import Qualification, User
from annotate.core.audit import audit_record
from annotate.core.choices import AuditAction


def audit_qualification(
    request: HttpRequest, qualification: Qualification, *, created: bool, changed: list[str]
) -> None:
    """Grants and revocations made in the admin go to the audit log (the change view's transaction)."""
    if created and qualification.revoked_at is None:
        action = AuditAction.QUALIFICATION_GRANTED
    elif "revoked_at" in changed:
        revoked = qualification.revoked_at is not None
        action = AuditAction.QUALIFICATION_REVOKED if revoked else AuditAction.QUALIFICATION_GRANTED
    else:
        return
    audit_record(
        actor=request.user,
        action=action,
        obj=qualification,
        details={
            "user": qualification.user.get_username(),
            "user_id": qualification.user_id,
            "track": qualification.track,
            "via": "admin",
        },
    )


class QualificationInline(admin.TabularInline):
    model = Qualification
    fk_name = "user"
    extra = 0
    fields = ["track", "consented_at", "revoked_at", "granted_by", "granted_at"]
    readonly_fields = ["consented_at", "granted_by", "granted_at"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "kind", "is_staff", "is_exporter", "is_active", "tracks", "last_login"]
    list_filter = ["kind", "is_staff", "is_exporter", "is_active", "qualifications__track"]
    search_fields = ["username", "email", "first_name", "last_name", "pseudonym"]
    readonly_fields = ["pseudonym", "last_login", "date_joined"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Annotation platform", {"fields": ["kind", "is_exporter", "pseudonym"]}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Annotation platform", {"fields": ["kind", "is_staff", "is_exporter"]}),
    )
    inlines = [QualificationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("qualifications")

    @admin.display(description="Qualified tracks")
    def tracks(self, obj: User) -> str:
        usable = [q.track for q in obj.qualifications.all() if q.is_usable]
        return ", ".join(sorted(usable)) or "—"

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:  # type: ignore[no-untyped-def]
        changed_forms = {f.instance.pk: f.changed_data for f in formset.forms if f.instance.pk}
        for instance in formset.save(commit=False):
            created = instance.pk is None
            if isinstance(instance, Qualification) and instance.granted_by_id is None:
                instance.granted_by = request.user
            instance.save()
            if isinstance(instance, Qualification):
                changed = changed_forms.get(instance.pk, []) if not created else []
                audit_qualification(request, instance, created=created, changed=changed)
        for obj in formset.deleted_objects:
            obj.delete()
        formset.save_m2m()


@admin.register(Qualification)
class QualificationAdmin(admin.ModelAdmin):
    list_display = ["user", "track", "usable", "consented_at", "revoked_at", "granted_by", "granted_at"]
    list_filter = [
        "track",
        ("consented_at", admin.EmptyFieldListFilter),
        ("revoked_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
    readonly_fields = ["granted_by", "granted_at", "consented_at"]
    list_select_related = ["user", "granted_by"]

    @admin.display(boolean=True, description="Usable")
    def usable(self, obj: Qualification) -> bool:
        return obj.is_usable

    def save_model(self, request: HttpRequest, obj: Qualification, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        if obj.granted_by_id is None:
            obj.granted_by = request.user
        super().save_model(request, obj, form, change)
        audit_qualification(request, obj, created=not change, changed=list(form.changed_data))
