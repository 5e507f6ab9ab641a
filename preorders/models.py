"""C2B pre-order batches: a window in which fans reserve units of a product, a volume price
ladder, and reservations that are charged at the close only if enough were reserved."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from catalog.models import Product, Variant
from payments.commitments.machine import Action, StateMachine
from payments.commitments.models import (
    COMMITMENT_TRANSITIONS,
    PARENT_TRANSITIONS,
    CommitmentFields,
    StateEvent,
)
from payments.commitments.models import (  # units of these count against the cap
    COUNTED_STATUSES as COUNTED_STATUSES,
)
from preorders.batch_version import (
    LIVE_COUNTERS,
    batch_changed,
    batch_row_written,
    batch_static_changed,
)


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    OPEN = "open", "Open"
    SETTLING = "settling", "Settling"
    CANCELLING = "cancelling", "Cancelling"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"
    FULFILLED = "fulfilled", "Fulfilled"


# The batch state machine (the engine's parent table): every change goes through
# BATCH_MACHINE.transition (below), the admin's buttons read its allowed_actions.
BATCH_TRANSITIONS: dict[str, set[str]] = PARENT_TRANSITIONS


class PreorderBatchQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        """A bulk write of anything but the live counters retires the batches' tokens
        (preorders.batch_version), as a save() does; a counters' UPDATE (the intake, the
        services) calls `batch_changed` itself, so it costs no query more here."""
        if kwargs.keys() - LIVE_COUNTERS:
            batch_changed(*self.values_list("pk", flat=True))
            batch_static_changed()
        return super().update(**kwargs)


class PreorderBatch(models.Model):
    brand_lookup = "product__brand"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="preorder_batches")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True, help_text="Shown on the batch page (plain text).")
    status = models.CharField(
        max_length=20, choices=BatchStatus.choices, default=BatchStatus.DRAFT, db_index=True
    )
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    min_quantity = models.PositiveIntegerField(
        "minimum to confirm",
        validators=[MinValueValidator(1)],
        help_text="Units that must be reserved for production to go ahead.",
    )
    cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The most units this batch will make (empty: no limit).",
    )
    per_customer_limit = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1)], help_text="Units one customer may reserve."
    )
    close_when_full = models.BooleanField("close as soon as the cap is reached", default=False)
    estimated_ship_date = models.DateField()
    deposit_per_unit = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Charged at once when reserving (0: no deposit).",
    )
    deposit_refundable = models.BooleanField(
        "refund the deposit when a customer cancels",
        default=True,
        help_text="Deposits are always refunded when the batch itself is cancelled.",
    )
    currency = models.CharField(max_length=3, default=settings.STORE_CURRENCY, editable=False)

    # Counters kept by preorders.services under the batch row lock; the constraint below
    # makes it impossible to hold more than the cap even through a bug.
    reserved_units = models.PositiveIntegerField(default=0, editable=False)
    offered_units = models.PositiveIntegerField(
        default=0, editable=False, help_text="Units offered to the waitlist, not yet claimed."
    )
    # Set at the close.
    final_unit_price = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, editable=False
    )
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    settled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PreorderBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-opens_at", "-id"]
        verbose_name = "pre-order batch"
        verbose_name_plural = "pre-order batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=F("opens_at")), name="preorders_window_ordered"
            ),
            models.CheckConstraint(
                condition=Q(cap__isnull=True)
                | Q(reserved_units__lte=F("cap") - F("offered_units")),
                name="preorders_reserved_within_cap",
            ),
            models.CheckConstraint(
                condition=Q(deposit_per_unit__gte=0), name="preorders_deposit_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["status", "closes_at"], name="preorders_batch_due")]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        batch_row_written(self.pk, kwargs.get("update_fields"))  # preorders.batch_version

    def get_absolute_url(self) -> str:
        return reverse("preorders:detail", kwargs={"slug": self.slug})

    def delete(self, *args, **kwargs):
        batch_row_written(self.pk)
        return super().delete(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status == BatchStatus.OPEN

    @property
    def available_units(self) -> int | None:
        if self.cap is None:
            return None
        return max(self.cap - self.reserved_units - self.offered_units, 0)


class BatchPartQuerySet(models.QuerySet):
    """Bulk writes to a batch's tiers or caps retire its tokens as their save() does."""

    def update(self, **kwargs) -> int:
        batch_changed(*self.values_list("batch_id", flat=True))
        batch_static_changed()
        return super().update(**kwargs)

    def delete(self):
        batch_changed(*self.values_list("batch_id", flat=True))
        batch_static_changed()
        return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        made = super().bulk_create(objs, *args, **kwargs)
        batch_changed(*(part.batch_id for part in made))
        batch_static_changed()
        return made


