from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone


class Brand(models.Model):
    """A brand that sells on Fanhub; its operators run it in the admin (scoped to it)."""

    # How the admin scoping (catalog.admin_scoping) finds the brand of a row of this model.
    brand_lookup = ""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    story = models.TextField(blank=True, help_text="Markdown. Who the brand is and what it makes.")
    story_html = models.TextField(blank=True, editable=False)
    logo = models.ImageField(upload_to="brands/logos/", blank=True)
    operators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="operated_brands",
        blank=True,
        through="BrandOperator",
    )
    staff_refund_limit = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("100.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="The largest refund the brand's staff may make at once; owners have no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("storefront:brand", kwargs={"slug": self.slug})


class BrandRole(models.TextChoices):
    OWNER = "owner", "Owner"  # everything, including the team and the brand's settings
    STAFF = "staff", "Staff"  # products, orders, batches, moderation; refunds up to a limit


class BrandOperator(models.Model):
    """A member of a brand's team and their role (catalog.team changes these)."""

    brand_lookup = "brand"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="team")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="brand_roles"
    )
    # Owner by default: before roles every operator could do everything, and code adding one
    # without a role (brand.operators.add) keeps that meaning. The team's own services and
    # the invitations always name the role.
    role = models.CharField(max_length=10, choices=BrandRole.choices, default=BrandRole.OWNER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "catalog_brand_operators"  # the table of the former plain many-to-many
        ordering = ["brand", "role", "id"]
        verbose_name = "team member"
        unique_together = [("brand", "user")]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} of {self.brand}"


