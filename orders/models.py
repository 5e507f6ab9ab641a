from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from catalog.models import Brand, Variant
from orders.page_versions import orders_changed
from payments.commitments.machine import Action, StateMachine


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
    # The discount code the shopper entered (one per order; which app it belongs to is for
    # the price adjusters of orders.adjusters to say). Changing it bumps the revision.
    discount_code = models.CharField(max_length=40, blank=True, default="")
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
    """An order's status follows from its parts' (orders.fulfilment.order_status_derive);
    a part's status is one of these too, except "partially shipped"."""

    PENDING_PAYMENT = "pending_payment", "Awaiting payment"
    PAID = "paid", "Paid"
    PARTIALLY_SHIPPED = "partially_shipped", "Partially shipped"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


# A part's state machine: every change goes through orders.fulfilment (part_transition).
PART_TRANSITIONS: dict[str, set[str]] = {
    OrderStatus.PENDING_PAYMENT: {OrderStatus.PAID, OrderStatus.CANCELLED},
    OrderStatus.PAID: {OrderStatus.SHIPPED, OrderStatus.CANCELLED, OrderStatus.REFUNDED},
    OrderStatus.SHIPPED: {OrderStatus.DELIVERED, OrderStatus.REFUNDED},
    OrderStatus.DELIVERED: {OrderStatus.REFUNDED},
    OrderStatus.CANCELLED: set(),
    OrderStatus.REFUNDED: set(),
}

# What orders.fulfilment.order_transition accepts for a whole order (it moves every part
# that can move); the order's own status is then derived from its parts.
ORDER_TRANSITIONS: dict[str, set[str]] = {
    **PART_TRANSITIONS,
    OrderStatus.PAID: {
        OrderStatus.PARTIALLY_SHIPPED,
        OrderStatus.SHIPPED,
        OrderStatus.CANCELLED,
        OrderStatus.REFUNDED,
    },
    OrderStatus.PARTIALLY_SHIPPED: {
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.REFUNDED,
    },
}


class Order(models.Model):
    # Operators see the orders that hold a part of their brands (catalog.admin_scoping);
    # inside, only their parts (orders.admin).
    brand_lookup = "parts__brand"

    number = models.CharField(max_length=12, unique=True)
    # No index of its own: orders_user_recent (user, -created_at) starts with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    email = models.EmailField()
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    shipping_method = models.CharField(max_length=30)
    shipping_cost = models.DecimalField(max_digits=12, decimal_places=2)
    # Discounts of the price adjusters (orders.adjusters): the lines' and the shipping's, as
    # recorded on the lines and parts. total = subtotal + shipping_cost - discount.
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    discount_code = models.CharField(max_length=40, blank=True, default="")
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
    # The parts' tracking numbers, for readers of the whole order; each part has its own.
    tracking_number = models.CharField(max_length=60, blank=True)
    # The payment that paid the order when it was not paid at checkout, e.g.
    # "preorder-res:42" for a pre-order charged when its batch was confirmed. Every payment
    # behind the order (deposits too) is an OrderPayment row.
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
                condition=Q(total=F("subtotal") + F("shipping_cost") - F("discount")),
                name="orders_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(discount__gte=0) & Q(total__gte=0), name="orders_discount_in_bounds"
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("total")),
                name="orders_refund_within_total",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="orders_user_recent")]

    def __str__(self) -> str:
        return self.number

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        orders_changed(user_ids=[self.user_id])  # their orders page (orders.page_versions)

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", kwargs={"number": self.number})

    def delete(self, *args, **kwargs):
        orders_changed(user_ids=[self.user_id])
        return super().delete(*args, **kwargs)

    @property
    def payment_reference(self) -> str:
        return self.paid_through or f"order:{self.number}"

    @property
    def can_pay(self) -> bool:
        return self.status == OrderStatus.PENDING_PAYMENT


class OrderPart(models.Model):
    """One brand's part of an order: its lines, its share of the totals, its own fulfilment
    (tracking number, shipped, delivered), refunds and cancel. The order's status follows
    from its parts' (orders.fulfilment.order_status_refresh).

    Split rule for shipping and any other order-level amount (orders.fulfilment.amount_split):
    each part gets the amount times its subtotal over the order's subtotal, rounded down to
    the cent; the cents left over go to the part with the largest subtotal (on a tie, the
    first brand by id). With a zero subtotal everything goes to that part. So the parts'
    subtotals, shipping shares and totals always add up to the order's exactly: a part's
    total adds up by a CheckConstraint, the sum over parts is checked by
    orders.fulfilment.order_parts_create (and tests/test_order_parts.py).
    """

    brand_lookup = "brand"

    # Looked up by order through orders_part_once_per_brand (order, brand): no index of its own.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="parts", db_index=False)
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="order_parts")
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    shipping_share = models.DecimalField(max_digits=12, decimal_places=2)
    # The part's discounts: its lines' discounts plus `shipping_discount` (of its share).
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    shipping_discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # Refunds of this part that the provider has made (pending ones are OrderRefund rows).
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    shipping_refunded = models.BooleanField(default=False)
    tracking_number = models.CharField(max_length=60, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "brand"], name="orders_part_once_per_brand"),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") + F("shipping_share") - F("discount")),
                name="orders_part_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(shipping_discount__gte=0)
                & Q(shipping_discount__lte=F("shipping_share"))
                & Q(discount__gte=F("shipping_discount"))
                & Q(total__gte=0),
                name="orders_part_discount_in_bounds",
            ),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(shipping_share__gte=0),
                name="orders_part_amounts_positive",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("total")),
                name="orders_part_refund_within_total",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["shipped", "delivered"]) | ~Q(tracking_number=""),
                name="orders_part_shipped_has_tracking",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order.number} / {self.brand}"

    @property
    def is_operable(self) -> bool:
        return self.status in (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)


