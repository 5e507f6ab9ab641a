"""Every write to the catalogue. Callers: the admin, seed_demo, CSV import, tests."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.db.models.functions import Greatest

from accounts.names import name_imitates_brand, name_imitates_staff, name_skeleton
from audit.services import audit_record
from catalog.listing_version import listing_changed, product_changed
from catalog.models import Brand, Category, Product, ProductImage, ProductStatus, Variant
from catalog.search_words import search_words_from_sql
from catalog.tasks import product_image_make_thumbnails as thumbnails_task
from catalog.thumbnails import thumbnail_render
from markup.markdown import markdown_render
from uploads.images import image_verify_and_reencode

# One statement for one product or many: the vector joins brand and category names, which an
# ORM update() cannot do. `english` stems ("phones" finds "phone"); weights rank name first.
_REFRESH_SEARCH_SQL = """
UPDATE catalog_product AS p SET
  search_vector =
      setweight(to_tsvector('english', p.name), 'A')
   || setweight(to_tsvector('english', b.name), 'B')
   || setweight(to_tsvector('english', c.full_name), 'B')
   || setweight(to_tsvector('english', coalesce(p.description, '')), 'C'),
  search_text = lower(p.name || ' ' || b.name || ' ' || c.name)
FROM catalog_brand AS b, catalog_category AS c
WHERE b.id = p.brand_id AND c.id = p.category_id AND {where}
"""


_SEARCH_WORDS_SQL = """
SELECT p.name || ' ' || b.name || ' ' || c.name || ' ' || coalesce(p.description, '')
FROM catalog_product AS p, catalog_brand AS b, catalog_category AS c
WHERE b.id = p.brand_id AND c.id = p.category_id AND {where}
"""


def product_refresh_search(
    *,
    product_ids: Iterable[int] | None = None,
    brand_id: int | None = None,
    category_ids: Iterable[int] | None = None,
) -> None:
    if product_ids is not None:
        where, params = "p.id = ANY(%s)", [list(product_ids)]
    elif brand_id is not None:
        where, params = "p.brand_id = %s", [brand_id]
    elif category_ids is not None:
        where, params = "p.category_id = ANY(%s)", [list(category_ids)]
    else:
        where, params = "TRUE", []
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH_SEARCH_SQL.format(where=where), params)
    listing_changed()
    # The words a mistyped query can be corrected to (catalog.search_words).
    search_words_from_sql(sql=_SEARCH_WORDS_SQL.format(where=where), params=params)


def product_refresh_summary(*, product_id: int) -> None:
    """Price range and availability from the product's active variants."""
    active = Variant.objects.filter(product_id=product_id, is_active=True)
    prices = active.aggregate(low=Min("price"), high=Max("price"))
    in_stock = active.filter(Q(track_inventory=False) | Q(stock__gt=0)).exists()
    product_changed(product_id=product_id)  # its page shows each variant's price and stock
    summary = {"price_min": prices["low"], "price_max": prices["high"], "in_stock": in_stock}
    # Only a summary that moved retires the listings: most sales leave it as it was.
    if Product.objects.filter(pk=product_id).exclude(**summary).update(**summary):
        listing_changed()


@transaction.atomic
def brand_check_name(*, name: str, brand_pk: int | None) -> None:
    """A brand's name shows as the badge beside its team's names: it may not pass for Fanhub
    staff, nor for another brand (the same letters with other spacing, case or look-alikes)."""
    if name_imitates_staff(name):
        raise ValidationError(
            {"name": "That name sounds like Fanhub staff or a moderator. Choose another."}
        )
    for other in Brand.objects.exclude(pk=brand_pk).values_list("name", flat=True):
        if name_skeleton(name) == name_skeleton(other) or name_imitates_brand(name, other):
            raise ValidationError({"name": f"That name is too close to the brand {other}."})


def brand_save(*, brand: Brand) -> Brand:
    brand_check_name(name=brand.name, brand_pk=brand.pk)
    name_changed = (
        bool(brand.pk) and Brand.objects.filter(pk=brand.pk).exclude(name=brand.name).exists()
    )
    brand.story_html = markdown_render(brand.story)
    brand.full_clean()
    brand.save()
    listing_changed()  # the listings' brand filter
    if name_changed:
        product_refresh_search(brand_id=brand.pk)
    return brand


@transaction.atomic
def category_save(*, category: Category) -> Category:
    """Derive path, depth and full name from the parent, refusing cycles; a move or rename
    rewrites the whole subtree."""
    parent = category.parent
    if category.pk and parent is not None:
        node = parent
        while node is not None:
            if node.pk == category.pk:
                raise ValidationError({"parent": "A category cannot be inside itself."})
            node = node.parent
    old_path = Category.objects.filter(pk=category.pk).values_list("path", flat=True).first()
    category.path = f"{parent.path}/{category.slug}" if parent else category.slug
    category.depth = parent.depth + 1 if parent else 0
    category.full_name = f"{parent.full_name} › {category.name}" if parent else category.name
    category.full_clean()
    category.save()
    listing_changed()  # the listings' category chips
    if old_path is not None:
        descendants = list(
            Category.objects.filter(path__startswith=f"{old_path}/").order_by("depth")
        )
        by_id = {category.pk: category}
        for child in descendants:
            parent_node = by_id[child.parent_id]
            child.path = f"{parent_node.path}/{child.slug}"
            child.depth = parent_node.depth + 1
            child.full_name = f"{parent_node.full_name} › {child.name}"
            by_id[child.pk] = child
        Category.objects.bulk_update(descendants, ["path", "depth", "full_name"])
        product_refresh_search(category_ids=list(by_id))
    return category


