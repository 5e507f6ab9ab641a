"""Settlement exactly once, resumed within a minute: a real Celery worker process settles a
batch of 1,200 reservations (a fifth on a card the bank declines) with Celery beat running,
is killed with SIGKILL in the middle of a chunk, and another worker is started. The beat
sweep finds the killed chunk's reservations `charging` with nobody holding their advisory
lock and re-enqueues them at once (not after the broker's hour-long visibility timeout):
every reservation is resolved within 60 s of the kill, each charged exactly once."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from config.celery import app
from orders.models import Order
from payments.models import LocalCharge, Payment, PaymentCustomer, SavedCard
from payments.services import card_save
from preorders.models import (
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    Reservation,
    ReservationStatus,
)
from preorders.services import batch_close
from tests.factories import UserFactory
from tests.preorders import CARD_DECLINED_ON_CHARGE, batch_open
from tests.services import BASE_DIR, celery_worker_start, process_stop, wait_until
from tests.shop import ADDRESS, CARD_OK

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

RESERVATIONS = 1200
USERS = 100
DECLINING_USERS = 20  # their card is declined when charged: 240 reservations fail
RESUME_WITHIN = 60.0  # seconds from the kill to every reservation resolved


def _env(rate: int) -> dict[str, str]:
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        FANHUB_TEST_DATABASE_NAME=connection.settings_dict["NAME"],
        SETTLEMENT_CHUNK_SIZE="150",  # 8 chunks: several still queued when the kill lands
        SETTLEMENT_RECORD_EVERY="100",  # recorded in two steps: the kill lands between them
        # Slow enough that the kill lands mid-settlement, in the middle of a chunk.
        SETTLEMENT_RATE_LOCAL=str(rate),
    )


def _worker(rate: int, log) -> subprocess.Popen:
    return celery_worker_start(env=_env(rate), log=log)


def _beat(schedule, log) -> subprocess.Popen:
    """Celery beat with the real schedule (config/celery.py): the reconcile sweep every 20 s,
    sent to the same queue the workers read."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            f"--schedule={schedule}",
        ],
        cwd=BASE_DIR,
        env=_env(5000),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(condition, timeout: float, what: str, log=None) -> None:
    def explain() -> str:
        states = Counter(Reservation.objects.values_list("status", flat=True))
        tail = log.read_text()[-1500:] if log else ""
        return f"{states}\nadvisory locks held: {_advisory_locks()}\n{tail}"

    wait_until(condition, timeout=timeout, what=what, explain=explain)


def _many_reservations(batch: PreorderBatch, count: int) -> None:
    users = [UserFactory() for _ in range(USERS)]
    cards = [
        card_save(user=user, card=CARD_DECLINED_ON_CHARGE if index < DECLINING_USERS else CARD_OK)
        for index, user in enumerate(users)
    ]
    variant = batch.product.variants.first()
    address = {
        ("ship_name" if key == "full_name" else f"ship_{key}"): value
        for key, value in ADDRESS.items()
    }
    Reservation.objects.bulk_create(
        [
            Reservation(
                batch=batch,
                user=users[index % USERS],
                variant=variant,
                quantity=1,
                saved_card=cards[index % USERS],
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
    settings.SETTLEMENT_CHUNK_SIZE = 150  # the close, in this process, cuts the chunks
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


def _open() -> int:
    return Reservation.objects.filter(
        status__in=[ReservationStatus.HELD, ReservationStatus.CHARGING]
    ).count()


def _resolved() -> int:
    return Reservation.objects.filter(
        status__in=[ReservationStatus.CHARGED, ReservationStatus.PAYMENT_FAILED]
    ).count()


def test_a_worker_killed_mid_settlement_is_resumed_within_a_minute_charging_nobody_twice(
    real_queue, tmp_path
):
    log_path = tmp_path / "workers.log"
    log = log_path.open("w")
    batch = batch_open(min_quantity=100, ladder=[(1, "50.00"), (1000, "40.00")])
    _many_reservations(batch, RESERVATIONS)
    assert SavedCard.objects.count() == PaymentCustomer.objects.count() == USERS

    beat = _beat(tmp_path / "beat-schedule", log)
    first = _worker(rate=300, log=log)
    second = None
    try:
        assert batch_close(batch=batch, force=True)  # queues 8 chunk tasks to Redis
        _wait_for(
            lambda: _resolved() >= 200,
            timeout=120,
            what="the first worker to settle some reservations",
        )
        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(10)
        resolved_at_kill = _resolved()
        # The kill lands between a provider call and its record (a chunk moves all its
        # reservations to charging, then records results 100 at a time).
        left_charging = Reservation.objects.filter(status=ReservationStatus.CHARGING).count()
        assert resolved_at_kill < RESERVATIONS, "the kill came too late to prove anything"
        assert left_charging > 0, "the kill should land between provider calls and their record"

        # The queued chunks are settled by the new worker; the killed chunk's message stays
        # unacknowledged in Redis for an hour, and the beat sweep resumes its reservations.
        second = _worker(rate=5000, log=log)
        _wait_for(
            lambda: _open() == 0,
            timeout=RESUME_WITHIN + 30,
            what="every reservation to be resolved",
            log=log_path,
        )
        resumed_after = time.monotonic() - killed_at
        _wait_for(
            lambda: PreorderBatch.objects.get(pk=batch.pk).status == BatchStatus.CONFIRMED,
            timeout=30,
            what="the second worker to confirm the batch",
            log=log_path,
        )
    finally:
        for process in (first, second, beat):
            if process is not None and process.poll() is None:
                process_stop(process)
        log.close()

    print(
        f"\nkill after {resolved_at_kill} of {RESERVATIONS} resolved, {left_charging} left"
        f" charging; all resolved {resumed_after:.1f} s after the kill"
    )
    assert resumed_after < RESUME_WITHIN
    assert f"settlement resumed for [('preorder', {batch.pk})]" in log_path.read_text()

    reservations = Reservation.objects.filter(batch=batch)
    statuses = Counter(reservations.values_list("status", flat=True))
    failed = RESERVATIONS * DECLINING_USERS // USERS
    assert statuses == {
        ReservationStatus.CHARGED: RESERVATIONS - failed,
        ReservationStatus.PAYMENT_FAILED: failed,
    }
    # Exactly one provider charge per reservation (keys are "preorder-res-<id>:card-<card>"),
    # one Payment, one move out of held, and one order per charged reservation.
    ids = set(reservations.values_list("pk", flat=True))
    per_reservation = Counter(
        int(key.split(":", 1)[0].removeprefix("preorder-res-"))
        for key in LocalCharge.objects.values_list("idempotency_key", flat=True)
    )
    assert set(per_reservation) == ids and set(per_reservation.values()) == {1}
    assert Payment.objects.filter(idempotency_key__startswith="preorder-res-").count() == len(ids)
    moves = Counter(
        PreorderEvent.objects.filter(reservation__isnull=False).values_list(
            "reservation_id", flat=True
        )
    )
    assert set(moves) == ids and set(moves.values()) == {1}
    orders = Counter(
        Order.objects.filter(paid_through__startswith="preorder-res:").values_list(
            "paid_through", flat=True
        )
    )
    assert len(orders) == RESERVATIONS - failed and set(orders.values()) == {1}
    assert set(Order.objects.values_list("total", flat=True)) == {Decimal("40.00")}
    assert _advisory_locks() == 0
