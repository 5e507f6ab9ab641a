"""Receipts: every commitment, charge and refund gets exactly one email (and an in-app
notice) naming what, how much, which card and a link; a path that runs twice (a twin
submit, a re-delivered settlement chunk, a second provider event) mails nobody again."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from notifications.models import Notification, NotificationKind
from orders.fulfilment import order_part_refund
from payments.listeners import payment_listener_notify
from payments.models import Payment
from payments.services import card_save
from payments.settlement import settlement_run_chunk
from preorders.models import ReservationStatus
from preorders.services import (
    batch_close,
    batches_close_due,
    reservation_cancel,
    reservation_change,
    reservation_pay_again,
    reservation_reserve,
)
from tests.factories import UserFactory, VariantFactory
from tests.preorders import CARD_DECLINED_ON_CHARGE, batch_open, reserve
from tests.shop import ADDRESS, CARD_OK, order_paid

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "Visa •••• 4242"


def _to(user, words: str) -> list:
    return [m for m in mail.outbox if m.to == [user.email] and words in m.subject]


def _second_event(payment) -> None:
    """Another provider event about a payment already recorded (a replayed webhook)."""
    with transaction.atomic():
        payment_listener_notify(Payment.objects.select_for_update().get(pk=payment.pk))


def _html(message) -> str:
    return message.alternatives[0][0]


def test_a_reservation_without_deposit_gets_one_receipt_naming_the_card_and_a_twin_none():
    batch = batch_open(min_quantity=5)
    user = UserFactory()
    card = card_save(user=user, card=CARD_OK)
    key = uuid.uuid4().hex
    variant = batch.product.variants.first()
    mail.outbox.clear()
    for _ in range(2):  # a double submit of the same form
        outcome = reservation_reserve(
            batch=batch,
            user=user,
            variant=variant,
            quantity=2,
            address=ADDRESS,
            request_key=key,
            saved_card=card,
        )
    assert [m.subject for m in mail.outbox] == [f"[Fanhub] You reserved 2 × {batch.product.name}"]
    body = mail.outbox[0].body
    assert CARD in body and CARD in _html(mail.outbox[0])
    assert f"/preorders/reservations/{outcome.reservation.pk}/" in body
    assert variant.option_label in body
    assert "UTC" in body  # the close, with its time zone
    assert Notification.objects.filter(recipient=user, kind=NotificationKind.PREORDER).count() == 1


def test_a_reservation_with_a_deposit_gets_one_receipt_with_the_deposit_and_the_card():
    batch = batch_open(min_quantity=5, deposit="25.00")
    user = UserFactory()
    key = uuid.uuid4().hex
    mail.outbox.clear()
    for _ in range(2):
        reservation_reserve(
            batch=batch,
            user=user,
            variant=batch.product.variants.first(),
            quantity=2,
            address=ADDRESS,
            request_key=key,
            card=CARD_OK,
        )
    assert len(mail.outbox) == 1
    assert "Deposit charged: $50.00 to Visa •••• 4242" in mail.outbox[0].body
    assert Payment.objects.filter(reference__startswith="preorder-deposit:").count() == 1


def test_a_declined_deposit_sends_no_reservation_receipt():
    batch = batch_open(min_quantity=5, deposit="25.00")
    user = UserFactory()
    mail.outbox.clear()
    with pytest.raises(Exception, match="nothing was reserved"):
        reservation_reserve(
            batch=batch,
            user=user,
            variant=batch.product.variants.first(),
            quantity=1,
            address=ADDRESS,
            request_key=uuid.uuid4().hex,
            card=CARD_DECLINED_ON_CHARGE,
        )
    assert mail.outbox == []


def test_a_deposit_for_added_units_gets_its_own_receipt_once():
    batch = batch_open(min_quantity=5, deposit="25.00")
    reservation = reserve(batch=batch, quantity=1)
    mail.outbox.clear()
    reservation_change(
        reservation=reservation, user=reservation.user, variant=reservation.variant, quantity=3
    )
    assert [m.subject for m in mail.outbox] == [
        f"[Fanhub] Deposit of $50.00 charged for {batch.product.name}"
    ]
    assert CARD in mail.outbox[0].body
    payment = Payment.objects.filter(reference=reservation.deposit_reference).last()
    _second_event(payment)
    assert len(mail.outbox) == 1


def test_a_cancelled_reservation_gets_one_deposit_refund_receipt():
    batch = batch_open(min_quantity=5, deposit="25.00")
    reservation = reserve(batch=batch, quantity=2)
    mail.outbox.clear()
    reservation_cancel(reservation=reservation, user=reservation.user)
    assert [m.subject for m in mail.outbox] == [
        f"[Fanhub] Deposit of $50.00 refunded for {batch.product.name}"
    ]
    assert f"We refunded $50.00 of your deposit to {CARD}" in mail.outbox[0].body
    with pytest.raises(Exception, match="can no longer be cancelled"):
        reservation_cancel(reservation=reservation, user=reservation.user)
    assert len(mail.outbox) == 1


def test_a_batch_below_its_minimum_sends_each_deposit_refund_once():
    batch = batch_open(min_quantity=10, deposit="20.00")
    reservations = [reserve(batch=batch, quantity=2) for _ in range(3)]
    mail.outbox.clear()
    with time_machine.travel(batch.closes_at + timedelta(seconds=1)):
        batches_close_due()
    first, last = reservations[0].pk, reservations[-1].pk
    settlement_run_chunk(kind="preorder", parent_id=batch.pk, first_id=first, last_id=last)
    for reservation in reservations:
        receipts = _to(reservation.user, "refunded")
        assert len(receipts) == 1
        assert "$40.00" in receipts[0].body and CARD in receipts[0].body


def test_the_close_sends_one_receipt_per_charge_in_bulk_and_a_redelivered_chunk_none():
    batch = batch_open(min_quantity=1, deposit="30.00")
    paid = [reserve(batch=batch, quantity=q) for q in (1, 2, 3)]
    failed = reserve(batch=batch, quantity=1, card=CARD_DECLINED_ON_CHARGE)
    mail.outbox.clear()
    batch_close(batch=batch, force=True)
    settlement_run_chunk(
        kind="preorder", parent_id=batch.pk, first_id=paid[0].pk, last_id=failed.pk
    )

    for reservation in paid:
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.CHARGED
        receipts = _to(reservation.user, "is paid")
        assert len(receipts) == 1
        charged = Decimal("199.00") * reservation.quantity - Decimal("30.00") * reservation.quantity
        body = receipts[0].body
        assert f"Charged now: ${charged:,.2f} to {CARD}" in body
        assert f"Deposit paid before: ${Decimal('30.00') * reservation.quantity:,.2f}" in body
        assert f"Order: {reservation.order.number}" in body
        assert reservation.order.get_absolute_url() in body
        assert (
            Notification.objects.filter(
                recipient=reservation.user, title__contains="is paid"
            ).count()
            == 1
        )
    assert _to(failed.user, "is paid") == []
    assert len(_to(failed.user, "needs a payment")) == 1


def test_paying_again_after_a_decline_gets_one_receipt_and_a_second_event_none():
    batch = batch_open(min_quantity=1)
    failed = reserve(batch=batch, quantity=2, card=CARD_DECLINED_ON_CHARGE)
    batch_close(batch=batch, force=True)
    failed.refresh_from_db()
    assert failed.status == ReservationStatus.PAYMENT_FAILED
    mail.outbox.clear()

    payment = reservation_pay_again(
        reservation=failed, user=failed.user, saved_card=None, card_input=CARD_OK
    )
    _second_event(payment)  # the webhook about the same charge, later

    assert [m.subject for m in mail.outbox] == [
        f"[Fanhub] Your pre-order of {batch.product.name} is paid: $398.00"
    ]
    assert "your payment went through this time" in mail.outbox[0].body
    assert f"Charged now: $398.00 to {CARD}" in mail.outbox[0].body


def test_checkout_paid_gets_one_receipt_naming_the_card_and_a_second_event_none():
    variant = VariantFactory(price=Decimal("2397.00"), stock=5)
    mail.outbox.clear()
    order = order_paid(variant=variant)
    payment = Payment.objects.get(reference=order.payment_reference)
    _second_event(payment)
    receipts = [m for m in mail.outbox if order.number in m.subject]
    assert len(receipts) == 1
    assert f"Charged to {CARD}" in receipts[0].body
    assert "$2,397.00" in receipts[0].body
    assert CARD in _html(receipts[0])


def test_an_order_refund_gets_one_receipt_naming_the_card():
    variant = VariantFactory(price=Decimal("40.00"), stock=5)
    order = order_paid(variant=variant, quantity=2)
    part = order.parts.get()
    mail.outbox.clear()
    line = order.lines.get()
    key = uuid.uuid4().hex
    for _ in range(2):  # the refund form submitted twice
        order_part_refund(part=part, actor=None, lines={line.pk: 1}, key=key, reason="Damaged")
    receipts = [m for m in mail.outbox if "refunded" in m.subject]
    assert len(receipts) == 1
    assert "$40.00" in receipts[0].subject
    assert f"to {CARD}" in receipts[0].body
