"""Pre-order throughput: settling a confirmed batch of 100,000 reservations with real Celery
worker processes, and taking reservations under contention.

- settle: 1,000 fans with a saved local card, 100,000 held reservations (COPY), a ladder;
  `batch_close(force=True)` with Celery not eager, so the chunk tasks go through Redis to 2
  `celery worker --pool=solo` processes; timed until the batch is `confirmed`. Baseline: the
  same number of rows of a second batch moved to `charged` by one raw SQL UPDATE.
- reserve: `reservation_create` from 16 threads against one batch (every call takes the
  batch row lock), against the same number of calls made one after another.

The workers use the bench settings (database fanhub_bench, Redis databases 4-6; the broker's
and the cache's are flushed before and after). With PREORDERS_PROFILE=<directory> the workers
run under cProfile with every SQL statement timed (bench/profiled_worker.py), and the top of
both is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import redis
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum
from django.test.utils import override_settings
from django.utils import timezone

from accounts.handles import handle_from_name
from accounts.models import User
from bench import search
from bench.runner import Figure, compared
from catalog.models import Product, Variant
from catalog.services import variant_save
from config.celery import app
from payments.models import SavedCard
from payments.services import card_save
from preorders.models import (
    COUNTED_STATUSES,
    BatchStatus,
    PreorderBatch,
    PriceTier,
    Reservation,
    ReservationStatus,
)
from preorders.services import batch_close, reservation_create

BASE_DIR = Path(__file__).resolve().parent.parent

USERS = 1_000
RESERVATIONS = 100_000
WARMUP_RESERVATIONS = 2_000  # settled first, so both workers are warm when the clock starts
WORKERS = 2
CHUNK_SIZE = 500
RATE = 100_000  # SETTLEMENT_RATE_LOCAL for the workers: pacing is not what is measured
SETTLE_TIMEOUT = 3_600
CHUNK_DONE = re.compile(r"settlement_chunk\[[^\]]+\] succeeded in ([\d.]+)s")  # celery INFO
LADDER = [(1, "50.00"), (1_000, "45.00"), (50_000, "40.00")]
FINAL_PRICE = Decimal("40.00")

THREADS = 16
RESERVE_CALLS = 1_000
RESERVE_WARMUP = 50
RESERVE_RUNS = 3
CAP, CAP_ATTEMPTS = 300, 1_000

PRODUCT_NAME = " Solar Kettle "  # a generated product the pages benchmark does not use
SLUG = "bench-preorders"
EMAIL = "bench-preorder-{n}@fans.example"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
ADDRESS = {
    "full_name": "A Fan",
    "line1": "1 Fan Street",
    "line2": "",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
    "phone": "",
}


# --- data ------------------------------------------------------------------------------------


def _variant() -> Variant:
    """A variant of one of the search benchmark's products: no product is added (search and
    pages regenerate the catalogue on any other count)."""
    if Product.objects.count() != search.PRODUCTS:
        print(f"  generating {search.PRODUCTS:,} products (once)...", flush=True)
        search._generate()
    product = Product.objects.filter(name__contains=PRODUCT_NAME).order_by("id").first()
    assert product is not None, f"the generated catalogue has no{PRODUCT_NAME}"
    sku = f"BENCH-PREORDER-{product.pk}"
    variant = Variant.objects.filter(sku=sku).first()
    if variant is None:
        variant = variant_save(
            variant=Variant(
                product=product, sku=sku, options={"colour": "Black"}, price="50.00", stock=0
            )
        )
    return variant


def _fans() -> tuple[list[User], dict[int, SavedCard]]:
    """1,000 fans, each with a saved local card (made once, then reused)."""
    emails = [EMAIL.format(n=n) for n in range(USERS)]
    have = set(User.objects.filter(email__in=emails).values_list("email", flat=True))
    User.objects.bulk_create(
        [
            User(
                email=email,
                display_name=email.split("@")[0],
                handle=handle_from_name(email.split("@")[0]),  # bulk_create skips save()
                password=make_password(None),
            )
            for email in emails
            if email not in have
        ]
    )
    users = list(User.objects.filter(email__in=emails).order_by("id"))
    cards = {card.user_id: card for card in SavedCard.objects.filter(user__in=users)}
    missing = [user for user in users if user.pk not in cards]
    if missing:
        print(f"  saving {len(missing):,} cards (once)...", flush=True)
        for user in missing:
            cards[user.pk] = card_save(user=user, card=CARD)
    return users, cards


def _clear(user_ids: list[int]) -> None:
    """Everything earlier runs left: the bench batches and all they made (reservations,
    events, orders, payments, provider charges, notifications of the bench fans)."""
    batches = list(PreorderBatch.objects.filter(slug__startswith=SLUG).values_list("pk", flat=True))
    statements = [
        "DELETE FROM preorders_preorderevent WHERE batch_id = ANY(%(batches)s)",
        "DELETE FROM preorders_waitlistentry WHERE batch_id = ANY(%(batches)s)",
        "DELETE FROM preorders_variantcap WHERE batch_id = ANY(%(batches)s)",
        "DELETE FROM preorders_reservation WHERE batch_id = ANY(%(batches)s)",
        "DELETE FROM preorders_pricetier WHERE batch_id = ANY(%(batches)s)",
        "DELETE FROM preorders_preorderbatch WHERE id = ANY(%(batches)s)",
        "DELETE FROM orders_orderevent WHERE order_id IN"
        " (SELECT id FROM orders_order WHERE user_id = ANY(%(users)s))",
        "DELETE FROM orders_orderline WHERE order_id IN"
        " (SELECT id FROM orders_order WHERE user_id = ANY(%(users)s))",
        "DELETE FROM orders_stockhold WHERE order_id IN"
        " (SELECT id FROM orders_order WHERE user_id = ANY(%(users)s))",
        "DELETE FROM orders_order WHERE user_id = ANY(%(users)s)",
        "DELETE FROM payments_refund WHERE payment_id IN"
        " (SELECT id FROM payments_payment WHERE user_id = ANY(%(users)s))",
        "DELETE FROM payments_payment WHERE user_id = ANY(%(users)s)",
        "DELETE FROM payments_localcharge WHERE card_id IN (SELECT l.id FROM payments_localcard l"
        " JOIN payments_savedcard s ON s.provider_ref = l.token WHERE s.user_id = ANY(%(users)s))",
        "DELETE FROM notifications_notification WHERE recipient_id = ANY(%(users)s)",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, {"batches": batches, "users": user_ids})
    _vacuum()


TABLES = [
    "preorders_reservation",
    "preorders_preorderevent",
    "payments_payment",
    "payments_localcharge",
    "orders_order",
    "orders_orderline",
    "orders_orderevent",
]


def _vacuum() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")


def _batch(name: str, *, cap: int | None = None, per_customer_limit: int = 5) -> PreorderBatch:
    """An open batch of the bench product with the ladder, made directly (bench data)."""
    variant = Variant.objects.get(sku__startswith="BENCH-PREORDER-")
    now = timezone.now()
    batch = PreorderBatch.objects.create(
        product_id=variant.product_id,
        title=f"Bench pre-order {name}",
        slug=f"{SLUG}-{name}-{time.time_ns()}",
        status=BatchStatus.OPEN,
        opens_at=now - timedelta(minutes=5),
        closes_at=now + timedelta(days=7),
        min_quantity=100,
        cap=cap,
        per_customer_limit=per_customer_limit,
        estimated_ship_date=date.today() + timedelta(days=60),
    )
    PriceTier.objects.bulk_create(
        [PriceTier(batch=batch, min_quantity=q, unit_price=Decimal(p)) for q, p in LADDER]
    )
    return batch


def _fill(batch: PreorderBatch, count: int, users: list[User], cards: dict[int, SavedCard]):
    """`count` held reservations of one unit, the fans in turn, by COPY; then the batch's
    counter and fresh planner statistics, as after a real reservation window."""
    variant = Variant.objects.get(sku__startswith="BENCH-PREORDER-")
    now = timezone.now()
    ship = [ADDRESS[key] for key in ADDRESS]
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(
            "COPY preorders_reservation (batch_id, user_id, variant_id, quantity, status,"
            " saved_card_id, request_key, deposit_paid, deposit_refunded, failure_message,"
            " ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,"
            " ship_phone, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for index in range(count):
            user = users[index % len(users)]
            copy.write_row(
                (
                    batch.pk,
                    user.pk,
                    variant.pk,
                    1,
                    ReservationStatus.HELD.value,
                    cards[user.pk].pk,
                    f"bulk-{batch.pk}-{index}",
                    "0.00",
                    "0.00",
                    "",
                    *ship,
                    now,
                    now,
                )
            )
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE preorders_reservation")
    batch.refresh_from_db()


# --- the workers -----------------------------------------------------------------------------


def _flush_queues() -> None:
    """The bench's own broker and cache databases (settings.bench): tasks left by an
    interrupted run, the pacing bucket."""
    from config.settings.base import redis_url_for

    for number in (0, 1):  # broker, cache
        url = redis_url_for(settings.REDIS_URL, settings.REDIS_DB_OFFSET + number)
        redis.Redis.from_url(url).flushdb()


def _worker_env(profile: str | None, index: int) -> dict[str, str]:
    from config import embedded

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or embedded.database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SETTLEMENT_RATE_LOCAL": str(RATE),
        "SETTLEMENT_CHUNK_SIZE": str(CHUNK_SIZE),
        # After the close, 1,000 notifications and their emails: none is sent for real.
        "EMAIL_URL": "dummymail://",
    }
    if profile:
        env["PREORDERS_PROFILE"] = profile
        env["PREORDERS_PROFILE_NAME"] = str(index)
    return env


def _start_workers(log: Path, profile: str | None) -> list[subprocess.Popen[bytes]]:
    workers = []
    with open(log, "ab") as out:
        for index in range(WORKERS):
            module = "bench.profiled_worker" if profile else "celery"
            command = [sys.executable, "-m", module, "-A", "config", "worker", "--pool=solo"]
            command += ["--loglevel=INFO", "--without-gossip", "--without-mingle"]
            command += ["--without-heartbeat", "-n", f"bench-preorders-{index}@%h"]
            workers.append(
                subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                    command,
                    cwd=BASE_DIR,
                    env=_worker_env(profile, index),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    names = {f"bench-preorders-{index}@" for index in range(WORKERS)}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _check_alive(workers, log)
        replies = app.control.ping(timeout=0.5) or []
        answered = {name.split("@")[0] + "@" for reply in replies for name in reply}
        if names <= answered:
            return workers
    _stop_workers(workers)
    raise RuntimeError(f"the workers did not answer in 60 s:\n{log.read_text()[-3000:]}")


def _check_alive(workers: list[subprocess.Popen[bytes]], log: Path) -> None:
    for worker in workers:
        if worker.poll() is not None:
            raise RuntimeError(f"a worker exited ({worker.returncode}):\n{log.read_text()[-3000:]}")


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # warm shutdown: the current task finishes
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


# --- settle ----------------------------------------------------------------------------------


def _wal_lsn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        return cursor.fetchone()[0]


def _wal_since(lsn: str) -> int:
    """Bytes of WAL the server wrote since `lsn` (all its databases)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn])
        return int(cursor.fetchone()[0])


