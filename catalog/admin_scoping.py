"""Brand scoping for the whole admin, built once.

Every model that belongs to a brand declares `brand_lookup`, the ORM path from it to its
Brand ("" for Brand itself, "brand" for Product, "product__brand" for Variant, ...). Every
ModelAdmin of such a model uses `BrandScopedAdmin` (inlines: `BrandScopedInline`), which limits
to the operator's brands:
- lists, change / delete / history views and actions (all go through get_queryset),
- search and autocomplete (they search get_queryset of the related model's admin),
- exports (django-import-export exports the changelist queryset),
- every foreign-key and many-to-many choice whose model has a `brand_lookup`.
Superusers see everything. tests/test_admin_scoping.py walks every registered ModelAdmin, so
an admin added without this base fails the suite.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest


def brand_owned(model: type[Model]) -> bool:
    return hasattr(model, "brand_lookup")


def operator_filter(model: type[Model], user) -> Q:
    """Rows of `model` that belong to a brand `user` operates."""
    lookup = model.brand_lookup
    return Q(**{f"{lookup}__operators" if lookup else "operators": user})


def scope_queryset(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    if request.user.is_superuser:
        return queryset
    if not request.user.is_active or not request.user.is_staff:
        return queryset.none()
    # distinct(): a brand with several operators would otherwise repeat rows.
    return queryset.filter(operator_filter(queryset.model, request.user)).distinct()


class _ScopedChoicesMixin:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if brand_owned(related) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if brand_owned(related) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class BrandScopedAdmin(_ScopedChoicesMixin, admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_queryset(super().get_queryset(request), request)


class BrandScopedInline(_ScopedChoicesMixin):
    """Mix into TabularInline / StackedInline: the rows come from the (scoped) parent; this
    scopes the foreign-key choices inside them."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_queryset(super().get_queryset(request), request)
