"""Receipts of pre-orders: one email (and an in-app notice) for every reservation made, every
charge and every refund, naming what, how much, which card and a link. Called by the
services at the one place each happens, after its state check, so a path that runs twice (a
re-delivered settlement chunk, a replayed webhook) finds the state moved and mails nobody.
Texts: templates/preorders/email/<name>.{txt,html}."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from formatting.formats import money
from notifications.models import NotificationKind
from notifications.services import emails_send_on_commit, notifications_in_app
from payments.models import Payment
from payments.selectors import card_label, card_labels, payment_card_label, payments_card_label
from preorders.models import PreorderBatch, Reservation


def receipt_message(
    *, address: str, template: str, subject: str, context: dict
) -> EmailMultiAlternatives:
    context = {**context, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] {subject}",
        body=render_to_string(f"preorders/email/{template}.txt", context),
        to=[address],
    )
    message.attach_alternative(
        render_to_string(f"preorders/email/{template}.html", context), "text/html"
    )
    return message


def _context(reservation: Reservation, batch: PreorderBatch, **extra) -> dict:
    return {
        "reservation": reservation,
        "batch": batch,
        "option": reservation.variant.option_label,  # empty for a product without options
        **extra,
    }


def _send(reservation: Reservation, batch: PreorderBatch, template: str, subject: str, **extra):
    emails_send_on_commit(
        messages=[
            receipt_message(
                address=reservation.user.email,
                template=template,
                subject=subject,
                context=_context(reservation, batch, **extra),
            )
        ]
    )
    notifications_in_app(
        kind=NotificationKind.PREORDER,
        items=[(reservation.user_id, subject, "", reservation.get_absolute_url())],
    )


def reservation_made_receipt(*, reservation: Reservation, deposit: Payment | None = None) -> None:
    """The reservation is in (for a batch with a deposit: once its first deposit is paid)."""
    batch = reservation.batch
    card = payment_card_label(deposit) if deposit else card_label(reservation.saved_card)
    _send(
        reservation,
        batch,
        "reserved",
        f"You reserved {reservation.quantity} × {batch.product.name}",
        deposit=deposit,
        card=card,
    )


def reservation_receipts_send(*, reservation_ids: list[int]) -> int:
    """The receipts still due (`receipt_due`) of these reservations, in bulk, after the
    block that made them committed: "you reserved" for those the intake wrote, "paid" for
    those a settlement chunk charged. Each row is claimed under its lock in the transaction
    that queues its email, so a task run twice (or with the sweep) mails nobody twice."""
    with transaction.atomic():
        reservations = list(
            Reservation.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=reservation_ids, receipt_due=True)
            .select_related("batch__product", "user", "variant__product", "saved_card", "order")
            .order_by("pk")
        )
        if not reservations:
            return 0
        Reservation.objects.filter(pk__in=[r.pk for r in reservations]).update(receipt_due=False)
        charged = [r for r in reservations if r.status == "charged"]
        if charged:
            payments = {
                int(payment.idempotency_key.rsplit("-", 1)[1]): payment
                for payment in Payment.objects.filter(
                    idempotency_key__in=[r.payment_key for r in charged]
                )
            }
            charged_receipts(
                reservations=[r for r in charged if r.pk in payments], payments=payments
            )
        made = [r for r in reservations if r.status != "charged"]
        if made:
            _made_receipts(made)
    return len(reservations)


def _made_receipts(reservations: list[Reservation]) -> None:
    messages, notices = [], []
    for reservation in reservations:
        batch = reservation.batch
        subject = f"You reserved {reservation.quantity} × {batch.product.name}"
        messages.append(
            receipt_message(
                address=reservation.user.email,
                template="reserved",
                subject=subject,
                context=_context(
                    reservation, batch, deposit=None, card=card_label(reservation.saved_card)
                ),
            )
        )
        notices.append((reservation.user_id, subject, "", reservation.get_absolute_url()))
    emails_send_on_commit(messages=messages)
    notifications_in_app(kind=NotificationKind.PREORDER, items=notices)


def deposit_charged_receipt(*, reservation: Reservation, payment: Payment) -> None:
    """A later deposit (for units added to the reservation)."""
    _send(
        reservation,
        reservation.batch,
        "deposit_charged",
        f"Deposit of {money(payment.amount, payment.currency)} charged for "
        f"{reservation.batch.product.name}",
        payment=payment,
        card=payment_card_label(payment),
    )


def deposit_refunded_receipt(
    *, reservation: Reservation, refunded: Decimal, pending: Decimal, reason: str
) -> None:
    if refunded <= 0 and pending <= 0:
        return
    batch = reservation.batch
    amount = refunded if refunded > 0 else pending
    _send(
        reservation,
        batch,
        "deposit_refunded",
        f"Deposit of {money(amount, batch.currency)} refunded for {batch.product.name}",
        refunded=refunded,
        pending=pending,
        reason=reason,
        currency=batch.currency,
        card=payments_card_label(references=[reservation.deposit_reference]),
    )


def _deposit_kept(reservation: Reservation, payment: Payment) -> Decimal | None:
    """What the deposit paid towards the units: the price of the units less this charge."""
    kept = (reservation.unit_price or Decimal("0")) * reservation.quantity - payment.amount
    return kept if kept > 0 else None


def charged_receipts(
    *, reservations: list[Reservation], payments: dict[int, Payment], again: bool = False
) -> int:
    """One receipt per charged reservation, in bulk for a settlement chunk: one query for the
    cards, one INSERT of the outbox rows, one of the notices. Reservations come with their
    batch, user, variant and product loaded, and their order made."""
    if not reservations:
        return 0
    labels = card_labels(card_ids=[p.saved_card_id for p in payments.values() if p.saved_card_id])
    messages, notices = [], []
    for reservation in reservations:
        payment = payments[reservation.pk]
        batch = reservation.batch
        subject = (
            f"Your pre-order of {batch.product.name} is paid: "
            f"{money(payment.amount, payment.currency)}"
        )
        messages.append(
            receipt_message(
                address=reservation.user.email,
                template="charged",
                subject=subject,
                context=_context(
                    reservation,
                    batch,
                    payment=payment,
                    card=labels.get(payment.saved_card_id) or card_label(None),
                    deposit=_deposit_kept(reservation, payment),
                    order=reservation.order,
                    again=again,
                ),
            )
        )
        url = reservation.order.get_absolute_url() if reservation.order else ""
        notices.append((reservation.user_id, subject, "", url or reservation.get_absolute_url()))
    emails_send_on_commit(messages=messages)
    notifications_in_app(kind=NotificationKind.PREORDER, items=notices)
    return len(messages)