def _settle(batch: PreorderBatch, workers, log: Path, *, progress: bool) -> float:
    """Seconds from batch_close until the batch is confirmed."""
    wal = _wal_lsn()
    with override_settings(SETTLEMENT_CHUNK_SIZE=CHUNK_SIZE):
        started = time.perf_counter()
        assert batch_close(batch=batch, force=True)
    status = PreorderBatch.objects.filter(pk=batch.pk).values_list("status", flat=True)
    next_report = started + 10
    while status.first() != BatchStatus.CONFIRMED:
        now = time.perf_counter()
        if now - started > SETTLE_TIMEOUT:
            raise RuntimeError(f"batch {batch.pk} not confirmed in {SETTLE_TIMEOUT} s")
        _check_alive(workers, log)
        if progress and now >= next_report:
            charged = Reservation.objects.filter(
                batch=batch, status=ReservationStatus.CHARGED
            ).count()
            print(
                f"    {now - started:6.1f} s: {charged:,} charged"
                f" ({charged / (now - started):.0f}/s)",
                flush=True,
            )
            next_report += 10
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if progress:
        written = _wal_since(wal)
        print(
            f"  WAL written while settling: {written / 2**20:,.0f} MB "
            f"({written / batch.reserved_units / 1024:.1f} kB per reservation; the server's "
            "checkpoints follow this volume)",
            flush=True,
        )
    return elapsed


