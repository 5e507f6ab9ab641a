from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Product


class Review(models.Model):
    brand_lookup = "product__brand"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews"
    )
    rating = models.PositiveSmallIntegerField(choices=[(n, f"{n} / 5") for n in range(1, 6)])
    title = models.CharField(max_length=120, blank=True)
    body = models.TextField(max_length=5000, blank=True)
    verified_purchase = models.BooleanField(default=False, editable=False)
    is_hidden = models.BooleanField(default=False, help_text="Hidden by a moderator.")
    report_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "user"], name="reviews_one_per_user"),
            models.CheckConstraint(
                condition=Q(rating__gte=1, rating__lte=5), name="reviews_rating_1_to_5"
            ),
        ]
        indexes = [
            models.Index(
                fields=["product", "is_hidden", "-created_at"], name="reviews_product_visible"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5 for {self.product} by {self.user}"


class ReviewReport(models.Model):
    brand_lookup = "review__product__brand"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_reports"
    )
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["review", "reporter"], name="reviews_report_once"),
        ]

    def __str__(self) -> str:
        return f"Report on {self.review_id} by {self.reporter}"


class WishlistItem(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wishlist_items"
    )
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="wishlisted_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "product"], name="reviews_wishlist_once"),
        ]

    def __str__(self) -> str:
        return f"{self.product} on {self.user}'s wishlist"
