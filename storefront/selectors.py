"""Reads that join several apps for the composed pages (layer 5): the brand's fan club and
the product's open pre-order batch, shown on product and brand pages; a fan's own summary
across every brand, on their profile."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch
from django.utils import timezone

from accounts.models import User
from catalog.models import Product
from catalog.selectors import product_visible
from communities.models import Community, CommunityKind, Post
from communities.selectors import honour_of, posts_by
from crowdfunding.models import Pledge
from crowdfunding.selectors import pledges_of
from orders.models import Order
from orders.selectors import order_list_for
from preorders.models import BatchStatus, PreorderBatch, PriceTier, Reservation
from preorders.selectors import batch_progress, reservations_of
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


SUMMARY_ROWS = 5


@dataclass
class FanSummary:
    orders: list[Order]
    reservations: list[Reservation]
    pledges: list[Pledge]
    posts: list[Post]
    communities: list[dict]  # honour_of: level, points, progress to the next, badges


def fan_summary(*, user: User, rows: int = SUMMARY_ROWS) -> FanSummary:
    """What the fan did, across every brand: their latest orders, pre-order reservations,
    pledges and posts, and their level in each community; six queries, whatever they did.
    Only the user's own rows (each app's selector filters by the user)."""
    return FanSummary(
        orders=list(order_list_for(user=user)[:rows]),
        # Without the batches' price ladders: the summary shows no price.
        reservations=list(reservations_of(user=user).prefetch_related(None)[:rows]),
        pledges=list(pledges_of(user=user)[:rows]),
        posts=list(posts_by(author=user)[:rows]),
        communities=honour_of(user=user),
    )


def product_id_for(*, slug: str) -> int | None:
    return product_visible().filter(slug=slug).values_list("pk", flat=True).first()
