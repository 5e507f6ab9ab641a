"""Deposits of commitments: charged on-session when committing (or when a change adds to
what is committed), refunded when the commitment is cancelled or released, and when the
parent fails. For every book: its `deposit_required(commitment)` says how much is needed.

Exactly once: a deposit payment's idempotency key names the running deposit total it brings
the commitment from and to, so racing requests that see the same state ask for the same
payment and are charged once. Decided under the commitment's row lock; the provider is
called after it (never under a row lock)."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from payments.commitments.models import CommitmentStatus
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.services import PaymentError, payment_charge, payment_refresh, refund_create

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepositCover:
    """A commitment's deposit payments summed: `held` is paid and not being refunded,
    `pending` is asked for and not answered yet (3-D Secure, a call in flight), `charged`
    is every deposit ever taken or being taken (the running total the keys are named by)."""

    held: Decimal
    pending: Decimal
    charged: Decimal

    def units(self, per_unit: Decimal, *, with_pending: bool) -> int:
        if per_unit <= 0:
            return 0
        return int((self.held + (self.pending if with_pending else 0)) // per_unit)


@dataclass(frozen=True)
class DepositRefund:
    """What a deposit refund did: `refunded` the provider confirmed; `pending` it refused or
    could not be reached for (kept visible and retried by payments' sweep)."""

    refunded: Decimal = Decimal("0.00")
    pending: Decimal = Decimal("0.00")
    failure_message: str = ""

    @property
    def note(self) -> str:
        parts = []
        if self.refunded > 0:
            parts.append(f"deposit of {self.refunded} refunded")
        if self.pending > 0:
            parts.append(
                f"deposit refund of {self.pending} pending"
                + (f" ({self.failure_message})" if self.failure_message else "")
            )
        return "; ".join(parts)


def deposit_window() -> timedelta:
    """How long a commitment may hold what its unpaid deposit is for (3-D Secure)."""
    return timedelta(minutes=getattr(settings, "PREORDER_DEPOSIT_MINUTES", 10))


def deposit_payments(*, book, commitment):
    return Payment.objects.filter(
        reference=book.deposit_reference(commitment.pk),
        status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED],
    ).order_by("pk")


def deposit_cover(*, book, commitment) -> DepositCover:
    held = pending = charged = Decimal("0.00")
    for payment in Payment.objects.filter(reference=book.deposit_reference(commitment.pk)):
        if payment.status in (
            PaymentStatus.SUCCEEDED,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        ):
            held += payment.refundable
            charged += payment.amount
        elif payment.status == PaymentStatus.REQUIRES_ACTION or (
            payment.status == PaymentStatus.PENDING and not payment.failure_code
        ):
            pending += payment.amount
            charged += payment.amount
    return DepositCover(held=held, pending=pending, charged=charged)


def deposit_refused(payment: Payment | None) -> bool:
    """Declined, or an error to retry later. A payment still in flight (a racing twin asked
    for the same deposit and is waiting for the provider) is not refused."""
    if payment is None:
        return False
    return payment.status == PaymentStatus.FAILED or (
        payment.status == PaymentStatus.PENDING and bool(payment.failure_code)
    )


def commitment_deposit_pay(*, book, commitment) -> Payment | None:
    """Charge, on-session, what the deposit still lacks for the commitment as it is now.
    None: nothing to pay."""
    with transaction.atomic():
        commitment = (
            book.model.objects.select_for_update()
            .select_related(*book.related_for_pay)
            .get(pk=commitment.pk)
        )
        if commitment.status != CommitmentStatus.HELD:
            return None
        required = book.deposit_required(commitment)
        if required <= 0:
            return None
        cover = deposit_cover(book=book, commitment=commitment)
        amount = required - cover.held - cover.pending
        if amount <= 0:
            return None
        if commitment.deposit_due_at is None:
            commitment.deposit_due_at = timezone.now() + deposit_window()
            commitment.save(update_fields=["deposit_due_at", "updated_at"])
        key = f"{book.deposit_key(commitment.pk)}-{cover.charged}-{cover.charged + amount}"
        parent = book.parent_of(commitment)
    return payment_charge(
        user=commitment.user,
        reference=book.deposit_reference(commitment.pk),
        amount=amount,
        currency=book.currency_of(parent),
        saved_card=commitment.saved_card,
        idempotency_key=key,
        off_session=False,
        metadata={book.metadata_name: str(commitment.pk), "purpose": "deposit"},
    )


