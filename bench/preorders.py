"""Pre-order throughput: taking reservations in a flash sale (service level and through the
HTTP stack), settling a confirmed batch of 100,000 with real Celery worker processes, and the
Stripe path's charges against localstripe. Each figure has its floor from the same run.

- intake: `reservation_create` from 16 threads into one capped batch (blocks written by
  payments.commitments.intake); floor: the same rows as single-row INSERTs in autocommit from
  16 threads (what pgbench would measure). Checked: the counter, the cap, the limit.
- http: the reserve POST on gunicorn (gthread) by 1,000 signed-in fans with real sessions and
  CSRF tokens, loaded by wrk; floor: a signed-in trivial view on the same server.
- settle: 1,000 fans with a saved local card, 100,000 held reservations (COPY), a ladder;
  `batch_close(force=True)` with Celery not eager, so the chunk tasks go through Redis to 2
  `celery worker --pool=solo` processes; timed until the batch is `confirmed`. Baseline: the
  same number of rows of a second batch moved to `charged` by one raw SQL UPDATE.
- stripe: `StripeProvider.charge_many` against localstripe, concurrent within the pacing,
  against the same charges one after another.

PREORDERS_ONLY=intake,http,settle,stripe runs some of them. The workers use the bench
settings (database fanhub_bench or BENCH_DATABASE, Redis databases 4-6; the broker's and the
cache's are flushed before and after). With PREORDERS_PROFILE=<directory> the workers run
under cProfile with every SQL statement timed (bench/profiled_worker.py), and the top of both
is printed.
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
CHUNK_SIZE = 2_500
RATE = 100_000  # SETTLEMENT_RATE_LOCAL for the workers: pacing is not what is measured
SETTLE_TIMEOUT = 3_600
CHUNK_DONE = re.compile(r"settlement_chunk\[[^\]]+\] succeeded in ([\d.]+)s")  # celery INFO
LADDER = [(1, "50.00"), (1_000, "45.00"), (50_000, "40.00")]
FINAL_PRICE = Decimal("40.00")

THREADS = 16

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
        "DELETE FROM orders_orderrefund WHERE order_id IN"
        " (SELECT id FROM orders_order WHERE user_id = ANY(%(users)s))",
        "DELETE FROM orders_orderpart WHERE order_id IN"
        " (SELECT id FROM orders_order WHERE user_id = ANY(%(users)s))",
        "DELETE FROM orders_orderpayment WHERE order_id IN"
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


# Every table `_clear` deletes from (autovacuum may be off on a benchmark server: a table left
# out keeps every run's dead rows, and its indexes and foreign-key checks slow down run by run).
TABLES = [
    "preorders_reservation",
    "preorders_preorderevent",
    "payments_payment",
    "payments_localcharge",
    "orders_order",
    "orders_orderpart",
    "orders_orderline",
    "orders_orderevent",
    "orders_orderpayment",
    "notifications_notification",
]


def _analyze() -> None:
    """The statistics autovacuum's analyze would have after the warm-up (it is off on this
    server). Cleared, the order tables read as empty, and the foreign-key checks' plans, cached
    per worker connection, then scan orders_order for every row written: 197,595 sequential
    scans reading 283 million rows in one run."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(TABLES)}")


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


