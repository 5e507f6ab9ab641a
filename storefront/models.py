"""The site's own pages (help, contact, shipping and returns, terms, privacy): Markdown the
superuser edits in the admin, rendered once on save through markup.markdown."""

from django.db import models
from django.urls import reverse


class Page(models.Model):
    # The slugs config/urls.py serves, with their paths: a page answers 404 until it exists.
    SLUGS = ["help", "contact", "shipping", "terms", "privacy"]

    slug = models.SlugField(max_length=40, unique=True, help_text="help, contact, shipping, ...")
    title = models.CharField(max_length=120)
    summary = models.CharField(
        max_length=200, blank=True, help_text="One line for search engines and the page head."
    )
    body = models.TextField(help_text="Markdown.")
    body_html = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("page", kwargs={"slug": self.slug})