def _check_settled(batch: PreorderBatch, count: int) -> None:
    """Every reservation charged once at the provider, with its succeeded payment and order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE r.status = 'charged' AND r.order_id IS NOT NULL),"
            " (SELECT count(*) FROM payments_payment p JOIN preorders_reservation r"
            "  ON p.idempotency_key = 'preorder-res-' || r.id"
            "  WHERE r.batch_id = %(batch)s AND p.status = 'succeeded'),"
            " (SELECT count(*) FROM payments_localcharge c JOIN preorders_reservation r"
            "  ON c.idempotency_key = 'preorder-res-' || r.id || ':card-' || r.saved_card_id"
            "  WHERE r.batch_id = %(batch)s)"
            " FROM preorders_reservation r WHERE r.batch_id = %(batch)s",
            {"batch": batch.pk},
        )
        charged, payments, charges = cursor.fetchone()
    assert charged == payments == charges == count, (
        f"of {count}: {charged} charged with an order, {payments} payments, {charges} charges"
    )


def _raw_sql_seconds(batch: PreorderBatch) -> float:
    """One UPDATE moving every reservation of the batch to charged at the ladder price."""
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "UPDATE preorders_reservation SET status = %s, unit_price = %s,"
            " amount_charged = quantity * %s, updated_at = now() WHERE batch_id = %s",
            [ReservationStatus.CHARGED.value, FINAL_PRICE, FINAL_PRICE, batch.pk],
        )
        elapsed = time.perf_counter() - started
        assert cursor.rowcount == RESERVATIONS
    return elapsed


def _after_warmup(log: Path) -> int:
    """Where the measured chunks start in the log: after the warm-up's last chunk has logged
    (it logs just after the batch is confirmed)."""
    chunks = -(-WARMUP_RESERVATIONS // CHUNK_SIZE)
    deadline = time.monotonic() + 10
    text = log.read_text(errors="replace")
    while len(CHUNK_DONE.findall(text)) < chunks and time.monotonic() < deadline:
        time.sleep(0.05)
        text = log.read_text(errors="replace")
    return len(text)


def _chunk_times(log: Path, offset: int) -> None:
    """How long the chunks took, from the workers' log: a drift from the first chunks to the
    last shows the work getting slower as the tables grow."""
    seconds = [
        float(match.group(1))
        for match in CHUNK_DONE.finditer(log.read_text(errors="replace")[offset:])
    ]
    if len(seconds) < 10:
        return
    tenth = len(seconds) // 10
    print(
        f"  {len(seconds)} chunks: median {statistics.median(seconds):.2f} s, first tenth "
        f"{statistics.mean(seconds[:tenth]):.2f} s, "
        f"last tenth {statistics.mean(seconds[-tenth:]):.2f} s",
        flush=True,
    )


def _profile_summary(directory: str) -> None:
    files = sorted(Path(directory).glob("worker-*.pstats"))
    if not files:
        print("  no worker profile written", flush=True)
        return
    stats = pstats.Stats(*map(str, files))
    print(f"  cProfile of the workers' tasks ({directory}):", flush=True)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    sql: dict[str, list[float]] = {}
    tasks: dict[str, list[float]] = {}
    for path in sorted(Path(directory).glob("worker-*.json")):
        data = json.loads(path.read_text())
        for into, key in ((sql, "sql"), (tasks, "tasks")):
            for name, (n, seconds) in data[key].items():
                entry = into.setdefault(name, [0, 0.0])
                entry[0] += n
                entry[1] += seconds
    print("  task time (both workers):", flush=True)
    for name, (n, seconds) in sorted(tasks.items(), key=lambda item: -item[1][1]):
        print(f"    {name:<55} {n:>6} runs {seconds:9.2f} s", flush=True)
    print("  SQL time by statement shape (both workers):", flush=True)
    for name, (n, seconds) in sorted(sql.items(), key=lambda item: -item[1][1])[:25]:
        print(f"    {name:<55} {n:>8} x {seconds:9.2f} s {seconds / n * 1e3:7.3f} ms", flush=True)


def _settle_figures(users, cards) -> dict[str, Figure]:
    profile = os.environ.get("PREORDERS_PROFILE")
    warm = _batch("warmup")
    _fill(warm, WARMUP_RESERVATIONS, users, cards)
    batch = _batch("settle")
    print(f"  {RESERVATIONS:,} held reservations...", flush=True)
    _fill(batch, RESERVATIONS, users, cards)
    _flush_queues()
    with tempfile.TemporaryDirectory(prefix="fanhub-preorders-") as tmp:
        log = Path(tmp) / "workers.log"
        workers = _start_workers(log, profile)
        try:
            _settle(warm, workers, log, progress=False)
            offset = _after_warmup(log)
            print(f"  settling with {WORKERS} workers...", flush=True)
            settle_s = _settle(batch, workers, log, progress=True)
        finally:
            _stop_workers(workers)
            _flush_queues()
        _chunk_times(log, offset)
    _check_settled(batch, RESERVATIONS)
    if profile:
        _profile_summary(profile)

    fresh = _batch("baseline")
    _fill(fresh, RESERVATIONS, users, cards)
    sql_s = _raw_sql_seconds(fresh)
    note = (
        f"{RESERVATIONS:,} held reservations of 1 unit ({USERS:,} fans with a saved local card, "
        f"3-tier ladder) settled by {WORKERS} `celery worker --pool=solo` processes on the same "
        f"{os.cpu_count()}-CPU machine as Postgres, chunks of {CHUNK_SIZE} through Redis, pacing "
        f"at {RATE:,}/s (not the limit), after a {WARMUP_RESERVATIONS:,}-reservation warm-up; "
        "wall time from batch_close(force=True) to the batch confirmed, one run. What one "
        "settlement does per reservation: under an advisory lock, moved to charging with a "
        "pending Payment (bulk, per chunk); a provider charge (local: a LocalCharge row, made "
        "100 at a time by charge_many); then per 100, in one transaction: the Payments' "
        "results, the reservations locked and moved to charged, a PreorderEvent, an Order + "
        "OrderLine + OrderEvent (bulk) and the reservation's order. Checked afterwards: each "
        "reservation charged once, with its succeeded Payment and its order. Baseline: one raw "
        "SQL UPDATE of the same number of reservations of a second batch to charged at the "
        "ladder price"
    )
    return {
        "preorders.settle_per_s": compared(
            RESERVATIONS / settle_s, RESERVATIONS / sql_s, "per_s", note
        ),
        "preorders.settle_seconds": compared(settle_s, sql_s, "s", note),
    }


# --- reserve ---------------------------------------------------------------------------------


def _reserve(batch, variant, calls: list[tuple[User, SavedCard, str]]) -> int:
    """Make the calls one after another; returns how many were refused."""
    refused = 0
    for user, card, key in calls:
        try:
            reservation_create(
                batch=batch,
                user=user,
                variant=variant,
                quantity=1,
                saved_card=card,
                address=ADDRESS,
                request_key=key,
            )
        except ValidationError:
            refused += 1
    return refused


def _threaded(function: Callable[[list], int], calls: list, threads: int) -> tuple[float, int]:
    """Seconds for `threads` threads to make the calls between them (each its own
    connection, opened before the clock starts); and the calls refused."""
    ready = threading.Barrier(threads + 1)
    refused: list[int] = []
    errors: list[BaseException] = []

    def work(share: list) -> None:
        try:
            connection.ensure_connection()
            ready.wait()
            refused.append(function(share))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            ready.abort()
        finally:
            connection.close()

    pool = [
        threading.Thread(target=work, args=(calls[index::threads],)) for index in range(threads)
    ]
    for thread in pool:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()  # broken when a thread failed before the start: raised below
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed, sum(refused)


def _calls(users, cards, count: int, tag: str) -> list[tuple[User, SavedCard, str]]:
    return [
        (users[index % len(users)], cards[users[index % len(users)].pk], f"{tag}-{index}")
        for index in range(count)
    ]


def _reserve_figures(users, cards) -> dict[str, Figure]:
    variant = Variant.objects.get(sku__startswith="BENCH-PREORDER-")
    run = time.time_ns()
    limit = RESERVE_CALLS // USERS + 1
    _reserve(_batch("reserve-warmup"), variant, _calls(users, cards, RESERVE_WARMUP, f"w{run}"))
    sequential, contended = [], []
    for n in range(RESERVE_RUNS):
        calls = _calls(users, cards, RESERVE_CALLS, f"s{run}-{n}")
        batch = _batch(f"reserve-seq-{n}", per_customer_limit=limit)
        started = time.perf_counter()
        assert _reserve(batch, variant, calls) == 0
        sequential.append(RESERVE_CALLS / (time.perf_counter() - started))

        calls = _calls(users, cards, RESERVE_CALLS, f"c{run}-{n}")
        batch = _batch(f"reserve-16-{n}", per_customer_limit=limit)
        elapsed, refused = _threaded(
            lambda share, b=batch: _reserve(b, variant, share), calls, THREADS
        )
        assert refused == 0, f"{refused} refused"
        batch.refresh_from_db()
        assert batch.reserved_units == RESERVE_CALLS
        contended.append(RESERVE_CALLS / elapsed)
    close_old_connections()

    capped = _batch("reserve-cap", cap=CAP, per_customer_limit=1)
    calls = _calls(users, cards, CAP_ATTEMPTS, f"cap{run}")
    elapsed, refused = _threaded(lambda share: _reserve(capped, variant, share), calls, THREADS)
    capped.refresh_from_db()
    held = Reservation.objects.filter(batch=capped, status__in=COUNTED_STATUSES).aggregate(
        units=Sum("quantity")
    )["units"]
    assert held == CAP == capped.reserved_units, f"{held} held, counter {capped.reserved_units}"
    assert refused == CAP_ATTEMPTS - CAP, f"{refused} refused"

    seq, con = statistics.median(sequential), statistics.median(contended)
    note = (
        f"{RESERVE_CALLS:,} reservation_create calls (1 unit, no cap, the {USERS:,} fans in "
        f"turn) on one open batch, from {THREADS} threads each with its own connection; baseline: "
        f"{RESERVE_CALLS:,} calls one after another; median of {RESERVE_RUNS} runs each, "
        f"{os.cpu_count()}-CPU machine shared with Postgres"
    )
    cap_note = (
        f"{CAP_ATTEMPTS:,} reservation_create attempts of 1 unit by distinct fans from "
        f"{THREADS} threads against a cap of {CAP}: exactly {CAP} held and {CAP_ATTEMPTS - CAP} "
        "refused (checked); value: attempts per second; baseline: uncontended sequential "
        "reservations per second (preorders.reserve_per_s's baseline)"
    )
    return {
        "preorders.reserve_per_s": compared(con, seq, "per_s", note),
        "preorders.reserve_contended_cap": compared(CAP_ATTEMPTS / elapsed, seq, "per_s", cap_note),
    }


# --- figures ---------------------------------------------------------------------------------


def run() -> dict[str, Figure]:
    call_command("migrate", verbosity=0)
    _variant()
    users, cards = _fans()
    print("  clearing earlier runs...", flush=True)
    _clear([user.pk for user in users])
    try:
        figures = _settle_figures(users, cards)
        figures.update(_reserve_figures(users, cards))
    finally:
        # The home page lists open batches: leave none for the pages benchmark to find.
        PreorderBatch.objects.filter(slug__startswith=SLUG, status=BatchStatus.OPEN).update(
            status=BatchStatus.CANCELLED
        )
    return figures