class OrderPayment(models.Model):
    """A payment reference behind the order: "order:<number>" for checkout, and for a
    pre-order its balance "preorder-res:<id>" and deposits "preorder-deposit:<id>".
    Refunds take from them by `position` (the balance first, then deposits)."""

    brand_lookup = "order__parts__brand"

    # Looked up by order through orders_payment_once (order, reference): no index of its own.
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="payment_links", db_index=False
    )
    reference = models.CharField(max_length=100, db_index=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "reference"], name="orders_payment_once")
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.reference}"


class RefundState(models.TextChoices):
    PENDING = "pending", "Pending at the provider"
    SUCCEEDED = "succeeded", "Refunded"
    ABANDONED = "abandoned", "Abandoned"


class OrderRefund(models.Model):
    """One refund of a part, by lines and quantities (and the shipping share) or by amount,
    taken from the order's payments in their order. Its provider refunds are payments'
    Refund rows keyed "order-refund-<id>-<payment id>". Pending until they have all
    succeeded (payments retries failed ones)."""

    brand_lookup = "part__brand"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    part = models.ForeignKey(OrderPart, on_delete=models.CASCADE, related_name="refunds")
    # The form's one-time token: a double submit lands on the first refund.
    key = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    lines = models.JSONField(default=dict, blank=True)  # {"<line id>": quantity}
    shipping = models.BooleanField(default=False)
    restock = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=20, choices=RefundState.choices, default=RefundState.PENDING
    )
    # When a process took on asking the provider for it: one process at a time (a second
    # submit of the form, or the resume sweep while the first is still at it, leaves it).
    collecting_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="orders_refund_positive")
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} of {self.part}"


class OrderLine(models.Model):
    brand_lookup = "brand"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # Set by orders.fulfilment.order_parts_create right after the lines are written.
    part = models.ForeignKey(
        OrderPart, on_delete=models.CASCADE, null=True, blank=True, related_name="lines"
    )
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
    # What the price adjusters took off this line (a voucher); paid = line_total - discount.
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    quantity_refunded = models.PositiveIntegerField(default=0)
    quantity_restocked = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orders_line_qty_positive"),
            models.CheckConstraint(
                condition=Q(quantity_refunded__lte=F("quantity"))
                & Q(quantity_restocked__lte=F("quantity")),
                name="orders_line_refund_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(line_total=F("unit_price") * F("quantity")),
                name="orders_line_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(discount__gte=0) & Q(discount__lte=F("line_total")),
                name="orders_line_discount_in_bounds",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_name} ({self.sku})"

    @property
    def paid(self) -> Decimal:
        return self.line_total - self.discount

    def paid_for(self, count: int) -> Decimal:
        """What the first `count` units of the line were paid: the discount spread over the
        units rounded down to the cent, the last unit taking the rest, so refunding the
        units one by one adds up to exactly what was paid."""
        if count >= self.quantity:
            return self.paid
        return (self.paid * count / self.quantity).quantize(Decimal("0.01"), rounding="ROUND_DOWN")

    def refund_amount(self, quantity: int) -> Decimal:
        """What refunding `quantity` more units gives back: what they were paid."""
        done = self.quantity_refunded
        return self.paid_for(done + quantity) - self.paid_for(done)


class OrderEvent(models.Model):
    """Who changed an order or one of its parts (`part` set), when, from which state to
    which: shown in the admin (an operator sees their parts' events and the order's own) and
    to the shopper."""

    brand_lookup = "order__parts__brand"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    # Both mostly empty (an order's own event, a change nobody made: every settled order's
    # first): indexed where set only, which is all a lookup by part or actor reads.
    part = models.ForeignKey(
        OrderPart,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["part"], name="orders_event_part", condition=Q(part__isnull=False)
            ),
            models.Index(
                fields=["actor"], name="orders_event_actor", condition=Q(actor__isnull=False)
            ),
        ]

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


def _part_refusal(machine, part, to: str) -> str:
    return (
        f"{part.brand.name}'s part is {machine.label(part.status).lower()} and cannot "
        f"become {machine.label(to).lower()}."
    )


# The state machines (payments.commitments.machine): a part's moves are checked against
# PART_TRANSITIONS and logged as OrderEvent rows; the whole order's against ORDER_TRANSITIONS.
PART_MACHINE = StateMachine(
    model=OrderPart,
    transitions=PART_TRANSITIONS,
    event_model=OrderEvent,
    event_for=lambda part: {"order_id": part.order_id, "part": part},
    noun="part",
    refusal=_part_refusal,
    # The operators' buttons on a part (orders.admin shows those allowed from its state).
    actions=(
        Action("ship", "Mark shipped", to=OrderStatus.SHIPPED),
        Action("deliver", "Mark delivered", to=OrderStatus.DELIVERED),
        Action("refund", "Refund", to=OrderStatus.REFUNDED),  # by line: some or all of it
        # Unpaid parts are cancelled by their checkout's expiry, not by an operator.
        Action("cancel", "Cancel", to=OrderStatus.CANCELLED, sources=frozenset({"paid"})),
    ),
)
ORDER_MACHINE = StateMachine(
    model=Order,
    transitions=ORDER_TRANSITIONS,
    event_model=OrderEvent,
    event_for=lambda order: {"order": order},
    noun="order",
)