def deposit_refund(*, book, commitment, amount: Decimal, reason: str) -> DepositRefund:
    """Refund up to `amount` of the commitment's deposit payments. Only what the provider
    confirmed counts as refunded; a failed refund stays pending (payments retries it)."""
    refunded = pending = Decimal("0.00")
    message = ""
    for payment in deposit_payments(book=book, commitment=commitment):
        part = min(payment.refundable, amount - refunded - pending)
        if part <= 0:
            continue
        number = payment.refunds.count() + 1
        refund = refund_create(
            payment=payment,
            amount=part,
            idempotency_key=f"{payment.idempotency_key}-refund-{number}",
            reason=reason,
        )
        if refund.status == RefundStatus.SUCCEEDED:
            refunded += part
        else:
            pending += part
            message = refund.failure_message or message
    book.deposit_refunded_receipt(commitment, refunded=refunded, pending=pending, reason=reason)
    return DepositRefund(refunded=refunded, pending=pending, failure_message=message)


def deposit_refund_all(*, book, commitment, reason: str) -> DepositRefund:
    """Every deposit of the commitment back (its parent failed or was cancelled). `pending`
    includes refunds that failed before and are still being retried."""
    owed = commitment.deposit_paid - commitment.deposit_refunded
    done = DepositRefund()
    if owed > 0:
        with suppress(PaymentError):  # nothing left to refund on the payments
            done = deposit_refund(book=book, commitment=commitment, amount=owed, reason=reason)
    waiting = list(
        Refund.objects.filter(
            payment__reference=book.deposit_reference(commitment.pk),
            status__in=[RefundStatus.PENDING, RefundStatus.FAILED],
        ).order_by("-pk")
    )
    if not waiting:
        return done
    return DepositRefund(
        refunded=done.refunded,
        pending=sum((refund.amount for refund in waiting), Decimal("0.00")),
        failure_message=done.failure_message or waiting[0].failure_message,
    )


def commitment_deposit_changed(*, book, payment: Payment) -> None:
    """payments' listener for the book's deposit references (a charge, 3-D Secure, a
    refund), inside the payment's transaction: keep the totals; stop the deposit clock once
    the commitment is covered; and give back deposit money that arrived when what it was
    for was no longer held (3-D Secure completed after a release, or after the close)."""
    commitment = (
        book.model.objects.select_for_update()
        .select_related(book.parent_field.removesuffix("_id"))
        .get(pk=int(payment.reference.split(":", 1)[1]))
    )
    paid_before = commitment.deposit_paid
    totals = Payment.objects.filter(
        reference=book.deposit_reference(commitment.pk),
        status__in=[
            PaymentStatus.SUCCEEDED,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        ],
    ).aggregate(paid=Sum("amount"), refunded=Sum("amount_refunded"))
    commitment.deposit_paid = totals["paid"] or Decimal("0.00")
    commitment.deposit_refunded = totals["refunded"] or Decimal("0.00")
    cover = deposit_cover(book=book, commitment=commitment)
    held = commitment.status == CommitmentStatus.HELD
    needed = book.deposit_required(commitment) if held else Decimal("0.00")
    if commitment.deposit_due_at is not None and cover.held >= needed:
        commitment.deposit_due_at = None
    commitment.save(
        update_fields=["deposit_paid", "deposit_refunded", "deposit_due_at", "updated_at"]
    )
    if payment.status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED):
        book.on_refund(commitment, payment)  # e.g. a refund of the order reached the deposit
    fresh = commitment.deposit_paid - paid_before  # 0 for a replayed event
    if fresh <= 0:
        return
    book.deposit_paid_receipt(commitment, payment, first=paid_before <= 0 and held)
    if commitment.status in (
        CommitmentStatus.HELD,
        CommitmentStatus.RELEASED,
        CommitmentStatus.CANCELLED,
    ):
        excess = min(fresh, cover.held - needed, payment.refundable)
    else:  # closed already: what it owes was reckoned without this deposit, so it goes back
        excess = min(fresh, payment.refundable)
    if excess <= 0:
        return
    reason = book.text("deposit_excess_reason", commitment)
    refund = refund_create(
        payment=payment,
        amount=excess,
        idempotency_key=f"{payment.idempotency_key}-excess",
        reason=reason,
    )
    done = DepositRefund(
        refunded=excess if refund.status == RefundStatus.SUCCEEDED else Decimal("0.00"),
        pending=Decimal("0.00") if refund.status == RefundStatus.SUCCEEDED else excess,
        failure_message=refund.failure_message,
    )
    book.deposit_refunded_receipt(
        commitment, refunded=done.refunded, pending=done.pending, reason=reason
    )
    book.machine.note(
        commitment,
        note=book.text("deposit_excess_note", commitment, excess=excess, done=done.note),
    )


