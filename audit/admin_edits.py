"""The admin side of `audited_save`/`audited_delete`: a ModelAdmin whose rows (or inline
rows) have no other rule than their form saves and deletes them through the audit service."""

from collections.abc import Collection

from django.contrib import admin
from django.db.models import Model

from audit.services import audited_delete, audited_save


class _AuditedAdmin(admin.ModelAdmin):
    def audited_brand_id(self, obj) -> int | None:
        """The brand whose operators see the entry; the row's own `brand_id` by default."""
        return obj.brand_id


class AuditedEditsAdmin(_AuditedAdmin):
    audited_fields: Collection[str] = ()

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


class AuditedInlinesAdmin(_AuditedAdmin):
    """The rows of the inlines named in `audited_inlines` ({model: fields}) are saved and
    deleted one by one through the audit service, each entry under the parent object."""

    audited_inlines: dict[type[Model], Collection[str]] = {}

    def save_formset(self, request, form, formset, change):
        fields = self.audited_inlines.get(formset.model)
        if fields is None:
            return super().save_formset(request, form, formset, change)
        parent = form.instance
        audited = {
            "actor": request.user,
            "brand_id": self.audited_brand_id(parent),
            "fields": fields,
            "parent": parent,
        }
        rows = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audited_delete(obj=obj, **audited)
        for obj in rows:
            audited_save(obj=obj, **audited)
        formset.save_m2m()
