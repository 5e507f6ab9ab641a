"""Pre-orders as a book of the commitments engine (payments.commitments): only the batch's
decisions (the ladder price at the close, the minimum, deposits per unit, units back to the
batch and its waitlist, paid orders for charged reservations, points at the finish) and its
words. The lifecycle itself (close, cancel, release, the fix-payment window, pay again,
deposits, finish) is the engine's."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from formatting.formats import money
from notifications.models import NotificationKind
from notifications.services import notification_send
from orders.models import Order
from orders.services import order_refund_recorded
from payments.commitments.book import CommitmentBook
from preorders.batch_version import batch_changed
from preorders.honour import reservation_honour_award
from preorders.models import (
    BATCH_MACHINE,
    RESERVATION_MACHINE,
    BatchStatus,
    PreorderBatch,
    Reservation,
    ReservationStatus,
    WaitlistStatus,
)
from preorders.receipts import (
    charged_receipts,
    deposit_charged_receipt,
    deposit_refunded_receipt,
    reservation_made_receipt,
)

SETTLEMENT_KIND = "preorder"


class PreorderBook(CommitmentBook):
    kind = SETTLEMENT_KIND
    model = Reservation
    parent_model = PreorderBatch
    parent_field = "batch_id"
    commitments_name = "reservations"
    machine = RESERVATION_MACHINE
    parent_machine = BATCH_MACHINE
    charge_prefix = "preorder-res"
    deposit_prefix = "preorder-deposit"
    metadata_name = "reservation"
    email_templates = "preorders/email"
    notification_kind = NotificationKind.PREORDER
    urls = {
        "pay": "preorders:reservation_pay",
        "authenticate": "preorders:reservation_authenticate",
    }
    parent_related = ("product",)
    related_for_lock = ("batch__product", "variant__product")
    related_for_pay = ("batch", "saved_card", "user")
    texts = {
        **CommitmentBook.texts,
        "payment_failed_subject": "Your pre-order of {parent.product.name} needs a payment",
        "reminder_subject": "Reminder: complete your pre-order of {parent.product.name}",
        "released_title": "Your pre-order of {parent.product.name} was released",
        "released_at_cancel_note": "Batch cancelled; nobody is charged",
        "grace_refund_reason": "Reservation released",
        "cannot_cancel": "This reservation can no longer be cancelled.",
        "closed": "This batch is closed: reservations are no longer taken.",
        "no_payment_needed": "This reservation does not need a payment.",
        "window_over": "The time to pay for this reservation has run out.",
        "paid_again_message": "Thank you! Your pre-order of {parent.product.name} is paid; "
        "its order ships with the batch.",
        "deposit_excess_reason": "Deposit paid for units no longer reserved",
        "deposit_excess_note": "Deposit of {excess} paid after its units were given back or "
        "the batch closed; {done}",
    }

    def __init__(self) -> None:
        from preorders.services import ReservationError

        self.error = ReservationError

    # --- decisions

    def is_due(self, parent: PreorderBatch) -> bool:
        full = parent.cap is not None and parent.reserved_units >= parent.cap
        return parent.closes_at <= timezone.now() or (parent.close_when_full and full)

    def due_parents(self):
        open_batches = PreorderBatch.objects.filter(status=BatchStatus.OPEN)
        return open_batches.filter(closes_at__lte=timezone.now()) | open_batches.filter(
            close_when_full=True, cap__isnull=False, reserved_units__gte=F("cap")
        )

    def check_ready(self, parent: PreorderBatch) -> None:
        from preorders.services import batch_check_ready

        batch_check_ready(batch=parent)

    def threshold_met(self, parent: PreorderBatch) -> bool:
        return parent.reserved_units >= parent.min_quantity

    def amount_expression(self, parent: PreorderBatch):
        return F("quantity") * parent.final_unit_price - (F("deposit_paid") - F("deposit_refunded"))

    def deposit_required(self, commitment: Reservation) -> Decimal:
        per_unit = commitment.batch.deposit_per_unit
        return per_unit * commitment.quantity if per_unit > 0 else Decimal("0.00")

    def deposit_short(self, commitment, *, parent, cover, actor, expired: bool) -> int:
        """The units no deposit covers go back to the batch (a refused deposit cancels a
        reservation left with none; an expired one releases it), and the fan is told."""
        from preorders.services import _units_give_back

        keep = cover.units(parent.deposit_per_unit, with_pending=not expired)
        if keep >= commitment.quantity:
            return 0
        if not expired:
            return _units_give_back(
                reservation=commitment,
                batch=parent,
                keep=keep,
                actor=actor,
                to=ReservationStatus.CANCELLED,
                note="Deposit declined",
            )
        minutes = getattr(settings, "PREORDER_DEPOSIT_MINUTES", 10)
        units = _units_give_back(
            reservation=commitment,
            batch=parent,
            keep=keep,
            actor=None,
            note=f"Deposit not paid within {minutes} minutes: "
            + (
                "units released"
                if keep == 0
                else f"{commitment.quantity - keep} added units released"
            ),
        )
        name = parent.product.name
        notification_send(
            recipient_id=commitment.user_id,
            kind=NotificationKind.PREORDER,
            title=(
                f"Your reservation of {name} was released"
                if keep == 0
                else f"Your reservation of {name} is back to {keep} units"
            ),
            body=f"The deposit was not confirmed with your bank within {minutes} minutes,"
            f" so {units} units went back to the batch.",
            url=commitment.get_absolute_url(),
        )
        return units

    def deposit_refundable(self, parent: PreorderBatch) -> bool:
        return parent.deposit_refundable

    def on_close(self, parent: PreorderBatch, *, succeeded: bool) -> str:
        """The ladder price everyone pays is fixed; the waitlist has nothing left to wait for."""
        from preorders.services import ladder_price

        parent.final_unit_price = ladder_price(
            tiers=list(parent.tiers.all()), units=parent.reserved_units
        )
        parent.save(update_fields=["final_unit_price"])
        self.on_cancel(parent)
        return f"{parent.reserved_units} of {parent.min_quantity} units reserved; " + (
            f"confirmed at {money(parent.final_unit_price, parent.currency)} per unit"
            if succeeded
            else "minimum not reached, nobody is charged"
        )

    def on_cancel(self, parent: PreorderBatch) -> None:
        parent.waitlist.filter(status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]).update(
            status=WaitlistStatus.EXPIRED
        )
        batch_changed(parent.pk)  # the UPDATE skips save(): its page token
        PreorderBatch.objects.filter(pk=parent.pk).update(offered_units=0)

    def charged_become(self, parent: PreorderBatch, commitments: list[Reservation]) -> None:
        from preorders.services import reservations_make_orders

        made = reservations_make_orders(
            batch=parent, reservation_ids=[reservation.pk for reservation in commitments]
        )
        for reservation in commitments:  # for the receipt that follows (on_paid_again)
            reservation.order_id = made.get(reservation.pk, reservation.order_id)

    def on_paid_again(self, commitment: Reservation, payment) -> None:
        reservation_honour_award(reservation=commitment)
        charged_receipts(reservations=[commitment], payments={commitment.pk: payment}, again=True)

    def on_release(self, commitment: Reservation, *, counted: bool) -> None:
        """Its units go back to the batch, and to the waitlist while the batch is open."""
        from preorders.services import _waitlist_offer

        if not counted:
            return
        batch = PreorderBatch.objects.select_for_update().get(pk=commitment.batch_id)
        batch_changed(batch.pk)  # the UPDATE skips save(): its page token
        PreorderBatch.objects.filter(pk=batch.pk).update(
            reserved_units=F("reserved_units") - commitment.quantity
        )
        batch.refresh_from_db()
        _waitlist_offer(batch)

    def on_refund(self, commitment: Reservation, payment) -> None:
        if commitment.order_id:  # a refund of its order reached this payment
            order = Order.objects.select_for_update().get(pk=commitment.order_id)
            order_refund_recorded(order=order, payment=payment)

    def finish_note(self, parent: PreorderBatch, *, succeeded: bool) -> str:
        if not succeeded:
            return "All reservations released"
        paid = (
            parent.reservations.filter(status=ReservationStatus.CHARGED).aggregate(
                units=Sum("quantity")
            )["units"]
            or 0
        )
        return f"{paid} units paid; production confirmed"

    def on_finish(self, parent: PreorderBatch, *, succeeded: bool) -> tuple[str, str]:
        if not succeeded:
            return (
                f"{parent.title} did not reach its minimum",
                "Nobody is charged; any deposit has been refunded.",
            )
        from preorders.tasks import batch_honour_award

        batch_honour_award.delay_on_commit(parent.pk)
        return (
            f"{parent.title} is confirmed: production starts",
            f"Everyone pays {money(parent.final_unit_price, parent.currency)} per unit.",
        )

    # --- words

    def email_context(self, commitment: Reservation) -> dict:
        return {"reservation": commitment, "batch": commitment.batch}

    def charged_receipts(self, commitments, payments) -> None:
        charged_receipts(reservations=commitments, payments=payments)

    def deposit_paid_receipt(self, commitment, payment, *, first: bool) -> None:
        if first:
            reservation_made_receipt(reservation=commitment, deposit=payment)
        else:
            deposit_charged_receipt(reservation=commitment, payment=payment)

    def deposit_refunded_receipt(self, commitment, *, refunded, pending, reason) -> None:
        deposit_refunded_receipt(
            reservation=commitment, refunded=refunded, pending=pending, reason=reason
        )


def preorder_book() -> PreorderBook:
    from payments.commitments.book import commitment_book

    return commitment_book(SETTLEMENT_KIND)