@transaction.atomic
def product_save(*, product: Product, actor=None) -> Product:
    """Create or change a product; an operator's (`actor`) change of its status (shown on
    the site or not) is audited."""
    before = None
    if actor is not None and product.pk:
        before = Product.objects.filter(pk=product.pk).values_list("status", flat=True).first()
    product.description_html = markdown_render(product.description)
    product.full_clean(exclude=["search_vector"])
    product.save()
    if before is not None and before != product.status:
        _audit_product_status(product=product, actor=actor, before=before)
    product_refresh_search(product_ids=[product.pk])
    product_refresh_summary(product_id=product.pk)
    return product


def _audit_product_status(*, product: Product, actor, before: str) -> None:
    audit_record(
        actor=actor,
        action="product.status",
        obj=product,
        brand_id=product.brand_id,
        before={"status": before},
        after={"status": product.status},
    )


@transaction.atomic
def product_set_status(*, product_ids: Iterable[int], status: ProductStatus, actor=None) -> int:
    """Show or hide products at once (an admin action); each one whose status changes is
    audited. Returns how many products were selected."""
    ids = list(product_ids)
    listing_changed()
    for product_id in ids:
        product_changed(product_id=product_id)
    changed = list(
        Product.objects.select_for_update()
        .filter(pk__in=ids)
        .exclude(status=status)
        .only("pk", "name", "status", "brand_id")
        .order_by("pk")
    )
    count = Product.objects.filter(pk__in=ids).update(status=status)
    for product in changed:
        before, product.status = product.status, status
        _audit_product_status(product=product, actor=actor, before=before)
    return count


VARIANT_FIELDS = frozenset(
    field.name for field in Variant._meta.concrete_fields if not field.primary_key
)
AUDITED_VARIANT_FIELDS = frozenset({"price", "compare_at_price", "stock", "is_active"})


@transaction.atomic
def variant_save(
    *,
    variant: Variant,
    fields: Collection[str] | None = None,
    stock_seen: int | None = None,
    actor=None,
) -> Variant:
    """Create a variant (`fields` not given), or write exactly `fields` of an existing one:
    never the whole row, since checkout moves `stock` with conditional UPDATEs meanwhile and
    a value read before a sale must not be written back over it.

    The stock rule. With `stock_seen`, the stock the operator's form showed when it loaded,
    a stock edit is an adjustment: the change they typed (`variant.stock - stock_seen`) is
    added to the stock as it is now, floored at 0, so a sale made since the page loaded is
    kept (saw 10, typed 50 after a delivery of 40, one sold meanwhile: 49). Without it (a CSV
    stocktake, a script), `variant.stock` is a count and is set as given. With `actor` (an
    operator's edit), a change of price or stock leaves an audit entry."""
    if variant._state.adding:
        variant.full_clean()
        variant.save()
        product_refresh_summary(product_id=variant.product_id)
        return variant
    if fields is None:
        raise TypeError("variant_save of an existing variant names the fields it changes")
    fields = set(fields)
    if unknown := fields - VARIANT_FIELDS:
        raise ValueError(f"not fields of a variant: {sorted(unknown)}")
    variant.full_clean()
    audited = fields & AUDITED_VARIANT_FIELDS if actor is not None else set()
    if audited:
        before = Variant.objects.filter(pk=variant.pk).values(*audited).get()
    if others := sorted(fields - {"stock"}):
        variant.save(update_fields=others)
    if "stock" in fields:
        rows = Variant.objects.filter(pk=variant.pk)
        if stock_seen is None:
            rows.update(stock=variant.stock)
        else:
            rows.update(stock=Greatest(F("stock") + (variant.stock - stock_seen), 0))
        variant.stock = rows.values_list("stock", flat=True).get()
    if fields & {"price", "stock", "track_inventory", "is_active", "product"}:
        product_refresh_summary(product_id=variant.product_id)
    if audited:
        after = {name: getattr(variant, name) for name in audited}
        if after != before:
            audit_record(
                actor=actor,
                action="variant.edit",
                obj=variant,
                brand_id=Product.objects.values_list("brand_id", flat=True).get(
                    pk=variant.product_id
                ),
                before=before,
                after=after,
                parent=variant.product,
            )
    return variant


@transaction.atomic
def product_image_add(
    *, product: Product, upload: UploadedFile, alt_text: str = "", position: int | None = None
) -> ProductImage:
    """Verify and re-encode the upload, store it, and have a worker make the thumbnails."""
    verified = image_verify_and_reencode(upload)
    if position is None:
        position = (product.images.aggregate(last=Max("position"))["last"] or -1) + 1
    image = ProductImage(product=product, alt_text=alt_text, position=position)
    image.image.save(verified.content.name, verified.content, save=False)
    image.save()
    thumbnails_task.delay_on_commit(image.pk)
    listing_changed()
    product_changed(product_id=product.pk)
    return image


def product_image_make_thumbnails(*, image_id: int) -> None:
    """Idempotent: sizes that already exist are skipped, a deleted image is ignored."""
    image = ProductImage.objects.filter(pk=image_id).first()
    if image is None:
        return
    changed = []
    for size_name, side in ProductImage.THUMBNAIL_SIZES.items():
        field = getattr(image, f"thumbnail_{size_name}")
        if field:
            continue
        with image.image.open("rb") as original:
            content = thumbnail_render(original, side=side, name=f"{size_name}-{image.pk}")
        field.save(content.name, content, save=False)
        changed.append(f"thumbnail_{size_name}")
    if changed:
        image.save(update_fields=changed)
        listing_changed()
        product_changed(product_id=image.product_id)
