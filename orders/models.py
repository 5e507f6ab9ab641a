from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from catalog.models import Brand, Variant


class Cart(models.Model):
    """A visitor's cart: by session until they sign in, then theirs (merged at sign-in)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="cart",
    )
    # Bumped by every change of the lines: one order per revision, however many checkouts of
    # it are submitted at once (orders.services.order_place).
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Cart {self.pk} of {self.user or 'a visitor'}"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "variant"], name="orders_cart_line_once"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orders_cart_qty_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id}"


class Address(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="addresses"
    )
    full_name = models.CharField(max_length=120)
    line1 = models.CharField("address", max_length=200)
    line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20)
    country = models.CharField(max_length=2, help_text="Two-letter country code, e.g. US, DE.")
    phone = models.CharField(max_length=30, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "addresses"

    def __str__(self) -> str:
        return f"{self.full_name}, {self.line1}, {self.postal_code} {self.city}, {self.country}"


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Awaiting payment"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


# The order state machine: every change goes through orders.services.order_transition.
ORDER_TRANSITIONS: dict[str, set[str]] = {
    OrderStatus.PENDING_PAYMENT: {OrderStatus.PAID, OrderStatus.CANCELLED},
    OrderStatus.PAID: {OrderStatus.SHIPPED, OrderStatus.CANCELLED, OrderStatus.REFUNDED},
    OrderStatus.SHIPPED: {OrderStatus.DELIVERED, OrderStatus.REFUNDED},
    OrderStatus.DELIVERED: {OrderStatus.REFUNDED},
    OrderStatus.CANCELLED: set(),
    OrderStatus.REFUNDED: set(),
}


class Order(models.Model):
    # Operators see the orders that contain their brands' products (catalog.admin_scoping).
    brand_lookup = "lines__brand"

    number = models.CharField(max_length=12, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    email = models.EmailField()
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    shipping_method = models.CharField(max_length=30)
    shipping_cost = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    # The address as it was at checkout (a saved address may change later).
    ship_name = models.CharField(max_length=120)
    ship_line1 = models.CharField(max_length=200)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100)
    ship_postal_code = models.CharField(max_length=20)
    ship_country = models.CharField(max_length=2)
    ship_phone = models.CharField(max_length=30, blank=True)
    tracking_number = models.CharField(max_length=60, blank=True)
    # The payment that paid the order when it was not paid at checkout, e.g.
    # "preorder-res:42" for a pre-order charged when its batch was confirmed.
    paid_through = models.CharField(max_length=100, blank=True, editable=False)
    # "<cart id>:<revision>" of the cart it was placed from: a second submit of the same cart
    # finds this order instead of making another.
    checkout_key = models.CharField(
        max_length=40, null=True, blank=True, unique=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total=F("subtotal") + F("shipping_cost")), name="orders_total_adds_up"
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("total")),
                name="orders_refund_within_total",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="orders_user_recent")]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", kwargs={"number": self.number})

    @property
    def payment_reference(self) -> str:
        return self.paid_through or f"order:{self.number}"

    @property
    def can_pay(self) -> bool:
        return self.status == OrderStatus.PENDING_PAYMENT


class OrderLine(models.Model):
    brand_lookup = "brand"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        Variant, on_delete=models.SET_NULL, null=True, related_name="order_lines"
    )
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="order_lines")
    product_name = models.CharField(max_length=200)
    variant_label = models.CharField(max_length=200, blank=True)
    sku = models.CharField(max_length=64)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orders_line_qty_positive"),
            models.CheckConstraint(
                condition=Q(line_total=F("unit_price") * F("quantity")),
                name="orders_line_total_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_name} ({self.sku})"


class OrderEvent(models.Model):
    """Who changed an order, when, from which state to which: shown in the admin and to the
    shopper."""

    brand_lookup = "order__lines__brand"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order.number}: {self.from_status or '-'} -> {self.to_status}"


class StockHold(models.Model):
    """Units taken from a variant's stock while the order is being paid: committed when the
    payment succeeds, given back when it fails or the hold expires."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="stock_holds")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="stock_holds")
    quantity = models.PositiveIntegerField()
    expires_at = models.DateTimeField()
    committed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["expires_at"],
                name="orders_hold_active",
                condition=Q(committed_at__isnull=True, released_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of {self.variant_id} for {self.order_id}"
