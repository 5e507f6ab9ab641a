"""CSV import and export of products and variants (django-import-export), scoped to the
operator's brands: a row naming another brand's product is refused, not imported."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from import_export import fields, resources, widgets

from catalog.models import Brand, Category, Product, ProductStatus, Variant
from catalog.services import (
    VARIANT_FIELDS,
    product_refresh_search,
    product_refresh_summary,
    variant_save,
)
from markup.markdown import markdown_render


def _operated_brand_ids(user) -> set[int] | None:
    """None means all brands (superuser)."""
    if user is None or user.is_superuser:
        return None
    return set(user.operated_brands.values_list("id", flat=True))


class ProductResource(resources.ModelResource):
    brand = fields.Field(
        attribute="brand", column_name="brand", widget=widgets.ForeignKeyWidget(Brand, field="slug")
    )
    category = fields.Field(
        attribute="category",
        column_name="category",
        widget=widgets.ForeignKeyWidget(Category, field="path"),
    )

    class Meta:
        model = Product
        import_id_fields = ["slug"]
        fields = ["slug", "name", "brand", "category", "status", "description"]
        export_order = fields
        skip_unchanged = True
        clean_model_instances = True

    def before_import_row(self, row, **kwargs):
        allowed = _operated_brand_ids(kwargs.get("user"))
        if allowed is None:
            return
        brand = Brand.objects.filter(slug=row.get("brand")).first()
        existing = Product.objects.filter(slug=row.get("slug")).first()
        if (
            brand is None
            or brand.pk not in allowed
            or (existing is not None and existing.brand_id not in allowed)
        ):
            raise PermissionDenied(f"You do not operate the brand of product {row.get('slug')!r}.")
        if row.get("status") and row["status"] not in ProductStatus.values:
            raise ValueError(f"status must be one of {', '.join(ProductStatus.values)}")

    def before_save_instance(self, instance, row, **kwargs):
        instance.description_html = markdown_render(instance.description)

    def after_save_instance(self, instance, row, **kwargs):
        if not kwargs.get("dry_run"):
            product_refresh_search(product_ids=[instance.pk])
            product_refresh_summary(product_id=instance.pk)


def _values(variant: Variant) -> dict[str, object]:
    return {
        name: getattr(variant, Variant._meta.get_field(name).attname) for name in VARIANT_FIELDS
    }


class VariantResource(resources.ModelResource):
    product = fields.Field(
        attribute="product",
        column_name="product",
        widget=widgets.ForeignKeyWidget(Product, field="slug"),
    )
    options = fields.Field(attribute="options", column_name="options", widget=widgets.JSONWidget())

    class Meta:
        model = Variant
        import_id_fields = ["sku"]
        fields = [
            "sku",
            "product",
            "options",
            "price",
            "compare_at_price",
            "stock",
            "track_inventory",
            "weight_grams",
            "is_active",
        ]
        export_order = fields
        skip_unchanged = True
        clean_model_instances = True

    def before_import_row(self, row, **kwargs):
        allowed = _operated_brand_ids(kwargs.get("user"))
        if allowed is None:
            return
        product = Product.objects.filter(slug=row.get("product")).first()
        existing = Variant.objects.filter(sku=row.get("sku")).select_related("product").first()
        if (
            product is None
            or product.brand_id not in allowed
            or (existing is not None and existing.product.brand_id not in allowed)
        ):
            raise PermissionDenied(f"You do not operate the product of SKU {row.get('sku')!r}.")

    def import_instance(self, instance, row, **kwargs):
        # What the row found in the database, to write back only the columns it changes.
        instance._loaded = _values(instance)
        super().import_instance(instance, row, **kwargs)

    def do_instance_save(self, instance, is_create):
        """Through the service, naming the changed fields: a sale between loading and saving
        keeps its stock unless the file sets the stock (a count; leave the column out of a
        price-only file)."""
        if is_create:
            variant_save(variant=instance)
            return
        loaded, now = getattr(instance, "_loaded", {}), _values(instance)
        variant_save(variant=instance, fields=[n for n in now if now[n] != loaded.get(n)])

    def after_save_instance(self, instance, row, **kwargs):
        if not kwargs.get("dry_run"):
            product_refresh_summary(product_id=instance.product_id)
