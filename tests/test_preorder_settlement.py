"""The close and the settlement of a batch, with the local provider (eager Celery)."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from orders.models import OrderStatus
from payments.models import LocalCharge, Payment, PaymentStatus
from preorders.models import BatchStatus, PreorderEvent, Reservation, ReservationStatus
from preorders.services import batch_close, batches_close_due
from tests.preorders import CARD_DECLINED_ON_CHARGE, CARD_NEEDS_AUTH, batch_open, reserve

pytestmark = pytest.mark.django_db(transaction=True)


def _refresh(*objects):
    for obj in objects:
        obj.refresh_from_db()


def test_confirmed_batch_charges_everyone_at_the_ladder_price_and_makes_paid_orders():
    batch = batch_open(min_quantity=5)
    ok = [reserve(batch=batch, quantity=q) for q in (4, 5, 2)]  # 11 units: tier "from 10"
    failed = reserve(batch=batch, quantity=1, card=CARD_DECLINED_ON_CHARGE)
    needs_auth = reserve(batch=batch, quantity=1, card=CARD_NEEDS_AUTH)
    mail.outbox.clear()

    with time_machine.travel(batch.closes_at + timedelta(seconds=1)):
        assert batches_close_due() == 1

    _refresh(batch, *ok, failed, needs_auth)
    assert batch.status == BatchStatus.CONFIRMED
    assert batch.final_unit_price == Decimal("179.00")  # 13 units reached the "from 10" tier
    for reservation in ok:
        assert reservation.status == ReservationStatus.CHARGED
        assert reservation.amount_charged == Decimal("179.00") * reservation.quantity
        assert reservation.order.status == OrderStatus.PAID
        assert reservation.order.total == reservation.amount_charged
        assert reservation.order.lines.get().quantity == reservation.quantity
    assert failed.status == needs_auth.status == ReservationStatus.PAYMENT_FAILED
    assert failed.order is None
    assert failed.grace_until > timezone.now() + timedelta(days=6)
    # One charge per reservation at the provider, keyed by the reservation.
    assert LocalCharge.objects.count() == 5
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 3
    retry_mails = [m for m in mail.outbox if "needs a payment" in m.subject]
    assert sorted(m.to[0] for m in retry_mails) == sorted(
        [failed.user.email, needs_auth.user.email]
    )
    assert f"/preorders/reservations/{failed.pk}/" in retry_mails[0].body
    assert PreorderEvent.objects.filter(batch=batch, to_status=BatchStatus.CONFIRMED).exists()


def test_batch_below_minimum_is_cancelled_and_nobody_is_charged_deposits_refunded():
    batch = batch_open(min_quantity=10, deposit="20.00")
    reservations = [reserve(batch=batch, quantity=2) for _ in range(3)]
    assert all(r.deposit_paid == Decimal("40.00") for r in reservations)

    with time_machine.travel(batch.closes_at + timedelta(seconds=1)):
        batches_close_due()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    for reservation in reservations:
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.RELEASED
        assert reservation.deposit_refunded == Decimal("40.00")
    # Only the deposits were ever charged, and all came back.
    assert not Payment.objects.filter(reference__startswith="preorder-res:").exists()
    assert all(p.status == PaymentStatus.REFUNDED for p in Payment.objects.all())


def test_deposit_is_deducted_from_the_final_charge():
    batch = batch_open(min_quantity=1, deposit="30.00")
    reservation = reserve(batch=batch, quantity=2)
    batch_close(batch=batch, force=True)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CHARGED
    assert reservation.amount_charged == Decimal("199.00") * 2 - Decimal("60.00")
    assert reservation.order.total == Decimal("398.00")


def test_settling_twice_charges_nobody_twice():
    from payments.settlement import settlement_run_chunk

    batch = batch_open(min_quantity=1)
    reservations = [reserve(batch=batch) for _ in range(4)]
    batch_close(batch=batch, force=True)
    first, last = reservations[0].pk, reservations[-1].pk
    # A re-delivered chunk, and a restart by the reconciler.
    settlement_run_chunk(kind="preorder", parent_id=batch.pk, first_id=first, last_id=last)
    assert LocalCharge.objects.count() == 4
    assert Reservation.objects.filter(status=ReservationStatus.CHARGED).count() == 4


def test_a_commitment_left_charging_by_a_dead_worker_is_resolved_from_the_provider():
    """The worker charged at the provider, then died before recording it: the next run asks
    the provider and records that charge instead of charging again."""
    from payments.providers.local import LocalProvider
    from payments.settlement import settlement_run_chunk

    batch = batch_open(min_quantity=1)
    reservation = reserve(batch=batch, quantity=1)
    batch_close(batch=batch, force=False)  # not due: stays open
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN
    # The close, without its chunk tasks, then a "dead" run: charged and marked charging.
    Reservation.objects.filter(pk=reservation.pk).update(
        status=ReservationStatus.CHARGING,
        charging_at=timezone.now() - timedelta(minutes=1),
        unit_price=Decimal("199.00"),
        amount_charged=Decimal("199.00"),
    )
    type(batch).objects.filter(pk=batch.pk).update(
        status=BatchStatus.SETTLING, final_unit_price=Decimal("199.00")
    )
    LocalProvider().charge(
        amount_minor=19900,
        currency="usd",
        customer_ref=f"lcus_{reservation.user_id}",
        card_ref=reservation.saved_card.provider_ref,
        idempotency_key=f"preorder-res-{reservation.pk}:card-{reservation.saved_card_id}",
        off_session=True,
        metadata={},
    )
    settlement_run_chunk(
        kind="preorder", parent_id=batch.pk, first_id=reservation.pk, last_id=reservation.pk
    )
    reservation.refresh_from_db()
    batch.refresh_from_db()
    assert LocalCharge.objects.count() == 1
    assert reservation.status == ReservationStatus.CHARGED
    assert batch.status == BatchStatus.CONFIRMED


def test_confirmed_batch_gives_members_points_and_first_hour_reservers_the_early_bird_badge():
    from communities.models import Community, MemberBadge, Membership
    from communities.services import community_join
    from notifications.models import Notification

    batch = batch_open(min_quantity=1)
    community = Community.objects.create(
        brand=batch.product.brand, kind="brand", name="Fans", slug=f"fans-{batch.pk}"
    )
    early = reserve(batch=batch)  # within the first hour of the window
    community_join(community=community, user=early.user)
    with time_machine.travel(batch.opens_at + timedelta(hours=2)):
        late = reserve(batch=batch)
    community_join(community=community, user=late.user)
    outsider = reserve(batch=batch)  # not a member: no points

    batch_close(batch=batch, force=True)

    points = dict(Membership.objects.filter(community=community).values_list("user_id", "points"))
    assert points[early.user_id] == points[late.user_id] == 20
    assert outsider.user_id not in points
    badges = set(MemberBadge.objects.filter(code="early_bird").values_list("user_id", flat=True))
    assert badges == {early.user_id}
    confirmed = Notification.objects.filter(title__contains="is confirmed")
    assert set(confirmed.values_list("recipient_id", flat=True)) == {
        early.user_id,
        late.user_id,
        outsider.user_id,
    }


def _order_of(reservation):
    reservation.refresh_from_db()
    order = reservation.order
    line = order.lines.get()
    return order, line


def test_the_settlement_and_a_payment_fixed_later_make_the_same_paid_order():
    """Both ways a charged reservation gets its order (the chunk's statement, and
    reservations_make_orders after a payment fixed in the window) write it from the
    reservation's row: its buyer, address, price, the payments behind it, the note."""
    from preorders.services import reservation_pay_again
    from tests.shop import ADDRESS, CARD_OK

    batch = batch_open(min_quantity=1, deposit="30.00", ladder=[(1, "199.00")])
    settled = reserve(batch=batch, quantity=2)
    fixed = reserve(batch=batch, quantity=1, card=CARD_DECLINED_ON_CHARGE)
    batch_close(batch=batch, force=True)
    fixed.refresh_from_db()
    assert fixed.status == ReservationStatus.PAYMENT_FAILED and fixed.order is None
    reservation_pay_again(reservation=fixed, user=fixed.user, saved_card=None, card_input=CARD_OK)

    numbers = set()
    for reservation, quantity in ((settled, 2), (fixed, 1)):
        order, line = _order_of(reservation)
        assert reservation.status == ReservationStatus.CHARGED
        assert (order.user_id, order.email) == (reservation.user_id, reservation.user.email)
        assert order.status == OrderStatus.PAID and order.paid_at is not None
        assert order.shipping_method == "preorder" and order.shipping_cost == 0
        assert order.total == order.subtotal == Decimal("199.00") * quantity
        assert (order.ship_name, order.ship_line1, order.ship_city, order.ship_country) == (
            ADDRESS["full_name"],
            ADDRESS["line1"],
            ADDRESS["city"],
            ADDRESS["country"],
        )
        assert order.paid_through == reservation.payment_reference
        behind = [reservation.payment_reference]
        note = f"Pre-order {batch.title}: confirmed at 199.00 per unit"
        if reservation.deposit_paid:
            behind.append(reservation.deposit_reference)
            note += f", {reservation.deposit_paid} paid as deposit"
        links = order.payment_links.order_by("position").values_list("reference", flat=True)
        assert list(links) == behind
        variant = reservation.variant
        assert (line.variant_id, line.sku, line.product_name, line.variant_label) == (
            variant.pk,
            variant.sku,
            variant.product.name,
            variant.option_label,
        )
        assert (line.unit_price, line.quantity, line.brand_id) == (
            Decimal("199.00"),
            quantity,
            variant.product.brand_id,
        )
        part = order.parts.get()
        assert (part.brand_id, part.total) == (variant.product.brand_id, order.total)
        event = order.events.get()
        assert event.note == note
        assert order.number.startswith("FH-") and len(order.number) == 10
        numbers.add(order.number)
    assert len(numbers) == 2
    assert (settled.deposit_paid, fixed.deposit_paid) == (Decimal("60.00"), Decimal("0.00"))


