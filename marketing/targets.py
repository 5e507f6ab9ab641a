"""Where a placement's scan lands: a small registry of target kinds, each able to list a
brand's choices and to give an object's URL. marketing registers the kinds it may import
(the brand page, a product, a community); storefront registers pre-order batches and
campaigns (apps on marketing's own layer, which it must not import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class TargetKind:
    key: str
    label: str
    # (brand ids) -> [(object id, label)] for the admin's choices
    choices: Callable[[list[int]], list[tuple[int, str]]]
    # (object id) -> (url, brand id) or None when it no longer exists
    resolve: Callable[[int], tuple[str, int] | None]


_kinds: dict[str, TargetKind] = {}


def target_kind_register(kind: TargetKind) -> None:
    _kinds[kind.key] = kind


def target_kinds() -> dict[str, TargetKind]:
    return dict(_kinds)


def target_url(placement) -> str:
    """The target's page; the brand page when the kind or the object is gone (or belongs to
    another brand: a target is always one of the placement's brand)."""
    kind = _kinds.get(placement.target_kind)
    if kind is not None and placement.target_id:
        found = kind.resolve(placement.target_id)
        if found is not None and found[1] == placement.brand_id:
            return found[0]
    return placement.brand.get_absolute_url()


def target_label(placement) -> str:
    kind = _kinds.get(placement.target_kind)
    if kind is None:
        return str(_("Brand page"))
    if placement.target_id:
        for pk, label in kind.choices([placement.brand_id]):
            if pk == placement.target_id:
                return f"{kind.label}: {label}"
    return str(kind.label)


def target_choices(brand_ids: list[int]) -> list[tuple[str, str]]:
    """Every target of these brands, as "kind:id" (the brand page is "brand:")."""
    choices: list[tuple[str, str]] = [("brand:", str(_("The brand page")))]
    for kind in _kinds.values():
        if kind.key == "brand":
            continue
        choices += [
            (f"{kind.key}:{pk}", f"{kind.label}: {label}") for pk, label in kind.choices(brand_ids)
        ]
    return choices


def targets_register_defaults() -> None:
    from catalog.models import Brand, Product
    from communities.models import Community

    def product_resolve(pk: int):
        product = Product.objects.filter(pk=pk).first()
        return (product.get_absolute_url(), product.brand_id) if product else None

    def community_resolve(pk: int):
        community = Community.objects.filter(pk=pk, brand__isnull=False).first()
        return (community.get_absolute_url(), community.brand_id) if community else None

    def brand_resolve(pk: int):
        brand = Brand.objects.filter(pk=pk).first()
        return (brand.get_absolute_url(), brand.pk) if brand else None

    target_kind_register(TargetKind("brand", str(_("Brand page")), lambda ids: [], brand_resolve))
    target_kind_register(
        TargetKind(
            "product",
            str(_("Product")),
            lambda ids: list(
                Product.objects.filter(brand_id__in=ids).order_by("name").values_list("pk", "name")
            ),
            product_resolve,
        )
    )
    target_kind_register(
        TargetKind(
            "community",
            str(_("Community")),
            lambda ids: list(
                Community.objects.filter(brand_id__in=ids)
                .order_by("name")
                .values_list("pk", "name")
            ),
            community_resolve,
        )
    )
