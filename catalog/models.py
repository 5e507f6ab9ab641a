from django.conf import settings
from django.db import models
from django.urls import reverse


class Brand(models.Model):
    """A brand that sells on Fanhub; its operators run it in the admin (scoped to it)."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    story = models.TextField(blank=True, help_text="Markdown. Who the brand is and what it makes.")
    logo = models.ImageField(upload_to="brands/logos/", blank=True)
    operators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="operated_brands", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:brand", kwargs={"slug": self.slug})