class BatchPart(models.Model):
    """A row of a batch's own terms (a tier, a cap): writing it retires the batch's tokens."""

    objects = BatchPartQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        batch_row_written(self.batch_id, None)  # preorders.batch_version

    def delete(self, *args, **kwargs):
        batch_row_written(self.batch_id)
        return super().delete(*args, **kwargs)


class PriceTier(BatchPart):
    """From `min_quantity` units reserved in total, everyone pays `unit_price`."""

    brand_lookup = "batch__product__brand"

    batch = models.ForeignKey(PreorderBatch, on_delete=models.CASCADE, related_name="tiers")
    min_quantity = models.PositiveIntegerField(
        "from total units", validators=[MinValueValidator(1)]
    )
    unit_price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )

    class Meta:
        ordering = ["min_quantity"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "min_quantity"], name="preorders_tier_once_per_quantity"
            ),
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="preorders_tier_price"),
        ]

    def __str__(self) -> str:
        return f"from {self.min_quantity}: {self.unit_price}"


class VariantCap(BatchPart):
    """An optional limit on one variant of the batch's product (e.g. 100 in gold)."""

    brand_lookup = "batch__product__brand"

    batch = models.ForeignKey(PreorderBatch, on_delete=models.CASCADE, related_name="variant_caps")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    cap = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "variant"], name="preorders_variant_cap_once")
        ]

    def __str__(self) -> str:
        return f"{self.variant}: at most {self.cap}"


class ReservationStatus(models.TextChoices):
    HELD = "held", "Reserved"
    CHARGING = "charging", "Being charged"
    CHARGED = "charged", "Paid"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    RELEASED = "released", "Released"
    CANCELLED = "cancelled", "Cancelled"


RESERVATION_TRANSITIONS: dict[str, set[str]] = COMMITMENT_TRANSITIONS


