"""The admin side of `audited_save`/`audited_delete`: a ModelAdmin whose rows have no other
rule than their form saves and deletes them through the audit service."""

from collections.abc import Collection

from django.contrib import admin

from audit.services import audited_delete, audited_save


class AuditedEditsAdmin(admin.ModelAdmin):
    audited_fields: Collection[str] = ()

    def audited_brand_id(self, obj) -> int | None:
        """The brand whose operators see the entry; the row's own `brand_id` by default."""
        return obj.brand_id

    def _audited(self, request, obj) -> dict:
        return {
            "obj": obj,
            "actor": request.user,
            "brand_id": self.audited_brand_id(obj),
            "fields": self.audited_fields,
        }

    def save_model(self, request, obj, form, change):
        audited_save(**self._audited(request, obj))

    def delete_model(self, request, obj):
        audited_delete(**self._audited(request, obj))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
