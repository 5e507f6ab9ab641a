"""The catalogue's CSV exports (products, variants) for a worker's export job
(catalog.exports): the columns of the import resources (catalog.admin_resources), so a file
exported, edited and uploaded again imports as it was; formula-safe, and scoped to the
job's brand."""

from __future__ import annotations

from collections.abc import Iterator

from catalog.admin_resources import ProductResource, VariantResource
from catalog.exports import csv_safe, export_register
from catalog.models import Brand, Product, Variant


def _rows(resource, queryset) -> Iterator[list]:
    yield resource.get_export_headers()
    for instance in queryset.iterator(chunk_size=2000):
        yield csv_safe(resource.export_resource(instance))


def products_export(*, brand: Brand, params: dict) -> tuple[int, Iterator[list]]:
    products = (
        Product.objects.filter(pk__in=params.get("ids", []), brand=brand)
        .select_related("brand", "category")
        .order_by("pk")
    )
    return products.count(), _rows(ProductResource(), products)


def variants_export(*, brand: Brand, params: dict) -> tuple[int, Iterator[list]]:
    variants = (
        Variant.objects.filter(pk__in=params.get("ids", []), product__brand=brand)
        .select_related("product")
        .order_by("pk")
    )
    return variants.count(), _rows(VariantResource(), variants)


def catalogue_exports_register() -> None:
    export_register("catalog.products", products_export)
    export_register("catalog.variants", variants_export)
