from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from audit.models import AuditEntry
from catalog.admin_scoping import BrandScopedAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(BrandScopedAdmin):
    """The brand's audit log: who changed money, stock, state or access, when, and the
    values before and after. Nobody adds, edits or deletes an entry here (superusers
    included), and the database refuses it anyway (audit/migrations/0002)."""

    list_display = ["created_at", "actor_label", "brand", "action", "object_repr", "summary"]
    list_filter = ["action", ("brand", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["object_repr", "actor_label", "action", "note"]
    list_select_related = ["brand", "content_type"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor_label",
        "brand",
        "action",
        "content_type",
        "object_id",
        "object_repr",
        "summary",
        "note",
    ]
    readonly_fields = fields

    @admin.display(description="before → after")
    def summary(self, entry: AuditEntry):
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            "{}: {} → {}",
            (
                (name, "—" if before is None else before, "—" if after is None else after)
                for name, before, after in entry.changes()
            ),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
