"""Reads that join several apps for the composed pages (layer 5): the brand's fan club and
the product's open pre-order batch, shown on product and brand pages."""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils import timezone

from catalog.models import Product
from communities.models import Community, CommunityKind
from preorders.models import BatchStatus, PreorderBatch, PriceTier
from preorders.selectors import batch_progress
from storefront.info_pages import page_default
from storefront.models import Page


def brand_community(*, brand_id: int) -> Community | None:
    """The brand's fan club (the biggest, should it have several); one query."""
    return (
        Community.objects.filter(brand_id=brand_id, kind=CommunityKind.BRAND)
        .order_by("-member_count", "id")
        .first()
    )


def product_open_batch(*, product: Product) -> PreorderBatch | None:
    """The product's open pre-order batch closing soonest, with its `progress`; two queries."""
    now = timezone.now()
    batch = (
        PreorderBatch.objects.filter(
            product=product, status=BatchStatus.OPEN, opens_at__lte=now, closes_at__gt=now
        )
        .prefetch_related(Prefetch("tiers", queryset=PriceTier.objects.order_by("min_quantity")))
        .order_by("closes_at", "id")
        .first()
    )
    if batch is not None:
        batch.progress = batch_progress(batch=batch)
    return batch


def page_by_slug(*, slug: str) -> Page | None:
    """The page as the superuser wrote it, else its starting text (never a footer 404)."""
    return Page.objects.filter(slug=slug).first() or page_default(slug=slug)
