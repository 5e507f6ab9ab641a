from django.conf import settings
from django.db import models


class CustomerNote(models.Model):
    """A note a brand's team leaves about a fan ("prefers email", "sent a replacement"),
    shown on the fan's page in the console to that brand's team only."""

    brand_lookup = "brand"

    brand = models.ForeignKey("catalog.Brand", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["brand", "customer"], name="console_note_customer")]

    def __str__(self) -> str:
        return f"Note on {self.customer_id} by {self.author_id}"
