from django.db.models import QuerySet

from accounts.models import User
from catalog.models import Product, ProductStatus
from catalog.selectors import product_cards
from reviews.models import Review, WishlistItem

REVIEWS_ON_PRODUCT_PAGE = 20


def product_reviews(*, product: Product) -> QuerySet[Review]:
    return (
        Review.objects.filter(product=product, is_hidden=False)
        .select_related("user")
        .order_by("-created_at", "-id")
    )


def review_of_user(*, product: Product, user: User) -> Review | None:
    if not user.is_authenticated:
        return None
    return Review.objects.filter(product=product, user=user).first()


def wishlist_contains(*, user: User, product: Product) -> bool:
    return (
        user.is_authenticated and WishlistItem.objects.filter(user=user, product=product).exists()
    )


def wishlist_products(*, user: User) -> QuerySet[Product]:
    """The user's wishlisted products that are still on sale, newest addition first."""
    return product_cards(
        Product.objects.filter(wishlisted_by__user=user, status=ProductStatus.ACTIVE)
    ).order_by("-wishlisted_by__created_at", "-id")
