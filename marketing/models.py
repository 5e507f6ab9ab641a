"""Vouchers (discount codes of a brand) and placements (where a brand shows a QR code, and
what each scan of it led to).

Counters that can run out are guarded in the database: a voucher's `used` and a code's
`used` only move through conditional UPDATEs (marketing.vouchers), with CheckConstraints
behind them; once per customer is a pair of partial UniqueConstraints on the uses (the
account, and the normalised email at the time of use), so neither a second account with the
same address nor a changed address gets a second use."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from catalog.models import Brand, Category, Product
from orders.models import Order

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L


def code_generate(length: int = 10) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def token_generate() -> str:
    return secrets.token_urlsafe(9)  # 12 characters


class VoucherKind(models.TextChoices):
    PERCENT = "percent", _("Percentage off")
    FIXED = "fixed", _("Fixed amount off")


class VoucherScope(models.TextChoices):
    ORDER = "order", _("The brand's lines of the order")
    PRODUCTS = "products", _("Given products")
    CATEGORIES = "categories", _("Given categories")
    SHIPPING = "shipping", _("Shipping")


class Voucher(models.Model):
    brand_lookup = "brand"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="vouchers")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=VoucherKind.choices, default=VoucherKind.PERCENT)
    value = models.DecimalField(
        max_digits=10, decimal_places=2, help_text=_("Percent (1-100) or an amount.")
    )
    scope = models.CharField(
        max_length=12, choices=VoucherScope.choices, default=VoucherScope.ORDER
    )
    products = models.ManyToManyField(Product, blank=True, related_name="vouchers")
    categories = models.ManyToManyField(
        Category,
        blank=True,
        related_name="vouchers",
        help_text=_("A category includes its subcategories."),
    )
    min_spend = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("On the lines the voucher applies to."),
    )
    min_quantity = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    usage_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Uses over all its codes; empty for no limit.")
    )
    used = models.PositiveIntegerField(default=0, editable=False)
    once_per_customer = models.BooleanField(default=True)
    new_customers_only = models.BooleanField(default=False)
    claim_only = models.BooleanField(
        default=False,
        help_text=_(
            "Only for fans who claimed it by scanning a placement: each gets a personal code "
            "bound to their account, so the code cannot be passed around."
        ),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(used__lte=F("usage_limit")),
                name="marketing_voucher_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(value__gt=0), name="marketing_voucher_value_positive"
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=100),
                name="marketing_voucher_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=F("starts_at")),
                name="marketing_voucher_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def value_label(self) -> str:
        from formatting.formats import money

        if self.kind == VoucherKind.PERCENT:
            return f"{self.value.normalize():f}%"
        return money(self.value)


class VoucherCode(models.Model):
    brand_lookup = "voucher__brand"

    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="codes")
    code = models.CharField(max_length=40, unique=True)
    usage_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Uses of this code; empty for the voucher's limit only.")
    )
    used = models.PositiveIntegerField(default=0, editable=False)
    # A personal code (a scan-claimed voucher): only this account may use it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="voucher_codes",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["voucher", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(used__lte=F("usage_limit")),
                name="marketing_code_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z0-9_-]{3,40}$"), name="marketing_code_shape"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class VoucherUse(models.Model):
    """A use of a voucher by an order, taken when the order is placed (so 3-D Secure and
    slow payments hold it too); `released_at` when the order is cancelled or refunded."""

    brand_lookup = "voucher__brand"

    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="uses")
    code = models.ForeignKey(VoucherCode, on_delete=models.CASCADE, related_name="uses")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="voucher_uses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The buyer's email, normalised (marketing.vouchers.email_key), as it was at the use.
    email_key = models.CharField(max_length=254)
    once_per_customer = models.BooleanField(default=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(released_at__isnull=True),
                name="marketing_use_one_per_order",
            ),
            models.UniqueConstraint(
                fields=["voucher", "user"],
                condition=Q(released_at__isnull=True, once_per_customer=True),
                name="marketing_use_once_per_account",
            ),
            models.UniqueConstraint(
                fields=["voucher", "email_key"],
                condition=Q(released_at__isnull=True, once_per_customer=True),
                name="marketing_use_once_per_email",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="marketing_use_amount"),
        ]

    def __str__(self) -> str:
        return f"{self.code} on {self.order_id}"


class PlacementKind(models.TextChoices):
    POSTER = "poster", _("Poster")
    SHOP_WINDOW = "shop_window", _("Shop window")
    EVENT = "event", _("Event")
    PRODUCT_TAG = "product_tag", _("Product tag")
    ONLINE_POST = "online_post", _("Online post")


class Placement(models.Model):
    """Where a brand shows a QR code: it encodes /q/<token>/, which records the scan and
    redirects to the target (marketing.targets), optionally claiming a voucher."""

    brand_lookup = "brand"

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="placements")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=PlacementKind.choices)
    target_kind = models.CharField(max_length=20, default="brand")
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    voucher = models.ForeignKey(
        Voucher,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="placements",
        help_text=_("Scanning claims it: bound to the fan's account at sign-in or sign-up."),
    )
    token = models.CharField(max_length=24, unique=True, default=token_generate, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def get_short_url(self) -> str:
        return reverse("marketing:scan", kwargs={"token": self.token})


class Scan(models.Model):
    """A counted scan: once per visitor (their browser, or their account) per placement per
    day; bots and link previews are never written."""

    brand_lookup = "placement__brand"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="scans")
    visitor_key = models.CharField(max_length=64)
    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    signed_in = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["placement", "visitor_key", "day"], name="marketing_scan_once_a_day"
            )
        ]
        indexes = [models.Index(fields=["placement", "created_at"], name="marketing_scan_time")]

    def __str__(self) -> str:
        return f"{self.placement_id} {self.created_at:%Y-%m-%d %H:%M}"


class PlacementFan(models.Model):
    """A fan the placement brought: the account behind a scan (signed in at the scan, or
    signing in or up after it in the same browser). What they did after `first_scan_at`
    is the placement's funnel (marketing.selectors.placement_funnel)."""

    brand_lookup = "placement__brand"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="fans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="placement_visits"
    )
    first_scan_at = models.DateTimeField()
    signed_up = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["placement", "user"], name="marketing_fan_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} via {self.placement_id}"


class VoucherClaim(models.Model):
    """A voucher claimed by scanning a placement, bound to the fan's account, with their
    personal code (one claim per voucher and fan)."""

    brand_lookup = "voucher__brand"

    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="claims")
    placement = models.ForeignKey(
        Placement, on_delete=models.SET_NULL, null=True, blank=True, related_name="claims"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voucher_claims"
    )
    code = models.OneToOneField(VoucherCode, on_delete=models.CASCADE, related_name="claim")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["voucher", "user"], name="marketing_claim_once")
        ]

    def __str__(self) -> str:
        return f"{self.voucher} for {self.user_id}"
