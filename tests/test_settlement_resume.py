"""Resuming a settlement whose worker died, and the engine's 64-bit advisory-lock keys.

The dead worker is played by a thread with its own database session: it takes the chunk's
locks and commits the reservations as `charging`, as a worker does before it calls the
provider, then its connection goes, as a killed process's does."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from payments.models import LocalCharge, Payment
from payments.settlement import (
    LOCK_ID_BITS,
    _lock_ids,
    _unlock_ids,
    lock_key,
    settlement_book,
    settlement_book_register,
    settlement_books,
    settlement_orphans,
    settlement_reconcile,
    settlement_run_chunk,
)
from preorders.models import (
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    Reservation,
    ReservationStatus,
)
from preorders.services import SETTLEMENT_KIND, batch_close, ladder_price
from tests.preorders import CARD_DECLINED_ON_CHARGE, batch_open, reserve
from tests.services import wait_until
from tests.shop import CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = timedelta(hours=1)  # so that only the orphan test, never the quiet period, can fire


def _settling(*, ok: int, declined: int = 0) -> tuple[PreorderBatch, list[int]]:
    """A batch closed and settling whose chunks were never run (the close's own, eager,
    settlement is what the dead worker interrupts here)."""
    batch = batch_open(min_quantity=1)
    for index in range(ok + declined):
        reserve(batch=batch, card=CARD_DECLINED_ON_CHARGE if index < declined else CARD_OK)
    batch.refresh_from_db()
    PreorderBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.SETTLING,
        closed_at=batch.opens_at,
        final_unit_price=ladder_price(tiers=list(batch.tiers.all()), units=batch.reserved_units),
    )
    ids = list(Reservation.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True))
    return batch, ids


class DyingWorker(threading.Thread):
    """Takes the range's locks, moves the rows to `charging` (unless `begin` is False), and
    dies when told."""

    def __init__(self, batch_id: int, first: int, last: int, *, begin: bool = True) -> None:
        super().__init__(daemon=True)
        self.args_ = (batch_id, first, last)
        self.begin = begin
        self.charging = threading.Event()
        self.die = threading.Event()
        self.locked: list[int] = []

    def run(self) -> None:
        batch_id, first, last = self.args_
        book = settlement_book(SETTLEMENT_KIND)
        try:
            self.locked = _lock_ids(book, batch_id, first, last)
            if self.begin:  # autocommit: committed, as before a worker calls the provider
                book.charging_begin(parent_id=batch_id, ids=self.locked)
            self.charging.set()
            self.die.wait(30)
        finally:
            connection.close()  # no unlock: the session ends and takes its locks with it


def _our_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


def test_a_charging_reservation_is_resumed_as_soon_as_its_worker_is_gone_and_only_then():
    batch, ids = _settling(ok=8, declined=2)
    worker = DyingWorker(batch.pk, ids[0], ids[-1])
    worker.start()
    assert worker.charging.wait(10)
    assert worker.locked == ids
    assert Reservation.objects.filter(status=ReservationStatus.CHARGING).count() == 10

    # Alive: its rows are charging, but locked; nothing to resume, nobody charged.
    assert settlement_orphans(book=settlement_book(SETTLEMENT_KIND), parent_id=batch.pk) == []
    assert settlement_reconcile(quiet_for=HOUR) == []
    assert settlement_reconcile(quiet_for=timedelta(0)) == []  # stalled, but a worker is on it
    assert LocalCharge.objects.count() == 0

    worker.die.set()
    worker.join(10)
    wait_until(lambda: _our_locks() == 0, timeout=10, what="the dead session's locks to go")
    book = settlement_book(SETTLEMENT_KIND)
    assert settlement_orphans(book=book, parent_id=batch.pk) == ids

    # The sweep resumes at once, no quiet period (eager Celery: the chunk runs on commit).
    assert settlement_reconcile(quiet_for=HOUR) == [(SETTLEMENT_KIND, batch.pk)]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CONFIRMED
    statuses = Counter(Reservation.objects.values_list("status", flat=True))
    assert statuses == {ReservationStatus.CHARGED: 8, ReservationStatus.PAYMENT_FAILED: 2}
    keys = Counter(
        k.split(":")[0] for k in LocalCharge.objects.values_list("idempotency_key", flat=True)
    )
    assert keys == Counter({f"preorder-res-{pk}": 1 for pk in ids})

    # A duplicate of the chunk (the original message, re-delivered after the broker's
    # visibility timeout) finds nothing to do; the sweep finds nothing either.
    events = PreorderEvent.objects.count()
    assert (
        settlement_run_chunk(
            kind=SETTLEMENT_KIND, parent_id=batch.pk, first_id=ids[0], last_id=ids[-1]
        )
        is False
    )
    assert settlement_reconcile(quiet_for=timedelta(0)) == []
    assert LocalCharge.objects.count() == Payment.objects.count() == 10
    assert PreorderEvent.objects.count() == events


def test_resume_chunks_span_at_most_a_chunk_width(settings):
    settings.SETTLEMENT_CHUNK_SIZE = 3
    batch, ids = _settling(ok=7)
    worker = DyingWorker(batch.pk, ids[0], ids[-1])
    worker.start()
    assert worker.charging.wait(10)
    worker.die.set()
    worker.join(10)
    wait_until(lambda: _our_locks() == 0, timeout=10, what="the dead session's locks to go")
    assert settlement_reconcile(quiet_for=HOUR) == [(SETTLEMENT_KIND, batch.pk)]
    assert Reservation.objects.filter(status=ReservationStatus.CHARGED).count() == 7
    assert LocalCharge.objects.count() == 7


# --- advisory-lock keys ------------------------------------------------------------------------


def test_lock_keys_are_distinct_for_64_bit_ids_and_bounded():
    low, high = 5, 5 + 2**32  # the same low 32 bits: an int4 cast could not tell them apart
    assert lock_key(namespace=7101, commitment_id=low) != lock_key(
        namespace=7101, commitment_id=high
    )
    # The namespace lives above the id bits: (n, id) never meets (n + 1, id') for valid ids.
    top = 2**LOCK_ID_BITS - 1
    assert lock_key(namespace=7101, commitment_id=top) < lock_key(namespace=7102, commitment_id=1)
    assert 0 < lock_key(namespace=2**15 - 1, commitment_id=top) < 2**63
    with pytest.raises(ValueError):
        lock_key(namespace=7101, commitment_id=2**LOCK_ID_BITS)
    with pytest.raises(ValueError):
        lock_key(namespace=2**15, commitment_id=1)


def test_two_books_cannot_share_a_lock_namespace():
    preorder = settlement_book(SETTLEMENT_KIND)

    class Clash:
        kind = "clash"
        lock_namespace = preorder.lock_namespace

    class OutOfRange:
        kind = "huge"
        lock_namespace = 2**15

    for book in (Clash(), OutOfRange()):
        with pytest.raises(ValueError):
            settlement_book_register(book)
    kinds = {book.kind for book in settlement_books()}
    assert SETTLEMENT_KIND in kinds and not kinds & {"clash", "huge"}
    settlement_book_register(preorder)  # the same book again (apps.ready twice) is fine


@pytest.fixture
def big_ids():
    """Reservation ids above 2**31 (and one 2**32 above another, the int4 collision)."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER SEQUENCE preorders_reservation_id_seq RESTART WITH 3000000000")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER SEQUENCE preorders_reservation_id_seq RESTART WITH 1")


