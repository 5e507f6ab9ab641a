"""Writes for reviews and wishlists. Every change to a product's reviews recomputes its
rating under a lock of the product row, so concurrent reviews never leave a stale average."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, F
from django.utils import timezone

from accounts.models import User
from catalog.listing_version import listing_changed, product_changed
from catalog.models import Product
from orders.models import OrderLine, OrderStatus
from reviews.models import Review, ReviewReport, WishlistItem
from reviews.review_cache import fan_marks_changed, reviews_changed

# Reports from this many different members hide a review until a moderator looks at it.
REPORTS_TO_AUTO_HIDE = 3


def product_rating_refresh(*, product_id: int) -> None:
    """Average and count of the visible reviews. Callers hold the product row lock. Every
    change to a product's reviews comes here."""
    stats = Review.objects.filter(product_id=product_id, is_hidden=False).aggregate(
        average=Avg("rating"), count=Count("id")
    )
    average = Decimal(stats["average"] or 0).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    Product.objects.filter(pk=product_id).update(
        rating_average=average, rating_count=stats["count"]
    )
    reviews_changed(product_id=product_id)  # the product page's cached list
    listing_changed()  # the cards' stars
    product_changed(product_id=product_id)  # the product page's


def _lock_product(product_id: int) -> Product:
    return Product.objects.select_for_update().get(pk=product_id)


PURCHASED_STATUSES = [
    OrderStatus.PAID,
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
]


def review_has_verified_purchase(*, user: User, product: Product) -> bool:
    """True when the user has a paid (or shipped, delivered) order with the product."""
    return OrderLine.objects.filter(
        order__user=user, order__status__in=PURCHASED_STATUSES, variant__product=product
    ).exists()


@transaction.atomic
def review_save(
    *, product: Product, user: User, rating: int, title: str = "", body: str = ""
) -> Review:
    """Create the user's review of the product, or update it (one per product per user)."""
    if not product.is_visible:
        raise ValidationError("This product cannot be reviewed.")
    _lock_product(product.pk)
    review = Review.objects.filter(product=product, user=user).first() or Review(
        product=product,
        user=user,
        verified_purchase=review_has_verified_purchase(user=user, product=product),
    )
    review.rating, review.title, review.body = rating, title.strip(), body.strip()
    review.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError as exc:  # a concurrent first review by the same user
        raise ValidationError("You have already reviewed this product.") from exc
    product_rating_refresh(product_id=product.pk)
    fan_marks_changed(user_id=user.pk)
    return review


@transaction.atomic
def review_delete(*, review: Review, user: User) -> None:
    if review.user_id != user.pk:
        raise PermissionError("Only the author can delete a review.")
    _lock_product(review.product_id)
    review.delete()
    product_rating_refresh(product_id=review.product_id)
    fan_marks_changed(user_id=user.pk)


@transaction.atomic
def review_set_hidden(*, review_ids: list[int], hidden: bool) -> int:
    """Moderation: hide or restore reviews (and resolve their open reports)."""
    reviews = list(Review.objects.filter(pk__in=review_ids).values_list("pk", "product_id"))
    for product_id in sorted({product_id for _, product_id in reviews}):
        _lock_product(product_id)
    changed = Review.objects.filter(pk__in=[pk for pk, _ in reviews]).update(is_hidden=hidden)
    ReviewReport.objects.filter(
        review_id__in=[pk for pk, _ in reviews], resolved_at__isnull=True
    ).update(resolved_at=timezone.now())
    for product_id in sorted({product_id for _, product_id in reviews}):
        product_rating_refresh(product_id=product_id)
    return changed


@transaction.atomic
def review_report(*, review: Review, reporter: User, reason: str) -> ReviewReport:
    if review.user_id == reporter.pk:
        raise ValidationError("You cannot report your own review.")
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError("Say why this review should be looked at.")
    report, created = ReviewReport.objects.get_or_create(
        review=review, reporter=reporter, defaults={"reason": reason[:300]}
    )
    if created:
        Review.objects.filter(pk=review.pk).update(report_count=F("report_count") + 1)
        review.refresh_from_db(fields=["report_count", "is_hidden"])
        if review.report_count >= REPORTS_TO_AUTO_HIDE and not review.is_hidden:
            _lock_product(review.product_id)
            Review.objects.filter(pk=review.pk).update(is_hidden=True)
            product_rating_refresh(product_id=review.product_id)
    return report


@transaction.atomic
def wishlist_toggle(*, user: User, product: Product) -> bool:
    """Add the product to the user's wishlist, or remove it. Returns True if now on it."""
    fan_marks_changed(user_id=user.pk)  # their product pages' mark (reviews.review_cache)
    deleted, _ = WishlistItem.objects.filter(user=user, product=product).delete()
    if deleted:
        return False
    if not product.is_visible:
        raise ValidationError("This product is not available.")
    WishlistItem.objects.get_or_create(user=user, product=product)
    return True
