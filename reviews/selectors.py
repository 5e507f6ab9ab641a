from django.db.models import Exists, OuterRef, QuerySet, Subquery

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


def fan_marks(*, product_id: int, user: User) -> tuple | None:
    """The fan's marks on a product page, in one query: (own review id, its save time, on
    their wishlist); None for no such product."""
    own = Review.objects.filter(product=OuterRef("pk"), user=user)
    wished = WishlistItem.objects.filter(product=OuterRef("pk"), user=user)
    return (
        Product.objects.filter(pk=product_id)
        .annotate(
            own_review=Subquery(own.values("pk")[:1]),
            own_review_at=Subquery(own.values("updated_at")[:1]),
            on_wishlist=Exists(wished),
        )
        .values_list("own_review", "own_review_at", "on_wishlist")
        .first()
    )


def wishlist_contains(*, user: User, product: Product) -> bool:
    return (
        user.is_authenticated and WishlistItem.objects.filter(user=user, product=product).exists()
    )


def wishlist_products(*, user: User) -> QuerySet[Product]:
    """The user's wishlisted products that are still on sale, newest addition first."""
    return product_cards(
        Product.objects.filter(wishlisted_by__user=user, status=ProductStatus.ACTIVE)
    ).order_by("-wishlisted_by__created_at", "-id")