def test_settlement_locks_and_charges_reservations_with_ids_above_2_to_the_31(big_ids):
    batch = batch_open(min_quantity=1)
    ids = [reserve(batch=batch).pk for _ in range(3)]
    assert ids[0] >= 3_000_000_000  # `id::int` raised "integer out of range" here
    book = settlement_book(SETTLEMENT_KIND)

    # Another session holds them: we get none, and pg_locks shows the keys lock_key computes.
    holder = DyingWorker(batch.pk, ids[0], ids[-1], begin=False)
    holder.start()
    assert holder.charging.wait(10)
    assert holder.locked == ids
    assert _lock_ids(book, batch.pk, ids[0], ids[-1]) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 1 ORDER BY 1"
        )
        held = [row[0] for row in cursor.fetchall()]
    assert held == [lock_key(namespace=book.lock_namespace, commitment_id=pk) for pk in ids]
    holder.die.set()
    holder.join(10)
    wait_until(lambda: _our_locks() == 0, timeout=10, what="the holder's locks to go")
    assert _lock_ids(book, batch.pk, ids[0], ids[-1]) == ids
    _unlock_ids(book, ids)

    assert batch_close(batch=batch, force=True)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CONFIRMED
    assert Reservation.objects.filter(status=ReservationStatus.CHARGED).count() == 3
    assert LocalCharge.objects.count() == 3
    assert _our_locks() == 0
