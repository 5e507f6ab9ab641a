"""What every commitment (a reservation, a pledge, a group-buy seat) has in common: its
states and their table, and the columns the engine reads and writes (the saved card it is
charged with at the close, the request key that makes a double submit find the first
one, the deposit totals, what was charged, the fix-payment window). A feature's model
inherits `CommitmentFields` and adds its own (what was chosen, where to ship); its event
log inherits `StateEvent`.

Abstract: no table here. The feature's migrations own its table and constraints
(`commitment_constraints` gives the ones every commitment needs, named per table)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from payments.models import SavedCard


class CommitmentStatus(models.TextChoices):
    HELD = "held", "Held"
    CHARGING = "charging", "Being charged"
    CHARGED = "charged", "Paid"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    RELEASED = "released", "Released"
    CANCELLED = "cancelled", "Cancelled"


# The commitment's state machine (payments.commitments.machine reads it). `charging` is the
# settlement's own step between held and its outcome (or back to held after a provider error).
COMMITMENT_TRANSITIONS: dict[str, set[str]] = {
    CommitmentStatus.HELD: {
        CommitmentStatus.CHARGING,
        CommitmentStatus.RELEASED,
        CommitmentStatus.CANCELLED,
    },
    CommitmentStatus.CHARGING: {
        CommitmentStatus.CHARGED,
        CommitmentStatus.PAYMENT_FAILED,
        CommitmentStatus.HELD,
    },
    CommitmentStatus.PAYMENT_FAILED: {CommitmentStatus.CHARGED, CommitmentStatus.RELEASED},
    CommitmentStatus.CHARGED: set(),
    CommitmentStatus.RELEASED: set(),
    CommitmentStatus.CANCELLED: set(),
}

# Commitments in these states count toward the threshold (and against caps).
COUNTED_STATUSES = (
    CommitmentStatus.HELD,
    CommitmentStatus.CHARGING,
    CommitmentStatus.CHARGED,
    CommitmentStatus.PAYMENT_FAILED,
)
# Left to the settlement: held ones to charge, charging ones a dead worker left.
OPEN_STATUSES = (CommitmentStatus.HELD.value, CommitmentStatus.CHARGING.value)


class ParentStatus(models.TextChoices):
    """The states of what commitments are made to (a batch, a campaign)."""

    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    OPEN = "open", "Open"
    SETTLING = "settling", "Settling"
    CANCELLING = "cancelling", "Cancelling"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"
    FULFILLED = "fulfilled", "Fulfilled"


PARENT_TRANSITIONS: dict[str, set[str]] = {
    ParentStatus.DRAFT: {ParentStatus.SCHEDULED, ParentStatus.OPEN, ParentStatus.CANCELLED},
    ParentStatus.SCHEDULED: {ParentStatus.OPEN, ParentStatus.DRAFT, ParentStatus.CANCELLED},
    ParentStatus.OPEN: {ParentStatus.SETTLING, ParentStatus.CANCELLING},
    ParentStatus.SETTLING: {ParentStatus.CONFIRMED},
    ParentStatus.CANCELLING: {ParentStatus.CANCELLED},
    ParentStatus.CONFIRMED: {ParentStatus.FULFILLED},
    ParentStatus.CANCELLED: set(),
    ParentStatus.FULFILLED: set(),
}


class CommitmentFields(models.Model):
    """The columns the engine owns on a commitment. The feature adds its foreign key to the
    parent (named by its book's `parent_field`) and what the shopper chose."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="%(class)ss"
    )
    status = models.CharField(
        max_length=20, choices=CommitmentStatus.choices, default=CommitmentStatus.HELD
    )
    saved_card = models.ForeignKey(SavedCard, on_delete=models.PROTECT, related_name="%(class)ss")
    # The form's one-time key: a double submit finds the first commitment, never a second.
    request_key = models.CharField(max_length=64)
    deposit_paid = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    deposit_refunded = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    # What the settlement charged (or asks for in the fix-payment window).
    amount_charged = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, editable=False
    )
    failure_message = models.CharField(max_length=300, blank=True, editable=False)
    # The fix-payment window after a failed charge, and the last reminder sent in it.
    grace_until = models.DateTimeField(null=True, blank=True, editable=False)
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    charging_at = models.DateTimeField(null=True, blank=True, editable=False)
    # While the deposit for some of it is not paid (a card waiting for 3-D Secure): past
    # this time, what it does not cover is given back.
    deposit_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def commitment_constraints(prefix: str) -> list[models.BaseConstraint]:
    """The constraints every commitment table carries, named `<prefix>_...`."""
    return [
        models.UniqueConstraint(fields=["user", "request_key"], name=f"{prefix}_submitted_once"),
        models.CheckConstraint(
            condition=Q(deposit_refunded__lte=F("deposit_paid")),
            name=f"{prefix}_deposit_refund_within_paid",
        ),
    ]


class StateEvent(models.Model):
    """One row of an event log: who moved what, when, from which state to which (from =
    to for a note without a move). The feature adds the foreign keys to what moved."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]
