"""Pre-order rules: the ladder, limits, changes, the waitlist, the grace period and the
state machines (eager Celery, local provider)."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders.models import OrderStatus
from payments.models import PaymentStatus
from payments.services import card_save
from preorders.models import (
    BatchStatus,
    PreorderBatch,
    PriceTier,
    Reservation,
    ReservationStatus,
    WaitlistStatus,
)
from preorders.services import (
    ReservationError,
    TransitionError,
    batch_cancel,
    batch_close,
    batch_fulfil,
    batch_publish,
    batch_transition,
    batches_close_due,
    batches_open_due,
    ladder_price,
    reservation_cancel,
    reservation_change,
    reservation_create,
    reservation_retry_pay,
    reservation_transition,
    reservations_grace_sweep,
    waitlist_join,
    waitlist_offers_expire,
)
from tests.factories import UserFactory
from tests.preorders import CARD_DECLINED_ON_CHARGE, batch_open, reserve
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)  # settlement runs on commit


def _tiers(*pairs):
    return [PriceTier(min_quantity=q, unit_price=Decimal(p)) for q, p in pairs]


@pytest.mark.parametrize(
    ("units", "price"),
    [(0, "199.00"), (1, "199.00"), (9, "199.00"), (10, "179.00"), (49, "179.00"), (50, "159.00")],
)
def test_ladder_price_is_the_highest_tier_reached(units, price):
    tiers = _tiers((50, "159.00"), (1, "199.00"), (10, "179.00"))
    assert ladder_price(tiers=tiers, units=units) == Decimal(price)


def test_per_customer_limit_counts_every_reservation_of_the_customer():
    batch = batch_open(per_customer_limit=3)
    user = UserFactory()
    reserve(batch=batch, user=user, quantity=2)
    with pytest.raises(ReservationError, match="At most 3 units per customer; you can add 1"):
        reserve(batch=batch, user=user, quantity=2)
    batch.refresh_from_db()
    assert batch.reserved_units == 2


def test_closed_and_not_yet_open_batches_refuse_reservations():
    batch = batch_open()
    PreorderBatch.objects.filter(pk=batch.pk).update(opens_at=timezone.now() + timedelta(days=1))
    batch.refresh_from_db()
    with pytest.raises(ReservationError, match="Reservations open on"):
        reserve(batch=batch)
    PreorderBatch.objects.filter(pk=batch.pk).update(
        opens_at=timezone.now() - timedelta(days=2), closes_at=timezone.now() - timedelta(days=1)
    )
    batch.refresh_from_db()
    with pytest.raises(ReservationError, match="closed"):
        reserve(batch=batch)
    assert not Reservation.objects.exists()


def test_variant_cap_is_separate_from_the_batch_cap():
    from preorders.models import VariantCap

    batch = batch_open(cap=100, per_customer_limit=10)
    gold = batch.product.variants.last()
    VariantCap.objects.create(batch=batch, variant=gold, cap=3)
    reserve(batch=batch, variant=gold, quantity=3)
    with pytest.raises(ReservationError, match="fully reserved"):
        reserve(batch=batch, variant=gold, quantity=1)
    reserve(batch=batch, quantity=4)  # the other colour still has room


def test_double_submit_makes_one_reservation():
    batch = batch_open()
    user = UserFactory()
    card = card_save(user=user, card=CARD_OK)
    arguments = dict(
        batch=batch,
        user=user,
        variant=batch.product.variants.first(),
        quantity=2,
        saved_card=card,
        address=ADDRESS,
        request_key=uuid.uuid4().hex,
    )
    first = reservation_create(**arguments)
    second = reservation_create(**arguments)
    assert first.pk == second.pk
    batch.refresh_from_db()
    assert batch.reserved_units == 2


def test_change_follows_the_deposit_and_cancel_refunds_it_by_policy():
    batch = batch_open(deposit="25.00", deposit_refundable=True, per_customer_limit=5)
    reservation = reserve(batch=batch, quantity=3)
    assert reservation.deposit_paid == Decimal("75.00")

    reservation_change(
        reservation=reservation,
        user=reservation.user,
        variant=batch.product.variants.last(),
        quantity=1,
    )
    reservation.refresh_from_db()
    assert reservation.deposit_refunded == Decimal("50.00")  # two units' deposit back
    batch.refresh_from_db()
    assert batch.reserved_units == 1

    reservation_cancel(reservation=reservation, user=reservation.user)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert reservation.deposit_refunded == Decimal("75.00")
    batch.refresh_from_db()
    assert batch.reserved_units == 0


def test_a_non_refundable_deposit_is_kept_on_cancellation():
    batch = batch_open(deposit="25.00", deposit_refundable=False)
    reservation = reserve(batch=batch, quantity=2)
    reservation_cancel(reservation=reservation, user=reservation.user)
    reservation.refresh_from_db()
    assert (reservation.deposit_paid, reservation.deposit_refunded) == (
        Decimal("50.00"),
        Decimal("0.00"),
    )


def test_someone_else_cannot_change_or_cancel_a_reservation():
    batch = batch_open()
    reservation = reserve(batch=batch)
    with pytest.raises(PermissionError):
        reservation_cancel(reservation=reservation, user=UserFactory())
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.HELD


def test_waitlist_is_offered_freed_units_in_order_and_offers_expire_to_the_next():
    batch = batch_open(cap=4, per_customer_limit=4)
    holder = reserve(batch=batch, quantity=4)
    variant = batch.product.variants.first()
    first, second = UserFactory(), UserFactory()
    with pytest.raises(ReservationError, match="full"):
        reserve(batch=batch, user=first, quantity=1)
    waitlist_join(batch=batch, user=first, variant=variant, quantity=2)
    waitlist_join(batch=batch, user=second, variant=variant, quantity=2)
    mail.outbox.clear()

    reservation_change(reservation=holder, user=holder.user, variant=variant, quantity=2)

    entries = list(batch.waitlist.order_by("created_at"))
    assert [e.status for e in entries] == [WaitlistStatus.OFFERED, WaitlistStatus.WAITING]
    assert [m.to for m in mail.outbox] == [[first.email]]
    batch.refresh_from_db()
    assert batch.offered_units == 2 and batch.available_units == 0
    # A newcomer cannot take the offered units.
    with pytest.raises(ReservationError, match="full"):
        reserve(batch=batch, quantity=1)

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert waitlist_offers_expire() == 1
    entries = list(batch.waitlist.order_by("created_at"))
    assert [e.status for e in entries] == [WaitlistStatus.EXPIRED, WaitlistStatus.OFFERED]
    claimed = reserve(batch=batch, user=second, quantity=2)
    assert claimed.status == ReservationStatus.HELD
    batch.refresh_from_db()
    assert (batch.reserved_units, batch.offered_units) == (4, 0)


def test_close_when_full_closes_as_soon_as_the_cap_is_reached():
    batch = batch_open(cap=3, min_quantity=3, per_customer_limit=3, close_when_full=True)
    reserve(batch=batch, quantity=3)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CONFIRMED  # closed and settled (eager Celery)


def test_transitions_that_must_be_refused():
    batch = batch_open()
    for to in (BatchStatus.CONFIRMED, BatchStatus.CANCELLED, BatchStatus.FULFILLED):
        with pytest.raises(TransitionError):
            batch_transition(batch=batch, to=to, actor=None)
    with pytest.raises(TransitionError):
        batch_fulfil(batch=batch, actor=UserFactory())
    reservation = reserve(batch=batch)
    with pytest.raises(TransitionError):
        reservation_transition(reservation=reservation, to=ReservationStatus.CHARGED, actor=None)
    batch_close(batch=batch, force=True)  # below the minimum: cancelled
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    with pytest.raises(TransitionError):
        batch_cancel(batch=batch, actor=UserFactory())
    reservation.refresh_from_db()
    with pytest.raises(TransitionError):
        reservation_transition(reservation=reservation, to=ReservationStatus.HELD, actor=None)
    with pytest.raises(ReservationError):
        reservation_cancel(reservation=reservation, user=reservation.user)
    assert not batch_close(batch=batch, force=True)


def test_publish_checks_the_ladder_and_schedules_until_the_window_opens():
    batch = batch_open(ladder=[(5, "99.00")])
    PreorderBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.DRAFT, opens_at=timezone.now() + timedelta(hours=2)
    )
    batch.refresh_from_db()
    with pytest.raises(ValidationError, match="first price tier must start from 1"):
        batch_publish(batch=batch, actor=None)
    batch.tiers.update(min_quantity=1)
    batch_publish(batch=batch, actor=None)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SCHEDULED
    assert batches_open_due() == 0
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        assert batches_open_due() == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN


def test_grace_period_reminds_every_48_hours_then_releases():
    batch = batch_open(min_quantity=1)
    failed = reserve(batch=batch, quantity=2, card=CARD_DECLINED_ON_CHARGE)
    reserve(batch=batch, quantity=1)
    with time_machine.travel(batch.closes_at + timedelta(seconds=1), tick=False):
        batches_close_due()
    failed.refresh_from_db()
    assert failed.status == ReservationStatus.PAYMENT_FAILED
    closed = batch.closes_at
    mail.outbox.clear()

    with time_machine.travel(closed + timedelta(hours=47)):
        assert reservations_grace_sweep() == (0, 0)
    with time_machine.travel(closed + timedelta(hours=49)):
        assert reservations_grace_sweep() == (1, 0)
    assert "Reminder" in mail.outbox[-1].subject
    with time_machine.travel(closed + timedelta(days=7, minutes=1)):
        assert reservations_grace_sweep()[1] == 1
    failed.refresh_from_db()
    batch.refresh_from_db()
    assert failed.status == ReservationStatus.RELEASED
    assert batch.reserved_units == 1  # its units no longer count
    assert batch.status == BatchStatus.CONFIRMED  # stays confirmed
    with pytest.raises(ReservationError):
        reservation_retry_pay(
            reservation=failed,
            user=failed.user,
            saved_card=card_save(user=failed.user, card=CARD_OK),
        )


def test_paying_again_within_the_grace_period_makes_the_paid_order():
    batch = batch_open(min_quantity=1)
    failed = reserve(batch=batch, quantity=2, card=CARD_DECLINED_ON_CHARGE)
    batch_close(batch=batch, force=True)
    failed.refresh_from_db()
    assert failed.status == ReservationStatus.PAYMENT_FAILED

    payment = reservation_retry_pay(
        reservation=failed, user=failed.user, saved_card=card_save(user=failed.user, card=CARD_OK)
    )

    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.amount == Decimal("398.00")
    failed.refresh_from_db()
    assert failed.status == ReservationStatus.CHARGED
    assert failed.order.status == OrderStatus.PAID
    assert failed.order.total == Decimal("398.00")