class Reservation(CommitmentFields):
    """A fan's commitment to a batch: the engine's fields (payments.commitments.models) and
    what the fan chose and where to ship."""

    brand_lookup = "batch__product__brand"

    # No index of its own: (batch, status, id) and (batch, user) both start with it.
    batch = models.ForeignKey(
        PreorderBatch, on_delete=models.PROTECT, related_name="reservations", db_index=False
    )
    # The engine's two, named as they were before it: migrations keep their related names.
    # No index on user either: (user, request_key) and (user, -created_at) start with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reservations",
        db_index=False,
    )
    saved_card = models.ForeignKey(
        "payments.SavedCard", on_delete=models.PROTECT, related_name="reservations"
    )
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="reservations")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(
        max_length=20, choices=ReservationStatus.choices, default=ReservationStatus.HELD
    )
    # Set by the settlement: the ladder price reached (amount_charged: what the card was).
    unit_price = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, editable=False
    )
    order = models.OneToOneField(
        "orders.Order",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reservation",
        editable=False,
    )
    # Where to ship, as it was when reserving.
    ship_name = models.CharField(max_length=120)
    ship_line1 = models.CharField(max_length=200)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100)
    ship_postal_code = models.CharField(max_length=20)
    ship_country = models.CharField(max_length=2)
    ship_phone = models.CharField(max_length=30, blank=True)
    # Its "you reserved" receipt is still to be sent (by a worker, after the intake's block
    # committed: preorders.receipts.reservation_receipts_send; swept if the task was lost).
    receipt_due = models.BooleanField(default=False, db_default=False, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="preorders_reservation_qty_positive"
            ),
            models.UniqueConstraint(
                fields=["user", "request_key"], name="preorders_reservation_submitted_once"
            ),
            models.CheckConstraint(
                condition=Q(deposit_refunded__lte=F("deposit_paid")),
                name="preorders_deposit_refund_within_paid",
            ),
        ]
        indexes = [
            models.Index(fields=["batch", "status", "id"], name="preorders_res_batch_status"),
            models.Index(fields=["user", "-created_at"], name="preorders_res_user_recent"),
            # The intake's per-customer sum, for the block's customers in one batch.
            models.Index(fields=["batch", "user"], name="preorders_res_batch_user"),
            models.Index(
                fields=["created_at"],
                name="preorders_res_receipt_due",
                condition=Q(receipt_due=True),
            ),
            models.Index(
                fields=["grace_until"],
                name="preorders_res_in_grace",
                condition=Q(status="payment_failed"),
            ),
            models.Index(
                fields=["deposit_due_at"],
                name="preorders_res_deposit_due",
                condition=Q(status="held", deposit_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation {self.pk}: {self.quantity} x {self.variant_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("preorders:reservation", kwargs={"pk": self.pk})

    @property
    def payment_reference(self) -> str:
        return f"preorder-res:{self.pk}"

    @property
    def payment_key(self) -> str:
        """The idempotency key of the settlement charge: one charge per reservation."""
        return f"preorder-res-{self.pk}"

    @property
    def deposit_reference(self) -> str:
        return f"preorder-deposit:{self.pk}"

    @property
    def deposit_key(self) -> str:
        return f"preorder-deposit-{self.pk}"

    @property
    def is_changeable(self) -> bool:
        return self.status == ReservationStatus.HELD and self.batch.status == BatchStatus.OPEN


class PreorderEvent(StateEvent):
    """Who changed a batch or a reservation, when, from which state to which."""

    brand_lookup = "batch__product__brand"

    batch = models.ForeignKey(PreorderBatch, on_delete=models.CASCADE, related_name="events")
    reservation = models.ForeignKey(
        Reservation, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        subject = f"reservation {self.reservation_id}" if self.reservation_id else "batch"
        return f"{subject}: {self.from_status or '-'} -> {self.to_status}"


BATCH_MACHINE = StateMachine(
    model=PreorderBatch,
    transitions=BATCH_TRANSITIONS,
    event_model=PreorderEvent,
    event_for=lambda batch: {"batch": batch},
    noun="batch",
    # The operators' buttons (preorders.admin shows those the batch's state allows now).
    actions=(
        Action("publish", "Publish", to=BatchStatus.SCHEDULED),  # or open, if started
        Action("close", "Close now", to=(BatchStatus.SETTLING, BatchStatus.CANCELLING)),
        Action("cancel", "Cancel batch", to=(BatchStatus.CANCELLED, BatchStatus.CANCELLING)),
        Action("fulfil", "Mark fulfilled", to=BatchStatus.FULFILLED),
    ),
)
RESERVATION_MACHINE = StateMachine(
    model=Reservation,
    transitions=RESERVATION_TRANSITIONS,
    event_model=PreorderEvent,
    event_for=lambda reservation: {"batch_id": reservation.batch_id, "reservation": reservation},
    noun="reservation",
)


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    OFFERED = "offered", "Offered"
    CLAIMED = "claimed", "Claimed"
    EXPIRED = "expired", "Offer expired"
    LEFT = "left", "Left the waitlist"


class WaitlistEntry(models.Model):
    """A fan who came after the cap was reached: offered freed units in order of arrival."""

    brand_lookup = "batch__product__brand"

    batch = models.ForeignKey(PreorderBatch, on_delete=models.CASCADE, related_name="waitlist")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preorder_waitlist"
    )
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(
        max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "waitlist entries"
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "user"],
                condition=Q(status__in=["waiting", "offered"]),
                name="preorders_waitlist_once",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="preorders_waitlist_qty_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} waits for {self.quantity} ({self.status})"