class BrandInvitation(models.Model):
    """An owner invites a colleague by email; the colleague signs up (or in) through the
    link and joins the team with the role. Single use; expires."""

    brand_lookup = "brand"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=BrandRole.choices, default=BrandRole.STAFF)
    token = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open invitation per address and brand (accepted or revoked ones stay).
            models.UniqueConstraint(
                F("brand"),
                Lower("email"),
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="catalog_invitation_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.brand} ({self.get_role_display()})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"

    def accept_path(self) -> str:
        return reverse("catalog:invitation", kwargs={"token": self.token})


class Category(models.Model):
    """A node of the category tree. `path` is the slugs from the root joined by "/", so a
    subtree is one indexed prefix query and breadcrumbs are one query by `path__in`."""

    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=255, unique=True, editable=False)
    full_name = models.CharField(max_length=255, editable=False)
    depth = models.PositiveSmallIntegerField(default=0, editable=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["path"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "slug"], name="catalog_category_slug_per_parent"
            ),
        ]
        indexes = [
            models.Index(
                fields=["path"],
                name="catalog_category_path_like",
                opclasses=["varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:category", kwargs={"path": self.path})

    def ancestor_paths(self) -> list[str]:
        parts = self.path.split("/")
        return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class ProductStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


class Product(models.Model):
    brand_lookup = "brand"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="products")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    description_html = models.TextField(blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=ProductStatus.choices, default=ProductStatus.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Kept by catalog.services from the variants, so lists filter and sort without joins.
    price_min = models.DecimalField(max_digits=10, decimal_places=2, null=True, editable=False)
    price_max = models.DecimalField(max_digits=10, decimal_places=2, null=True, editable=False)
    in_stock = models.BooleanField(default=False, editable=False)
    # Kept by reviews.services from the visible reviews.
    rating_average = models.DecimalField(
        max_digits=3, decimal_places=2, default=Decimal("0"), editable=False
    )
    rating_count = models.PositiveIntegerField(default=0, editable=False)
    # Kept by catalog.services: name (A), brand and category (B), description (C).
    search_vector = SearchVectorField(null=True, editable=False)
    search_text = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # fastupdate off: with it, writes pile up in the index's pending list, which the
            # planner prices so high that it scans the whole table instead (a search at
            # 100,000 products went from 0.1 ms to 100 ms until a vacuum ran).
            GinIndex(fields=["search_vector"], name="catalog_product_search", fastupdate=False),
            GinIndex(
                fields=["search_text"],
                name="catalog_product_trgm",
                opclasses=["gin_trgm_ops"],
                fastupdate=False,
            ),
            # With the id tie-break, the default listing is an index scan, not a sort.
            models.Index(fields=["status", "-created_at", "-id"], name="catalog_product_newest"),
            models.Index(fields=["status", "price_min"], name="catalog_product_price"),
            models.Index(fields=["brand", "status"], name="catalog_product_brand"),
            models.Index(fields=["category", "status"], name="catalog_product_category"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("storefront:product", kwargs={"slug": self.slug})

    @property
    def is_visible(self) -> bool:
        return self.status == ProductStatus.ACTIVE


class ProductSpecification(models.Model):
    brand_lookup = "product__brand"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="specifications")
    name = models.CharField(max_length=80)
    value = models.CharField(max_length=255)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"


def product_image_upload_to(instance: "ProductImage", filename: str) -> str:
    return f"products/{instance.product_id}/{filename}"


class ProductImage(models.Model):
    brand_lookup = "product__brand"
    THUMBNAIL_SIZES = {"small": 240, "large": 720}

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(
        upload_to=product_image_upload_to, width_field="width", height_field="height"
    )
    width = models.PositiveIntegerField(default=0, editable=False)
    height = models.PositiveIntegerField(default=0, editable=False)
    thumbnail_small = models.ImageField(
        upload_to=product_image_upload_to, blank=True, editable=False
    )
    thumbnail_large = models.ImageField(
        upload_to=product_image_upload_to, blank=True, editable=False
    )
    alt_text = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    # An image of one option value (the red ones): the product page shows it first when the
    # chosen variant has that value. Both blank for an image of the product as a whole.
    option_name = models.CharField(
        max_length=80, blank=True, help_text='The option it shows, e.g. "colour".'
    )
    option_value = models.CharField(
        max_length=80, blank=True, help_text='The value it shows, e.g. "Red".'
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.alt_text or f"Image {self.position + 1} of {self.product}"

    def shows(self, variant: "Variant") -> bool:
        """Whether this image is tagged with one of the variant's option values."""
        if not self.option_name:
            return False
        return variant.option_map.get(self.option_name) == self.option_value

    @property
    def small_url(self) -> str:
        """The thumbnail once the worker made it; the original until then."""
        return (self.thumbnail_small or self.image).url

    @property
    def large_url(self) -> str:
        return (self.thumbnail_large or self.image).url


def validate_option_map(value: object) -> None:
    """Variant options are an object of option name -> value, both text (`{"colour": "Red"}`):
    the product page, the variant list and checkout read them as such."""
    if not isinstance(value, dict):
        raise ValidationError(
            'Options must be an object of name and value, e.g. {"colour": "Red"}.',
            code="options_not_object",
        )
    for name, option in value.items():
        if not isinstance(name, str) or not name.strip() or not isinstance(option, str):
            raise ValidationError(
                'Each option needs a name and a text value, e.g. {"colour": "Red"}.',
                code="options_not_text",
            )


class Variant(models.Model):
    brand_lookup = "product__brand"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField("SKU", max_length=64, unique=True)
    options = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_option_map],
        help_text='Option values, e.g. {"colour": "Black", "storage": "256 GB"}.',
    )
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    compare_at_price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The former price, shown struck through. Must be above the price.",
    )
    track_inventory = models.BooleanField(default=True)
    stock = models.IntegerField(default=0, validators=[MinValueValidator(0)])
    weight_grams = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            # The messages are what a form or a CSV import shows (not the constraint's name).
            models.CheckConstraint(
                condition=Q(stock__gte=0),
                name="catalog_variant_stock_not_negative",
                violation_error_message="The stock cannot be below 0.",
            ),
            models.CheckConstraint(
                condition=Q(price__gt=0),
                name="catalog_variant_price_positive",
                violation_error_message="The price must be above 0.",
            ),
            models.CheckConstraint(
                condition=Q(compare_at_price__isnull=True) | Q(compare_at_price__gt=F("price")),
                name="catalog_variant_compare_at_above_price",
                violation_error_message="The compare-at price must be above the price.",
            ),
            models.UniqueConstraint(
                fields=["product", "options"], name="catalog_variant_options_unique"
            ),
        ]

    def __str__(self) -> str:
        label = self.option_label
        return f"{self.product.name} ({label})" if label else self.product.name

    @property
    def option_map(self) -> dict[str, str]:
        """The options as name -> text; {} for a malformed value stored before validation
        (pages must still render)."""
        if not isinstance(self.options, dict):
            return {}
        return {str(name): str(value) for name, value in self.options.items()}

    @property
    def option_label(self) -> str:
        return " / ".join(self.option_map.values())

    @property
    def is_available(self) -> bool:
        return self.is_active and (not self.track_inventory or self.stock > 0)


class StockAlertStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for stock"
    SENT = "sent", "Told"
    CANCELLED = "cancelled", "Cancelled"


class StockAlert(models.Model):
    """A fan who asked to be told when an out-of-stock variant is back: one row per fan and
    variant, told once by the sweep in catalog.stock_alerts, then done (asking again reopens
    the same row)."""

    brand_lookup = "variant__product__brand"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stock_alerts"
    )
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="stock_alerts")
    status = models.CharField(
        max_length=10, choices=StockAlertStatus.choices, default=StockAlertStatus.WAITING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "variant"], name="catalog_stock_alert_once"),
        ]
        indexes = [
            # The sweep reads only the waiting rows, by variant.
            models.Index(
                fields=["variant", "id"],
                name="catalog_stock_alert_waiting",
                condition=Q(status="waiting"),
            ),
        ]

    def __str__(self) -> str:
        return f"Stock alert {self.pk}: {self.variant_id} for {self.user_id} ({self.status})"


class ImportJobStatus(models.TextChoices):
    PREVIEWING = "previewing", "Checking the file"
    PREVIEWED = "previewed", "Checked"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Not imported"


class ImportJob(models.Model):
    """A large CSV import run by a worker (catalog.imports): checked first (a dry run), then
    imported once the operator confirms. Belongs to the operator who uploaded it; the rows
    it may touch are scoped to their brands when it runs."""

    RESOURCES = [("product", "Products"), ("variant", "Variants")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    resource = models.CharField(max_length=20, choices=RESOURCES)
    file_name = models.CharField(max_length=255, blank=True)
    data = models.TextField(help_text="The uploaded CSV text.")
    status = models.CharField(
        max_length=20, choices=ImportJobStatus.choices, default=ImportJobStatus.PREVIEWING
    )
    total_rows = models.PositiveIntegerField(default=0)
    # Counts by outcome ("new", "update", "skip", "invalid") of the last run.
    totals = models.JSONField(default=dict, blank=True)
    # [{"row": 12, "column": "stock", "message": "..."}], at most IMPORT_ERRORS_KEPT.
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.file_name or self.resource}"

    @property
    def is_running(self) -> bool:
        return self.status in (ImportJobStatus.PREVIEWING, ImportJobStatus.IMPORTING)


class SearchWord(models.Model):
    """A word of the catalogue or the communities that a mistyped query word can be corrected
    to, with its deletion neighbourhood (catalog.search_words)."""

    word = models.CharField(max_length=32, primary_key=True)
    deletes = ArrayField(models.CharField(max_length=32))

    class Meta:
        indexes = [
            GinIndex(fields=["deletes"], name="catalog_searchword_deletes", fastupdate=False)
        ]

    def __str__(self) -> str:
        return self.word


class ProductViewDay(models.Model):
    """How many times a product's page was seen on a day (the store's time zone), folded in
    from Redis counters by catalog.product_views."""

    brand_lookup = "product__brand"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="view_days")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "day"], name="catalog_product_view_day")
        ]

    def __str__(self) -> str:
        return f"{self.product_id} on {self.day}: {self.views}"


class ExportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """A CSV export run by a worker (catalog.exports): a feature app registers an exporter
    for its `kind`; the file is kept here and offered to the operator who asked, and only
    to them, once it is done."""

    brand_lookup = "brand"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="export_jobs")
    kind = models.CharField(max_length=40)
    # What to export, e.g. {"ids": [...]}: read by the exporter, scoped to `brand`.
    params = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=255)
    status = models.CharField(
        max_length=20, choices=ExportJobStatus.choices, default=ExportJobStatus.QUEUED
    )
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    content = models.TextField(blank=True, help_text="The CSV text, once done.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched when the worker claims the job and at each progress step: a running job whose
    # heartbeat stopped lost its worker (catalog.job_upkeep fails it).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failure = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Export {self.pk}: {self.file_name}"

    @property
    def is_running(self) -> bool:
        return self.status in (ExportJobStatus.QUEUED, ExportJobStatus.RUNNING)