# --- the deposit clock: what an unpaid deposit was for is given back ---------------------------


def _locked_pair(book, pk: int, user=None):
    commitment = (
        book.model.objects.select_for_update().select_related(*book.related_for_lock).get(pk=pk)
    )
    if user is not None and commitment.user_id != user.pk:
        raise PermissionError("Not yours")
    parent = (
        book.parent_model.objects.select_for_update()
        .select_related(*book.parent_related)
        .get(pk=getattr(commitment, book.parent_field))
    )
    return commitment, parent


def commitment_deposit_refused(*, book, commitment, user):
    """The shopper's bank refused a deposit (3-D Secure): what no deposit covers (paid, or
    still waiting for the bank) is given back (the book's `deposit_short`)."""
    with transaction.atomic():
        commitment, parent = _locked_pair(book, commitment.pk, user)
        if commitment.status != CommitmentStatus.HELD or parent.status != book.statuses["open"]:
            return commitment  # the close charges it in full
        cover = deposit_cover(book=book, commitment=commitment)
        book.deposit_short(commitment, parent=parent, cover=cover, actor=user, expired=False)
    return commitment


def commitments_deposit_expire(*, book, limit: int = 200) -> int:
    """Beat, every minute: a commitment whose deposit was not paid in time (a card left at
    3-D Secure) gives back what no paid deposit covers, so nobody holds a parent's stock for
    free. Asks the provider first about payments still waiting for the bank (no lock held).
    Returns what was given back (the book's count: units)."""
    now = timezone.now()
    due = list(
        book.model.objects.filter(
            status=CommitmentStatus.HELD, deposit_due_at__lte=now
        ).values_list("pk", flat=True)[:limit]
    )
    given = 0
    for pk in due:
        try:
            for payment in Payment.objects.filter(
                reference=book.deposit_reference(pk), status=PaymentStatus.REQUIRES_ACTION
            ):
                payment_refresh(payment=payment)  # 3-D Secure completed but not heard of yet
        except Exception:  # the provider is unreachable: ask again next minute
            logger.exception("refreshing the deposit of %s %s failed", book.kind, pk)
            continue
        with transaction.atomic():
            commitment, parent = _locked_pair(book, pk)
            if (
                commitment.status != CommitmentStatus.HELD
                or commitment.deposit_due_at is None
                or commitment.deposit_due_at > now
            ):
                continue
            if parent.status == book.statuses["open"]:
                cover = deposit_cover(book=book, commitment=commitment)
                given += book.deposit_short(
                    commitment, parent=parent, cover=cover, actor=None, expired=True
                )
            # Covered now, or closed (the close charges what the deposit lacks), or given back.
            commitment.deposit_due_at = None
            commitment.save(update_fields=["deposit_due_at", "updated_at"])
    return given
