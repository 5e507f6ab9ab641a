"""Payments' own records: a charge attempt committed before the provider call, refunds that
fail and are retried, reserved and visible until they succeed or are abandoned."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEntry
from audit.selectors import audit_entries_visible
from catalog.models import BrandRole
from payments.models import LocalCharge, Payment, PaymentStatus, Refund, RefundStatus
from payments.providers.base import RefundResult
from payments.providers.local import LocalProvider
from payments.services import (
    PaymentError,
    card_save,
    payment_charge,
    refund_abandon,
    refund_create,
    refunds_retry_due,
)
from tests.console import operator_of
from tests.factories import BrandFactory, UserFactory
from tests.shop import CARD_OK

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid():
    fan = UserFactory()
    card = card_save(user=fan, card=CARD_OK)
    payment = payment_charge(
        user=fan,
        reference="test:1",
        amount=Decimal("100.00"),
        currency="USD",
        saved_card=card,
        idempotency_key="test-1",
        off_session=False,
    )
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


@pytest.fixture
def provider_refuses_refunds(monkeypatch):
    def refuse(self, *, provider_ref, amount_minor, idempotency_key):
        return RefundResult(False, message="The bank is unavailable.")

    monkeypatch.setattr(LocalProvider, "refund", refuse)
    return monkeypatch


def test_the_same_key_charges_once(paid):
    again = payment_charge(
        user=paid.user,
        reference="test:1",
        amount=Decimal("100.00"),
        currency="USD",
        saved_card=paid.saved_card,
        idempotency_key="test-1",
        off_session=False,
    )
    assert again.pk == paid.pk and LocalCharge.objects.count() == 1


def test_a_failed_refund_stays_reserved_and_is_retried_until_it_succeeds(
    paid, provider_refuses_refunds
):
    refund = refund_create(payment=paid, amount=Decimal("60.00"), idempotency_key="r1")

    assert refund.status == RefundStatus.FAILED
    assert refund.failure_message == "The bank is unavailable."
    paid.refresh_from_db()
    assert paid.amount_refunded == 0 and paid.amount_refund_pending == Decimal("60.00")
    assert paid.refundable == Decimal("40.00")
    with pytest.raises(PaymentError):  # 60 are promised already: not 60 more
        refund_create(payment=paid, amount=Decimal("60.00"), idempotency_key="r2")
    assert refunds_retry_due() == 0  # not before its back-off

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert refunds_retry_due() == 1  # still refused
    assert Refund.objects.get(pk=refund.pk).attempts == 2

    provider_refuses_refunds.undo()
    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        assert refunds_retry_due() == 1
    refund.refresh_from_db()
    paid.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and refund.attempts == 3
    assert paid.status == PaymentStatus.PARTIALLY_REFUNDED
    assert (paid.amount_refunded, paid.amount_refund_pending) == (Decimal("60.00"), 0)
    assert LocalCharge.objects.get().amount_refunded_minor == 6000  # refunded once
    assert refunds_retry_due() == 0


def test_an_abandoned_refund_frees_its_amount(paid, provider_refuses_refunds):
    refund = refund_create(payment=paid, amount=Decimal("100.00"), idempotency_key="r1")
    operator = UserFactory(is_staff=True)
    refund_abandon(refund=refund, actor=operator, note="paid back by bank transfer")
    refund.refresh_from_db()
    paid.refresh_from_db()
    assert refund.status == RefundStatus.ABANDONED and "bank transfer" in refund.failure_message
    assert paid.refundable == Decimal("100.00") and paid.status == PaymentStatus.SUCCEEDED
    entry = AuditEntry.objects.get(action="refund.abandon")
    assert (entry.actor, entry.object_id, entry.note) == (
        operator,
        str(refund.pk),
        "paid back by bank transfer",
    )
    assert (entry.before, entry.after) == (
        {"status": "failed", "pending": "100.00"},
        {"status": "abandoned", "pending": "0.00"},
    )
    # No brand on it (a payment spans brands): superusers see it, no brand's operator does.
    someone_else = operator_of(BrandFactory(), role=BrandRole.OWNER)
    assert not audit_entries_visible(user=someone_else).filter(action="refund.abandon")
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        assert refunds_retry_due() == 0  # never retried again
    with pytest.raises(PaymentError):
        refund_abandon(refund=refund, actor=operator)
    assert AuditEntry.objects.filter(action="refund.abandon").count() == 1


def test_a_refund_with_the_provider_unreachable_is_kept(paid, monkeypatch):
    def unreachable(self, **kwargs):
        raise ConnectionError("connection reset")

    monkeypatch.setattr(LocalProvider, "refund", unreachable)
    refund = refund_create(payment=paid, amount=Decimal("10.00"), idempotency_key="r1")
    assert refund.status == RefundStatus.FAILED
    assert Payment.objects.get(pk=paid.pk).amount_refund_pending == Decimal("10.00")