def test_two_copies_of_a_chunk_at_once_charge_and_order_each_reservation_once(monkeypatch):
    """A re-delivered chunk running beside the first (acks_late): the advisory locks let one
    charge each reservation, and the record makes exactly one order for it."""
    import contextlib
    import threading

    from django.db import connections

    from orders.models import Order
    from payments import tasks
    from payments.providers.local import LocalProvider
    from payments.settlement import settlement_run_chunk

    batch = batch_open(min_quantity=1, per_customer_limit=50)
    reservations = [reserve(batch=batch) for _ in range(12)]
    monkeypatch.setattr(tasks.settlement_chunk, "delay_on_commit", lambda *args: None)
    monkeypatch.setattr(tasks.settlement_finish, "delay", lambda *args: None)
    batch_close(batch=batch, force=True)  # settling, its chunks not run
    first, last = reservations[0].pk, reservations[-1].pk
    start, errors = threading.Barrier(2), []
    # Each copy that gets as far as the provider waits there for the other (a second, at
    # most): were both let in, both would be charging the same reservations at once.
    inside = threading.Barrier(2, timeout=1)
    charge_many = LocalProvider.charge_many

    def charge_many_together(self, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            inside.wait()
        return charge_many(self, **kwargs)

    monkeypatch.setattr(LocalProvider, "charge_many", charge_many_together)

    def chunk() -> None:
        try:
            start.wait()
            settlement_run_chunk(kind="preorder", parent_id=batch.pk, first_id=first, last_id=last)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=chunk) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [r.pk for r in reservations]
    # Whatever the lock left to one copy, the reconciler's rerun finishes it.
    settlement_run_chunk(kind="preorder", parent_id=batch.pk, first_id=first, last_id=last)
    charged = Reservation.objects.filter(pk__in=ids, status=ReservationStatus.CHARGED)
    assert charged.count() == 12
    assert LocalCharge.objects.count() == 12
    assert Payment.objects.filter(reference__startswith="preorder-res:").count() == 12
    orders = Order.objects.filter(paid_through__startswith="preorder-res:")
    assert orders.count() == 12
    assert set(charged.values_list("order_id", flat=True)) == set(
        orders.values_list("pk", flat=True)
    )
