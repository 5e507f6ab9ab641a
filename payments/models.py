from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    REQUIRES_ACTION = "requires_action", "Needs authentication"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"


class PaymentCustomer(models.Model):
    """The provider's customer record for a user (Stripe: cus_...), needed to save cards."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_customers"
    )
    provider = models.CharField(max_length=20)
    customer_ref = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "provider"], name="payments_one_customer_per_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.customer_ref}"


class SavedCard(models.Model):
    """A card saved for later (off-session) charges. Never the number: brand, last four,
    expiry and the provider's reference (Stripe pm_..., local token)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_cards"
    )
    provider = models.CharField(max_length=20)
    provider_ref = models.CharField(max_length=100)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"], name="payments_card_ref_unique"
            )
        ]

    def __str__(self) -> str:
        expiry = f"{self.exp_month:02d}/{self.exp_year % 100:02d}"
        return f"{self.brand.title()} •••• {self.last4} ({expiry})"


class Payment(models.Model):
    """One attempt to take money for something (`reference`, e.g. "order:FH-7K3M9Q").
    `idempotency_key` is unique: the same attempt can never become two charges."""

    provider = models.CharField(max_length=20)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payments",
        null=True,
        blank=True,
    )
    reference = models.CharField(max_length=100, db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    saved_card = models.ForeignKey(
        SavedCard, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    provider_ref = models.CharField(max_length=100, blank=True, db_index=True)
    client_secret = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    # Refunds asked for and not yet confirmed by the provider (pending, or failed and to be
    # retried): reserved, so two refunds can never promise more than was paid.
    amount_refund_pending = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0")
    )
    # The key of the provider call in flight: written and committed before the call, so a
    # request that dies after the provider took the money can be replayed with the same key.
    provider_key = models.CharField(max_length=200, blank=True)
    # What else that call sent (off_session, metadata): a replay must send the same.
    provider_request = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                name="payments_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_refund_pending__gte=0)
                & Q(amount_refund_pending__lte=F("amount") - F("amount_refunded")),
                name="payments_pending_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(
                fields=["updated_at"],
                name="payments_in_flight",
                condition=Q(status="pending") & ~Q(provider_key=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} ({self.status})"

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.amount_refunded - self.amount_refund_pending


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Refunded"
    FAILED = "failed", "Failed, will be retried"
    ABANDONED = "abandoned", "Abandoned by an operator"


class Refund(models.Model):
    """A refund asked of the provider. One that fails stays here, visible and retried
    (payments.services.refunds_retry_due) until it succeeds or an operator abandons it."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(
        max_length=20, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    provider_ref = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    reason = models.CharField(max_length=200, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_refund_positive")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="payments_refund_retry_due",
                condition=Q(status="failed"),
            )
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} of {self.payment.reference} ({self.status})"


class WebhookEvent(models.Model):
    """Each provider event id once: inserted in the same transaction as its effect."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="payments_webhook_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


# --- the local provider's own records (development and demo; no network) --------------------


class LocalCard(models.Model):
    token = models.CharField(max_length=40, unique=True)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # What charging this card does, from Stripe's test numbers; never the number itself.
    behaviour = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class LocalCharge(models.Model):
    charge_id = models.CharField(max_length=40, unique=True)
    card = models.ForeignKey(LocalCard, on_delete=models.PROTECT, related_name="charges")
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20)
    idempotency_key = models.CharField(max_length=120, unique=True)
    amount_refunded_minor = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.charge_id} {self.amount_minor} {self.currency} {self.status}"
