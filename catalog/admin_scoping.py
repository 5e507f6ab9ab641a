"""Brand scoping for the whole admin, built once.

Every model that belongs to a brand declares `brand_lookup`, the ORM path from it to its
Brand ("" for Brand itself, "brand" for Product, "product__brand" for Variant, ...). Every
ModelAdmin of such a model uses `BrandScopedAdmin` (inlines: `BrandScopedInline`), which limits
to the operator's brands:
- lists, change / delete / history views and actions (all go through get_queryset),
- search and autocomplete (they search get_queryset of the related model's admin),
- exports (django-import-export exports the changelist queryset),
- every foreign-key and many-to-many choice whose model has a `brand_lookup`.
The admin's "view on site" shortcut goes through the same scoping (`admin_shortcut`, routed
in config/urls.py ahead of the admin's own), and every admin form verifies its images
(uploads.forms). Superusers see everything. tests/test_admin_scoping.py walks every registered
ModelAdmin, so an admin added without this base fails the suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from uploads.forms import VerifiedImagesModelForm


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
            # An operator of one brand finds it chosen already on every form.
            if related.brand_lookup == "" and not request.user.is_superuser:
                only = list(kwargs["queryset"][:2])
                if len(only) == 1:
                    kwargs.setdefault("initial", only[0].pk)
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and type(field.widget) is AutocompleteSelect:
            field.widget.__class__ = TamperProofAutocompleteSelect
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if brand_owned(related) and "queryset" not in kwargs:
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class BrandScopedAdmin(_ScopedChoicesMixin, admin.ModelAdmin):
    # Every image field of an admin form goes through uploads' verification.
    form = VerifiedImagesModelForm

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_queryset(super().get_queryset(request), request)


class BrandScopedInline(_ScopedChoicesMixin):
    """Mix into TabularInline / StackedInline: the rows come from the (scoped) parent; this
    scopes the foreign-key choices inside them."""

    form = VerifiedImagesModelForm

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_queryset(super().get_queryset(request), request)


def admin_shortcut(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """The admin's "view on site" redirect (/admin/r/<ct>/<id>/), looked up through the
    model's ModelAdmin (its scoped queryset and view permission): for an operator another
    brand's object, or a model they may not view, is the same 404 as an id that does not
    exist, so the redirect cannot reveal draft slugs or order numbers."""
    if not request.user.is_superuser:
        try:
            model = ContentType.objects.get_for_id(content_type_id).model_class()
        except ContentType.DoesNotExist:
            model = None
        model_admin = admin.site._registry.get(model) if model is not None else None
        visible = (
            model_admin is not None
            and model_admin.has_view_permission(request)
            and _pk_valid(model, object_id)
            and model_admin.get_queryset(request).filter(pk=object_id).exists()
        )
        if not visible:
            raise Http404(f"Content type {content_type_id} object {object_id} doesn't exist")
    return contenttype_views.shortcut(request, content_type_id, object_id)


def _pk_valid(model: type[Model], object_id: str) -> bool:
    try:
        model._meta.pk.to_python(object_id)
    except ValidationError:
        return False
    return True


def related_as_text(field_name: str, description: str):
    """A read-only display of a related object as plain text (no link), for operators on
    pages whose related admin they may not open (users, saved cards): a link there is a 403."""

    @admin.display(description=description)
    def show(model_admin, obj) -> str:
        value = getattr(obj, field_name, None)
        return "-" if value is None else str(value)

    show.__name__ = f"{field_name}_text"
    return show


def as_text_for_operators(
    request: HttpRequest, names: Sequence[str], text_fields: Iterable[str]
) -> list[str]:
    """`names` with each of `text_fields` replaced by its `<name>_text` display for operators;
    superusers keep the links."""
    if request.user.is_superuser:
        return list(names)
    text_fields = set(text_fields)
    return [f"{name}_text" if name in text_fields else name for name in names]


class MembersAsTextMixin:
    """Operators may not open the user admin: the members on these pages are plain text for
    them (a link would be a 403); superusers keep the links."""

    member_fields: tuple[str, ...] = ()

    def get_fields(self, request, obj=None):
        return as_text_for_operators(request, super().get_fields(request, obj), self.member_fields)

    def get_readonly_fields(self, request, obj=None):
        return as_text_for_operators(
            request, super().get_readonly_fields(request, obj), self.member_fields
        )


class TamperProofAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete redraws a refused form with the posted id looked up as is, so
    `product=abc` was a 500 instead of "Select a valid choice": a value that is no id of
    the related model is simply not shown again."""

    def optgroups(self, name, value, attr=None):
        field = self.choices.field
        to_field = field.to_field_name or "pk"
        valid = []
        for item in value:
            try:
                field.queryset.model._meta.get_field(
                    to_field if to_field != "pk" else field.queryset.model._meta.pk.name
                ).to_python(item)
            except (ValidationError, ValueError, TypeError):
                continue
            valid.append(item)
        return super().optgroups(name, valid, attr)