def _receipts_sent(batch: PreorderBatch) -> None:
    """The warm-up's receipts (tasks queued after its chunks) are sent before the clock
    starts, so the measured settlement's chunks do not wait behind them in the queue."""
    due = Reservation.objects.filter(batch=batch, receipt_due=True)
    deadline = time.monotonic() + 120
    while due.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _workers_idle(timeout: float = 120) -> None:
    """Until the broker's queue is empty and no worker runs or holds a task: the warm-up's
    receipts fan out into notifications and emails, and those must not run on the
    measured settlement's clock (they did: about two seconds of its twenty)."""
    from config.settings.base import redis_url_for

    broker = redis.Redis.from_url(redis_url_for(settings.REDIS_URL, settings.REDIS_DB_OFFSET))
    inspect = app.control.inspect(timeout=0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = sum(broker.llen(name) for name in broker.scan_iter(match="celery*", _type="list"))
        busy = [
            task
            for answer in (inspect.active() or {}, inspect.reserved() or {})
            for tasks in answer.values()
            for task in tasks
        ]
        if not queued and not busy:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the workers were still busy after {timeout:.0f} s")


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
            _receipts_sent(warm)
            _workers_idle()
            _analyze()
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
        "wall time from batch_close(force=True) to the batch confirmed, one run (the "
        "warm-up's receipts sent before the clock starts). What one settlement does per "
        "reservation, set-based per chunk (one statement per step for the whole chunk): under "
        "an advisory lock, moved to charging (one UPDATE, committed); a provider charge "
        "(local: charge_many's one INSERT of the chunk's LocalCharges, committed); then in "
        "one transaction: the Payments, written once with their results (one INSERT), the "
        "reservation moved to charged with the order id drawn for it and its "
        "PreorderEvent (one statement), and its Order + OrderPart + OrderLine + OrderPayment "
        "+ OrderEvent (one statement); its receipt is queued for after the commit. Checked "
        "afterwards: each reservation charged once, with its succeeded Payment and its "
        "order. Baseline: one raw SQL UPDATE of the same number of reservations of a second "
        "batch to charged at the ladder price"
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


# --- intake ----------------------------------------------------------------------------------

INTAKE_CALLS = 10_000
INTAKE_WARMUP = 1_000
INTAKE_RUNS = 3
INTAKE_LIMIT = INTAKE_CALLS // USERS + 1
# The 16 clients as processes x threads: the first is the figure (the HTTP benchmark's
# gunicorn layout), the other is noted. More processes of fewer threads make smaller blocks,
# each paying the batch lock's round trips: 8 x 2 and 16 x 1 measured slower still.
INTAKE_LAYOUTS = [(2, 8), (4, 4)]


def _intake_calls(users, cards, count: int, tag: str, start: int = 0) -> list[tuple]:
    """`count` one-unit reservations by the fans in turn (so each fan's limit is reached
    only at the end), each with its own form key."""
    return [
        (users[index % len(users)], cards[users[index % len(users)].pk], f"{tag}-{index}")
        for index in range(start, start + count)
    ]


def _raw_insert_seconds(batch: PreorderBatch, calls: list, variant: Variant) -> float:
    """The floor: the same rows, one INSERT and one commit each (autocommit), from 16
    threads each with its own connection, as pgbench would send them."""
    import psycopg

    params = connection.get_connection_params()
    now = timezone.now()
    ship = [ADDRESS[key] for key in ADDRESS]
    sql = (
        "INSERT INTO preorders_reservation (batch_id, user_id, variant_id, quantity, status,"
        " saved_card_id, request_key, deposit_paid, deposit_refunded, failure_message,"
        " ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,"
        " ship_phone, created_at, updated_at)"
        " VALUES (%s, %s, %s, 1, 'held', %s, %s, 0, 0, '', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )

    def insert(share: list) -> int:
        with psycopg.connect(**params, autocommit=True) as conn:
            for user, card, key in share:
                conn.execute(sql, [batch.pk, user.pk, variant.pk, card.pk, key, *ship, now, now])
        return 0

    elapsed, _ = _threaded(insert, calls, THREADS)
    return elapsed


def _in_processes(batch: PreorderBatch, variant: Variant, calls: list, layout) -> tuple:
    """Seconds for `processes` x `threads` clients (bench.intake_clients: the threads of a
    process share its combiner) to make the calls between them, from the moment all are
    connected; and the calls refused."""
    from bench import pages

    processes, threads = layout
    with tempfile.TemporaryDirectory(prefix="fanhub-intake-") as tmp:
        clients = []
        for index in range(processes):
            path = Path(tmp) / f"calls-{index}.json"
            share = [[user.pk, card.pk, key] for user, card, key in calls[index::processes]]
            spec = {"batch": batch.pk, "variant": variant.pk, "address": ADDRESS, "calls": share}
            path.write_text(json.dumps(spec))
            clients.append(
                subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                    [sys.executable, "-m", "bench.intake_clients", str(path), str(threads)],
                    cwd=BASE_DIR,
                    env=pages._server_env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for client in clients:
            assert client.stdout.readline().strip() == "READY", "an intake client failed"
        started = time.monotonic()
        for client in clients:
            client.stdin.write("GO\n")
            client.stdin.flush()
        ends, refused = [], 0
        for client in clients:
            done = client.stdout.readline().split()
            assert client.wait(timeout=600) == 0 and done[0] == "DONE", done
            refused += int(done[1])
            ends.append(float(done[2]))
    return max(ends) - started, refused


def _check_intake(batch: PreorderBatch, count: int) -> None:
    batch.refresh_from_db()
    held = Reservation.objects.filter(batch=batch, status__in=COUNTED_STATUSES)
    units = held.aggregate(units=Sum("quantity"))["units"]
    per_user = held.values("user").annotate(units=Sum("quantity")).order_by("-units").first()
    assert units == batch.reserved_units == count <= batch.cap, (units, batch.reserved_units)
    assert per_user["units"] <= batch.per_customer_limit, per_user


def _intake_figures(users, cards) -> dict[str, Figure]:
    variant = Variant.objects.get(sku__startswith="BENCH-PREORDER-")
    run = time.time_ns()
    warm = _batch("intake-warmup", cap=INTAKE_WARMUP, per_customer_limit=INTAKE_LIMIT)
    _reserve(warm, variant, _intake_calls(users, cards, INTAKE_WARMUP, f"iw{run}"))
    rates, floors = [], []
    spread: dict[tuple[int, int], list[float]] = {layout: [] for layout in INTAKE_LAYOUTS}
    for n in range(INTAKE_RUNS):
        # A capped batch whose cap the last call reaches: every call admitted, checked after.
        batch = _batch(f"intake-{n}", cap=INTAKE_CALLS, per_customer_limit=INTAKE_LIMIT)
        calls = _intake_calls(users, cards, INTAKE_CALLS, f"i{run}-{n}")
        elapsed, refused = _threaded(
            lambda share, b=batch: _reserve(b, variant, share), calls, THREADS
        )
        assert refused == 0, f"{refused} refused"
        _check_intake(batch, INTAKE_CALLS)
        rates.append(INTAKE_CALLS / elapsed)
        close_old_connections()
        for layout in INTAKE_LAYOUTS:  # the same 16 clients as processes of a few threads
            batch = _batch(f"intake-p{n}", cap=INTAKE_CALLS, per_customer_limit=INTAKE_LIMIT)
            calls = _intake_calls(users, cards, INTAKE_CALLS, f"p{run}-{n}-{layout[0]}")
            elapsed, refused = _in_processes(batch, variant, calls, layout)
            assert refused == 0, f"{refused} refused"
            _check_intake(batch, INTAKE_CALLS)
            spread[layout].append(INTAKE_CALLS / elapsed)
            print(f"  {layout[0]} processes x {layout[1]} threads: {spread[layout][-1]:.0f}/s")
        raw = _batch(f"intake-raw-{n}")
        floors.append(
            INTAKE_CALLS
            / _raw_insert_seconds(
                raw, _intake_calls(users, cards, INTAKE_CALLS, f"r{run}-{n}"), variant
            )
        )
    close_old_connections()
    # Past the cap: a full batch refuses at the same speed, and holds exactly its cap.
    full = _batch("intake-full", cap=INTAKE_CALLS // 2, per_customer_limit=INTAKE_LIMIT)
    calls = _intake_calls(users, cards, INTAKE_CALLS, f"f{run}")
    elapsed, refused = _threaded(lambda share: _reserve(full, variant, share), calls, THREADS)
    _check_intake(full, INTAKE_CALLS // 2)
    assert refused == INTAKE_CALLS - INTAKE_CALLS // 2, refused
    rate, floor = statistics.median(rates), statistics.median(floors)
    spread_rates = {layout: statistics.median(r) for layout, r in spread.items()}
    note = (
        f"{INTAKE_CALLS:,} reservation_create calls (1 unit, no deposit, the {USERS:,} fans in "
        f"turn, limit {INTAKE_LIMIT} each) from {THREADS} threads of one process, each with its "
        f"own connection, into one batch capped at {INTAKE_CALLS:,} (checked after: every unit "
        "counted once, nobody over the limit); each call returns once its row is committed "
        "(payments.commitments.intake: blocks written in one transaction under the batch "
        "lock); median of "
        f"{INTAKE_RUNS} runs after a {INTAKE_WARMUP:,}-call warm-up. Baseline: the same rows "
        f"as single-row INSERTs in autocommit (one commit each) from {THREADS} threads, as "
        f"pgbench would; {os.cpu_count()}-CPU machine shared with Postgres"
    )
    full_note = (
        f"{INTAKE_CALLS:,} calls against a cap of {INTAKE_CALLS // 2:,}: exactly the cap held, "
        f"{INTAKE_CALLS - INTAKE_CALLS // 2:,} refused (checked); attempts per second; "
        "baseline: the raw INSERT floor"
    )
    processes, threads = INTAKE_LAYOUTS[0]
    layouts = ", ".join(f"{p} x {t}: {r:,.0f}/s" for (p, t), r in spread_rates.items())
    spread_note = (
        f"The same {INTAKE_CALLS:,} calls and checks as preorders.intake_per_s from 16 clients "
        f"as {processes} processes x {threads} threads (bench.intake_clients; the threads of a "
        "process share its combiner, as a web server's threads do), so both cores run Python; "
        f"timed from the moment all are connected; median of {INTAKE_RUNS} runs (layouts "
        f"tried, processes x threads: {layouts}). Baseline: the raw INSERT floor"
    )
    return {
        "preorders.intake_processes_per_s": compared(
            spread_rates[INTAKE_LAYOUTS[0]], floor, "per_s", spread_note
        ),
        "preorders.intake_per_s": compared(rate, floor, "per_s", note),
        "preorders.intake_full_batch_per_s": compared(
            INTAKE_CALLS / elapsed, floor, "per_s", full_note
        ),
    }


# --- the reserve POST over HTTP -----------------------------------------------------------------

HTTP_WORKERS, HTTP_THREADS, HTTP_CONNECTIONS = 2, 8, 16
HTTP_SECONDS, HTTP_WARMUP_SECONDS, HTTP_RUNS = 5, 2, 3

WRK_FANS_SCRIPT = """
fans = {%(fans)s}
counter = 0
tid = 0
threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local fan = fans[(counter * 16 + tid) %% #fans + 1]
  local headers = {["Cookie"] = fan[1]}
  if "%(method)s" == "GET" then
    return wrk.format("GET", "%(path)s", headers)
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  local body = "%(body)s&saved_card=" .. fan[3] .. "&csrfmiddlewaretoken=" .. fan[2]
    .. "&request_key=%(run)s-" .. tid .. "-" .. counter
  return wrk.format("POST", "%(path)s", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH p95_us=%%.1f bad=%%d timeout=%%d requests=%%d\\n",
    latency:percentile(95), e.status, e.timeout, summary.requests))
end
"""


def _fan_sessions(users, cards) -> list[tuple[str, str, int]]:
    """A signed-in session and a CSRF cookie + form token for each fan, made the way the
    site makes them (login(), the CSRF middleware's own functions)."""
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
    from django.test import Client

    fans = []
    for user in users:
        client = Client()  # one each: a second login on a client ends the first's session
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        secret = _get_new_csrf_string()
        cookie = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={secret}"
        fans.append((cookie, _mask_cipher_secret(secret), cards[user.pk].pk))
    return fans


def _wrk_fans(
    wrk: str, port: int, script: Path, seconds: int, *, warmup: bool = False
) -> tuple[float, int]:
    from bench import pages

    # A fresh run id in the form keys of each wrk run (its counters start again at 0).
    text = script.read_text()
    script.write_text(
        re.sub(r"request_key=[\w-]+?-\" \.\.", f'request_key={time.time_ns()}-" ..', text)
    )
    command = [wrk, "-t2", f"-c{HTTP_CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(script)]
    out = subprocess.run(  # noqa: S603 - wrk from PATH, fixed arguments
        [*command, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"BENCH p95_us=([\d.]+) bad=(\d+) timeout=(\d+) requests=(\d+)", out)
    assert rps and done and pages, f"unexpected wrk output:\n{out}"
    if not warmup and (int(done.group(2)) or int(done.group(3))):
        raise RuntimeError(f"errors under load (4xx/5xx or timeouts):\n{out}")
    return float(rps.group(1)), int(done.group(4))


def _http_figures(users, cards) -> dict[str, Figure]:
    from bench import pages

    wrk = pages._ensure_wrk()
    if wrk is None:
        print("  no wrk: the HTTP intake figure is skipped", flush=True)
        return {}
    variant = Variant.objects.get(sku__startswith="BENCH-PREORDER-")
    batch = _batch("http", cap=1_000_000, per_customer_limit=1_000)
    fans = _fan_sessions(users, cards)
    lua_fans = ", ".join(f'{{"{c}", "{t}", {card}}}' for c, t, card in fans)
    body = "&".join(
        [f"variant={variant.pk}", "quantity=1"]
        + [f"address-{key}={value.replace(' ', '+')}" for key, value in ADDRESS.items()]
    )
    run = time.time_ns()
    port = pages._free_port()
    results: dict[str, list[float]] = {"reserve": [], "trivial": []}
    with tempfile.TemporaryDirectory(prefix="fanhub-intake-http-") as tmp:
        scripts = {}
        for name, method, path in (
            ("reserve", "POST", f"/preorders/{batch.slug}/reserve/"),
            ("trivial", "GET", "/__trivial_signed_in__"),
        ):
            scripts[name] = Path(tmp) / f"{name}.lua"
            scripts[name].write_text(
                WRK_FANS_SCRIPT
                % {"fans": lua_fans, "method": method, "path": path, "body": body, "run": run}
            )
        log = Path(tmp) / "gunicorn.log"
        server = _start_gthread(port, log)
        try:
            for name in ("trivial", "reserve"):
                _wrk_fans(wrk, port, scripts[name], HTTP_WARMUP_SECONDS, warmup=True)
            made_before = Reservation.objects.filter(batch=batch).count()
            posted = 0
            for _ in range(HTTP_RUNS):  # interleaved: both see the same machine
                for name in ("trivial", "reserve"):
                    rps, requests = _wrk_fans(wrk, port, scripts[name], HTTP_SECONDS)
                    results[name].append(rps)
                    posted += requests if name == "reserve" else 0
        finally:
            pages._stop_server(server)
    made = Reservation.objects.filter(batch=batch).count() - made_before
    # Every POST wrk counted answered 302 "reserved" (no 4xx/5xx), one reservation each;
    # those in flight when wrk stopped may have been made without being counted.
    assert posted <= made <= posted + 2 * HTTP_CONNECTIONS * HTTP_RUNS, (posted, made)
    batch.refresh_from_db()
    assert batch.reserved_units == Reservation.objects.filter(batch=batch).count()
    reserve, trivial = statistics.median(results["reserve"]), statistics.median(results["trivial"])
    note = (
        f"POST /preorders/<slug>/reserve/ (1 unit, a saved card, a new address) by {len(fans):,} "
        "signed-in fans in turn, each with a real session (login()) and CSRF cookie + token, "
        f"on gunicorn ({HTTP_WORKERS} gthread workers x {HTTP_THREADS} threads, DEBUG off) "
        f"loaded by wrk ({HTTP_CONNECTIONS} connections, {HTTP_SECONDS} s, median of "
        f"{HTTP_RUNS} runs after a warm-up; every answer a 302 to the reservation, checked "
        "against the rows made); baseline: /__trivial_signed_in__ (a login_required view "
        "returning 'ok': session and user read) on the same server, runs interleaved"
    )
    return {"preorders.intake_http_rps": compared(reserve, trivial, "per_s", note)}


def _start_gthread(port: int, log: Path) -> subprocess.Popen[bytes]:
    from bench import pages

    command = [sys.executable, "-m", "gunicorn", "bench.trivial_wsgi:application"]
    command += ["-k", "gthread", "-w", str(HTTP_WORKERS), "--threads", str(HTTP_THREADS)]
    command += ["-b", f"127.0.0.1:{port}", "--chdir", str(BASE_DIR)]
    with open(log, "wb") as out:
        server = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            command, env=pages._server_env(), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            if pages._get(port, "/__trivial__", None)[0] == 200:
                return server
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"gunicorn did not answer in 60 s:\n{log.read_text()[-3000:]}")


# --- Stripe: charge_many against localstripe ---------------------------------------------------

STRIPE_CHARGES = 100


def _stripe_figures(users, cards) -> dict[str, Figure]:
    from payments.pacing import ProviderPacer
    from payments.providers.base import ChargeOutcome, ChargeRequest
    from payments.providers.registry import provider_get
    from tests.stripe_server import SECRET_KEY, LocalStripe

    server = LocalStripe.start()
    run = time.time_ns()
    try:
        with override_settings(
            PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_API_BASE=server.base
        ):
            provider_get.cache_clear()
            provider = provider_get()
            pacer = ProviderPacer("stripe", rate_per_second=100_000)  # not what is measured

            def charges(tag: str, threads: int) -> float:
                # localstripe rewrites all it holds on every change: each measure starts
                # from an empty server, so neither pays for the other's intents.
                server.flush()
                customer = provider.customer_ensure(
                    user_id=1, email="bench@fans.example", existing_ref=None
                )
                card = provider.card_save(
                    customer_ref=customer,
                    card={"payment_method": server.payment_method("4242424242424242")},
                )
                requests = [
                    ChargeRequest(
                        amount_minor=4000,
                        currency="usd",
                        customer_ref=customer,
                        card_ref=card.provider_ref,
                        idempotency_key=f"bench-{run}-{tag}-{index}",
                        metadata={"reference": f"bench:{index}"},
                    )
                    for index in range(STRIPE_CHARGES)
                ]
                with override_settings(STRIPE_CHARGE_THREADS=threads):
                    started = time.perf_counter()
                    results = provider.charge_many(requests=requests, pace=pacer.take)
                    elapsed = time.perf_counter() - started
                assert all(r.outcome == ChargeOutcome.SUCCEEDED for r in results), results[:3]
                return STRIPE_CHARGES / elapsed

            charges("warm", settings.STRIPE_CHARGE_THREADS)
            runs = {"seq": [], "conc": []}
            for n in range(3):  # interleaved
                runs["seq"].append(charges(f"seq{n}", 1))
                runs["conc"].append(charges(f"conc{n}", settings.STRIPE_CHARGE_THREADS))
            sequential = statistics.median(runs["seq"])
            concurrent = statistics.median(runs["conc"])
    finally:
        server.stop()
        provider_get.cache_clear()
    note = (
        f"{STRIPE_CHARGES} off-session PaymentIntents (confirm=true) through "
        f"StripeProvider.charge_many against localstripe on this machine, "
        f"{settings.STRIPE_CHARGE_THREADS} threads each taking a pacing token before its call "
        "(pacing set far above the rate, so the round trips are what is measured), each run "
        "on an emptied localstripe, median of 3 interleaved runs; baseline: the same charges "
        "one after another (STRIPE_CHARGE_THREADS=1). localstripe is one Python process that "
        "rewrites its state on every change, so it gains little from concurrency; against "
        "real Stripe "
        "the round trip is ~10x longer and the rate limit (100/s live) is what binds"
    )
    return {"preorders.stripe_charges_per_s": compared(concurrent, sequential, "per_s", note)}


# --- figures ---------------------------------------------------------------------------------


def run() -> dict[str, Figure]:
    call_command("migrate", verbosity=0)
    _variant()
    users, cards = _fans()
    print("  clearing earlier runs...", flush=True)
    _clear([user.pk for user in users])
    try:
        figures = {}
        only = os.environ.get("PREORDERS_ONLY", "").split(",")
        parts = {
            "intake": _intake_figures,
            "http": _http_figures,
            "settle": _settle_figures,
            "stripe": _stripe_figures,
        }
        for name, part in parts.items():
            if only == [""] or name in only:
                print(f"  -- {name}", flush=True)
                figures.update(part(users, cards))
    finally:
        # The home page lists open batches: leave none for the pages benchmark to find.
        PreorderBatch.objects.filter(slug__startswith=SLUG, status=BatchStatus.OPEN).update(
            status=BatchStatus.CANCELLED
        )
    return figures
