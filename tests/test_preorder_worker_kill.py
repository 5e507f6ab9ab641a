"""Settlement exactly once: a real Celery worker process settles a batch of 2,000
reservations, is killed with SIGKILL in the middle, and another worker finishes. Every
reservation ends charged exactly once at the provider."""

import os
import signal
import subprocess
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from config.celery import app
from orders.models import Order
from payments.models import LocalCharge, PaymentCustomer, SavedCard
from payments.services import card_save
from payments.settlement import settlement_reconcile
from preorders.models import BatchStatus, PreorderBatch, Reservation, ReservationStatus
from preorders.services import batch_close
from tests.factories import UserFactory
from tests.preorders import batch_open
from tests.services import celery_worker_start, process_stop, wait_until
from tests.shop import ADDRESS, CARD_OK

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

RESERVATIONS = 2000


def _worker(rate: int, log) -> subprocess.Popen:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        FANHUB_TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        # Slow enough that the kill lands mid-settlement, in the middle of a chunk.
        SETTLEMENT_RATE_LOCAL=str(rate),
    )
    return celery_worker_start(env=env, log=log)


def _wait_for(condition, timeout: float, what: str, log=None) -> None:
    def explain() -> str:
        states = Counter(Reservation.objects.values_list("status", flat=True))
        tail = log.read_text()[-1500:] if log else ""
        return f"{states}\nadvisory locks held: {_advisory_locks()}\n{tail}"

    wait_until(condition, timeout=timeout, what=what, explain=explain)


def _many_reservations(batch: PreorderBatch, count: int) -> None:
    users = [UserFactory() for _ in range(100)]
    cards = [card_save(user=user, card=CARD_OK) for user in users]
    variant = batch.product.variants.first()
    address = {
        ("ship_name" if key == "full_name" else f"ship_{key}"): value
        for key, value in ADDRESS.items()
    }
    Reservation.objects.bulk_create(
        [
            Reservation(
                batch=batch,
                user=users[index % 100],
                variant=variant,
                quantity=1,
                saved_card=cards[index % 100],
                request_key=f"bulk-{index}",
                **address,
            )
            for index in range(count)
        ]
    )
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=count)


def _advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def real_queue(settings):
    settings.SETTLEMENT_CHUNK_SIZE = 250
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def test_a_worker_killed_mid_settlement_charges_nobody_twice(real_queue, tmp_path):
    log = (tmp_path / "workers.log").open("w")
    batch = batch_open(min_quantity=100, ladder=[(1, "50.00"), (1000, "40.00")])
    _many_reservations(batch, RESERVATIONS)
    assert SavedCard.objects.count() == PaymentCustomer.objects.count() == 100

    first = _worker(rate=400, log=log)
    try:
        assert batch_close(batch=batch, force=True)  # queues 8 chunk tasks to Redis
        _wait_for(
            lambda: Reservation.objects.filter(status=ReservationStatus.CHARGED).count() >= 300,
            timeout=120,
            what="the first worker to charge some reservations",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    charged_at_kill = Reservation.objects.filter(status=ReservationStatus.CHARGED).count()
    assert charged_at_kill < RESERVATIONS, "the kill came too late to prove anything"
    # The kill lands between a provider call and its record (results are recorded 100 at a
    # time), so some reservations are left `charging` with the provider's charge made.
    left_charging = Reservation.objects.filter(status=ReservationStatus.CHARGING).count()

    # Postgres ends the killed worker's session when it sees the connection drop, and with
    # it the advisory locks on the reservations it was charging.
    _wait_for(lambda: _advisory_locks() == 0, timeout=30, what="the dead session's locks")
    second = _worker(rate=5000, log=log)
    try:
        # The chunks still queued are settled by the new worker. The killed worker's own
        # chunk stays unacknowledged in Redis until the broker's visibility timeout (an
        # hour); the reconciler (beat, every 5 minutes) restarts it once the batch has been
        # quiet for a while: here, its next run, as soon as the queued chunks are done.
        _wait_for(
            lambda: not Reservation.objects.filter(status=ReservationStatus.HELD).exists(),
            timeout=60,
            what="the new worker to settle the queued chunks",
        )
        assert Reservation.objects.filter(status=ReservationStatus.CHARGING).exists()
        assert settlement_reconcile(quiet_for=timedelta(0)) == [("preorder", batch.pk)]
        _wait_for(
            lambda: PreorderBatch.objects.get(pk=batch.pk).status == BatchStatus.CONFIRMED,
            timeout=120,
            what="the second worker to confirm the batch",
            log=tmp_path / "workers.log",
        )
    finally:
        process_stop(second)

    reservations = Reservation.objects.filter(batch=batch)
    assert reservations.filter(status=ReservationStatus.CHARGED).count() == RESERVATIONS
    # Exactly one provider charge per reservation (keys are "preorder-res-<id>:card-<card>").
    per_reservation = Counter(
        key.split(":", 1)[0]
        for key in LocalCharge.objects.values_list("idempotency_key", flat=True)
    )
    assert len(per_reservation) == RESERVATIONS
    assert set(per_reservation.values()) == {1}
    assert Order.objects.filter(paid_through__startswith="preorder-res:").count() == RESERVATIONS
    assert set(Order.objects.values_list("total", flat=True)) == {Decimal("40.00")}
    assert left_charging > 0, "the kill should land between provider calls and their record"
