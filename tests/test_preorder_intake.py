"""Intake in blocks (payments.commitments.intake, preorders.intake), on Postgres with real
transactions: the cap, the per-option caps, the per-customer limit, the waitlist's offers
and double submits under 16 threads and over HTTP against a live server; and crashes: the
process taking reservations killed with SIGKILL at a random instant, and Redis killed under
it, after which every reservation a fan was told about is there exactly once and nobody holds
more than allowed."""

import json
import random
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
import requests
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from payments.services import card_save
from preorders.models import (
    COUNTED_STATUSES,
    PreorderBatch,
    PreorderEvent,
    Reservation,
    VariantCap,
    WaitlistEntry,
    WaitlistStatus,
)
from preorders.services import reservation_create
from tests.factories import UserFactory
from tests.preorders import batch_open
from tests.services import BASE_DIR, redis_server_start, redis_server_stop
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16
CAP, GOLD_CAP, LIMIT = 120, 25, 3


def _attempts(users, count: int, seed: int, variants) -> list[tuple]:
    """(user, quantity, key, variant), one in ten sent twice (a double submit)."""
    rng = random.Random(seed)
    attempts = []
    for _ in range(count):
        attempt = (rng.choice(users), rng.choice([1, 1, 2, 3]), uuid.uuid4().hex)
        attempt += (rng.choice(variants),)
        attempts.append(attempt)
        if rng.random() < 0.1:
            attempts.append(attempt)
    rng.shuffle(attempts)
    return attempts


def _check_batch(batch, *, gold=None) -> None:
    """Counter = what is held <= cap; options within their caps; customers within the
    limit; one reservation per form key; one 'reserved' event per reservation."""
    batch = PreorderBatch.objects.get(pk=batch.pk)
    held = Reservation.objects.filter(batch=batch, status__in=COUNTED_STATUSES)
    units = held.aggregate(units=Sum("quantity"))["units"] or 0
    assert units == batch.reserved_units
    assert batch.cap is None or units <= batch.cap - batch.offered_units
    if gold is not None:
        assert (held.filter(variant=gold).aggregate(u=Sum("quantity"))["u"] or 0) <= GOLD_CAP
    per_user = held.values("user").annotate(units=Sum("quantity"))
    assert all(row["units"] <= batch.per_customer_limit for row in per_user)
    keys = Counter(Reservation.objects.filter(batch=batch).values_list("user", "request_key"))
    assert not keys or max(keys.values()) == 1
    events = Counter(
        PreorderEvent.objects.filter(batch=batch).values_list("reservation", flat=True)
    )
    made = Reservation.objects.filter(batch=batch)
    assert set(events) == set(made.values_list("pk", flat=True))
    assert max(events.values(), default=1) == 1


def test_sixteen_threads_keep_the_cap_the_option_caps_the_limit_and_double_submits():
    batch = batch_open(cap=CAP, per_customer_limit=LIMIT, min_quantity=10)
    plain, gold = list(batch.product.variants.order_by("pk"))
    VariantCap.objects.create(batch=batch, variant=gold, cap=GOLD_CAP)
    users = [UserFactory() for _ in range(60)]
    cards = {user.pk: card_save(user=user, card=CARD_OK) for user in users}
    attempts = _attempts(users, 400, seed=3, variants=[plain, gold])
    answers: dict[str, list[int]] = {}
    refusals = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(share):
        start.wait()
        try:
            for user, quantity, key, variant in share:
                try:
                    reservation = reservation_create(
                        batch=batch,
                        user=user,
                        variant=variant,
                        quantity=quantity,
                        saved_card=cards[user.pk],
                        address=ADDRESS,
                        request_key=key,
                    )
                except ValidationError as exc:
                    with lock:
                        refusals[exc.messages[0].split(" ")[0]] += 1
                else:
                    with lock:
                        answers.setdefault(key, []).append(reservation.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(attempts[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    _check_batch(batch, gold=gold)
    batch.refresh_from_db()
    assert batch.reserved_units == CAP  # 400 attempts of ~1.75 units: the cap is reached
    gold_units = Reservation.objects.filter(batch=batch, variant=gold).aggregate(u=Sum("quantity"))
    assert gold_units["u"] == GOLD_CAP  # ~200 attempts on gold: its cap is reached too
    # Each answered form got one reservation, and its twin the same one.
    assert all(len(set(pks)) == 1 for pks in answers.values())
    made = dict(Reservation.objects.filter(batch=batch).values_list("request_key", "pk"))
    assert {key: pks[0] for key, pks in answers.items()} == made
    assert refusals["This"] + refusals["Only"] > 0  # full (or only a few left)
    assert refusals["At"] > 0  # "At most 3 units per customer"


def test_an_offered_fan_gets_the_offered_units_while_the_crowd_is_refused():
    batch = batch_open(cap=10, per_customer_limit=5, min_quantity=2)
    variant = batch.product.variants.first()
    crowd = [UserFactory() for _ in range(THREADS)]
    cards = {user.pk: card_save(user=user, card=CARD_OK) for user in crowd}
    fan = UserFactory()
    fan_card = card_save(user=fan, card=CARD_OK)
    # The batch is full but for 3 units offered to the fan from the waitlist.
    WaitlistEntry.objects.create(
        batch=batch,
        user=fan,
        variant=variant,
        quantity=3,
        status=WaitlistStatus.OFFERED,
        offer_expires_at=timezone.now() + timedelta(hours=1),
    )
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=7, offered_units=3)
    results = {}
    start = threading.Barrier(THREADS + 1)

    def work(user, card, quantity):
        start.wait()
        try:
            results[user.pk] = reservation_create(
                batch=batch,
                user=user,
                variant=variant,
                quantity=quantity,
                saved_card=card,
                address=ADDRESS,
                request_key=uuid.uuid4().hex,
            )
        except ValidationError as exc:
            results[user.pk] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u, cards[u.pk], 1)) for u in crowd]
    threads.append(threading.Thread(target=work, args=(fan, fan_card, 3)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert isinstance(results[fan.pk], Reservation) and results[fan.pk].quantity == 3
    assert all(isinstance(results[u.pk], ValidationError) for u in crowd)
    batch.refresh_from_db()
    assert (batch.reserved_units, batch.offered_units) == (10, 0)
    assert WaitlistEntry.objects.get(user=fan).status == WaitlistStatus.CLAIMED


def test_an_offer_partly_taken_in_a_block_goes_on_to_the_next_in_line():
    """The block's function cannot hand the rest of an offer on before its COMMIT (sent in the
    same round trip): the block is written again without it, and the rest is offered."""
    batch = batch_open(cap=10, per_customer_limit=5, min_quantity=2)
    variant = batch.product.variants.first()
    fan, next_fan = UserFactory(), UserFactory()
    card = card_save(user=fan, card=CARD_OK)
    WaitlistEntry.objects.create(
        batch=batch,
        user=fan,
        variant=variant,
        quantity=3,
        status=WaitlistStatus.OFFERED,
        offer_expires_at=timezone.now() + timedelta(hours=1),
    )
    WaitlistEntry.objects.create(batch=batch, user=next_fan, variant=variant, quantity=2)
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=7, offered_units=3)
    mail.outbox.clear()

    reservation = reservation_create(
        batch=batch,
        user=fan,
        variant=variant,
        quantity=1,
        saved_card=card,
        address=ADDRESS,
        request_key=uuid.uuid4().hex,
    )

    assert reservation.quantity == 1
    batch.refresh_from_db()
    assert (batch.reserved_units, batch.offered_units) == (8, 2)
    statuses = dict(WaitlistEntry.objects.filter(batch=batch).values_list("user", "status"))
    assert statuses == {fan.pk: WaitlistStatus.CLAIMED, next_fan.pk: WaitlistStatus.OFFERED}
    assert [next_fan.email] in [message.to for message in mail.outbox]


def test_a_block_the_database_refuses_is_written_again_one_request_at_a_time():
    """A card deleted under a request (its foreign key fails at the block's COMMIT) fails that
    request alone: the block is written again one request per transaction."""
    from payments.commitments.intake import _combiner
    from preorders.intake import WRITER

    batch = batch_open(cap=10)
    variant = batch.product.variants.first()
    fans = [UserFactory() for _ in range(3)]
    cards = [card_save(user=fan, card=CARD_OK) for fan in fans]
    results: dict[int, object] = {}

    def reserve(index):
        try:
            results[index] = reservation_create(
                batch=batch,
                user=fans[index],
                variant=variant,
                quantity=1,
                saved_card=cards[index],
                address=ADDRESS,
                request_key=uuid.uuid4().hex,
            )
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[index] = exc
        finally:
            connection.close()

    def until(condition):
        for _ in range(500):
            if condition():
                return
            threading.Event().wait(0.01)
        raise AssertionError("timed out")

    combiner = _combiner(WRITER.name)
    with psycopg.connect(**connection.get_connection_params()) as locker:
        # The batch row held: the first request's block waits for it in the database, and
        # the two others queue behind it for the next block, which writes them together.
        locker.execute("SELECT 1 FROM preorders_preorderbatch WHERE id = %s FOR UPDATE", [batch.pk])
        first = threading.Thread(target=reserve, args=(0,))
        first.start()
        until(lambda: combiner.leading and not combiner.waiting)
        with connection.cursor() as cursor:  # its card gone: the block's COMMIT fails
            cursor.execute("DELETE FROM payments_savedcard WHERE id = %s", [cards[1].pk])
        others = [threading.Thread(target=reserve, args=(i,)) for i in (1, 2)]
        for thread in others:
            thread.start()
        until(lambda: len(combiner.waiting) == 2)
        locker.rollback()
    for thread in [first, *others]:
        thread.join()

    assert isinstance(results[0], Reservation) and isinstance(results[2], Reservation)
    assert isinstance(results[1], IntegrityError)
    assert set(Reservation.objects.filter(batch=batch).values_list("user", flat=True)) == {
        fans[0].pk,
        fans[2].pk,
    }
    _check_batch(batch)


# --- over HTTP ---------------------------------------------------------------------------------


def _signed_in(live_server, user, batch) -> tuple[dict, str]:
    """A signed-in browser's cookies and the batch page's CSRF token."""
    client = Client()
    client.force_login(user)
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
    page = requests.get(f"{live_server.url}{batch.get_absolute_url()}", cookies=cookies, timeout=30)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    cookies.update(page.cookies.get_dict())
    return cookies, token


def test_parallel_reserve_posts_keep_the_cap_the_limit_and_give_a_twin_the_first(live_server):
    batch = batch_open(cap=30, per_customer_limit=2, min_quantity=5)
    variant = batch.product.variants.first()
    users = [UserFactory() for _ in range(20)]
    cards = {user.pk: card_save(user=user, card=CARD_OK) for user in users}
    sessions = {user.pk: _signed_in(live_server, user, batch) for user in users}
    url = f"{live_server.url}{reverse('preorders:reserve', args=[batch.slug])}"
    posts = []
    for user in users:  # 3 forms of 1 unit each (the limit is 2), the first sent twice
        keys = [uuid.uuid4().hex for _ in range(3)]
        posts += [(user, keys[0]), (user, keys[0]), (user, keys[1]), (user, keys[2])]
    random.Random(5).shuffle(posts)
    responses: list = [None] * len(posts)
    start = threading.Barrier(THREADS)

    def work(indexes):
        start.wait()
        for index in indexes:
            user, key = posts[index]
            cookies, token = sessions[user.pk]
            data = {f"address-{name}": value for name, value in ADDRESS.items()}
            data.update(
                variant=variant.pk,
                quantity=1,
                request_key=key,
                saved_card=cards[user.pk].pk,
                csrfmiddlewaretoken=token,
            )
            responses[index] = requests.post(
                url,
                data=data,
                cookies=cookies,
                headers={"Referer": url},
                allow_redirects=False,
                timeout=60,
            )

    indexes = list(range(len(posts)))
    threads = [threading.Thread(target=work, args=(indexes[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {302, 400}, statuses  # reserved (or its twin), or refused: no 500
    _check_batch(batch)
    batch.refresh_from_db()
    assert batch.reserved_units == 30  # 60 units wanted within the limit: the cap is reached
    reservations = dict(Reservation.objects.filter(batch=batch).values_list("request_key", "pk"))
    for (_, key), response in zip(posts, responses, strict=True):
        if response.status_code == 302:  # every "reserved" leads to the one reservation
            assert response.headers["Location"].endswith(f"/reservations/{reservations[key]}/")
        else:
            assert key not in reservations and "left" in response.text or "full" in response.text


# --- crashes -----------------------------------------------------------------------------------


def _crash_setup(tmp_path, count: int):
    batch = batch_open(cap=200, per_customer_limit=4, min_quantity=10)
    plain, gold = list(batch.product.variants.order_by("pk"))
    VariantCap.objects.create(batch=batch, variant=gold, cap=GOLD_CAP)
    users = [UserFactory() for _ in range(80)]
    cards = {user.pk: card_save(user=user, card=CARD_OK) for user in users}
    attempts = _attempts(users, count, seed=11, variants=[plain, gold])
    path = tmp_path / "requests.json"
    path.write_text(
        json.dumps([[u.pk, cards[u.pk].pk, v.pk, q, key, batch.pk] for u, q, key, v in attempts])
    )
    return batch, gold, path


def _client(path, log, env_overrides=None) -> subprocess.Popen:
    """The intake process; its answers on a pipe, read line by line (its errors to `log`)."""
    env = {
        **__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "FANHUB_TEST_DATABASE_NAME": connection.settings_dict["NAME"],
        **(env_overrides or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.intake_client", str(path), str(THREADS)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )


def _answers(lines: list[str]) -> dict[str, set[int]]:
    acked: dict[str, set[int]] = {}
    for line in lines:
        if line.startswith("ACK "):
            _, key, pk = line.split()
            acked.setdefault(key, set()).add(int(pk))
    return acked


def _check_acked(batch, gold, acked: dict[str, set[int]]) -> None:
    """Every acknowledged reservation is there, once, with the id the fan was given."""
    _check_batch(batch, gold=gold)
    stored = dict(Reservation.objects.filter(batch=batch).values_list("request_key", "pk"))
    for key, pks in acked.items():
        assert len(pks) == 1 and stored.get(key) == next(iter(pks)), key


def test_the_intake_process_killed_at_a_random_instant_loses_no_acknowledged_reservation(
    tmp_path,
):
    # Enough attempts that the process is still at work when the test has read its answers
    # (the refusals after the cap keep it busy too).
    batch, gold, path = _crash_setup(tmp_path, 4_000)
    rng = random.Random()
    kill_after = rng.randint(5, 150)  # acknowledgements read before the kill
    log = (tmp_path / "client.log").open("w")
    process = _client(path, log)
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if sum(item.startswith("ACK ") for item in lines) >= kill_after:
            process.kill()  # SIGKILL, wherever its threads are: mid-block, mid-commit
            break
    lines += [line.strip() for line in process.stdout.read().splitlines()]
    process.wait()
    assert "DONE" not in lines, "the process finished before it was killed"
    acked = _answers(lines)
    assert sum(line.startswith("ACK ") for line in lines) >= kill_after
    _check_acked(batch, gold, acked)

    # The fans send their forms again (a retry after the error page): each form has at most
    # one reservation, those acknowledged get theirs back, and the rules still hold.
    again = _client(path, log)
    out = again.stdout.read()
    assert again.wait(timeout=300) == 0, (tmp_path / "client.log").read_text()[-2000:]
    assert "DONE" in out and "ERROR" not in out, out[-2000:]
    retried = _answers(out.splitlines())
    for key, pks in acked.items():
        assert retried.get(key, pks) == pks
    _check_acked(batch, gold, {key: acked.get(key, pks) for key, pks in retried.items()})


def test_redis_killed_during_intake_loses_nothing_and_the_receipts_follow(tmp_path):
    batch, gold, path = _crash_setup(tmp_path, 500)
    server, url = redis_server_start(tmp_path)
    # Its own Redis for cache, sessions and broker (tasks really published, not eager).
    log = (tmp_path / "client.log").open("w")
    process = _client(path, log, {"REDIS_URL": url, "INTAKE_PUBLISH_TASKS": "1"})
    lines = []
    kill_after = random.Random().randint(5, 100)
    try:
        for line in process.stdout:
            lines.append(line.strip())
            if sum(item.startswith("ACK ") for item in lines) >= kill_after:
                server.kill()  # SIGKILL: the receipts' tasks cannot be published any more
                break
        # The rest of what it answered (from the pipe's buffer too, where the loop stopped).
        lines += process.stdout.read().splitlines()
        returncode = process.wait(timeout=300)
    finally:
        if server.poll() is None:
            redis_server_stop(server)
    assert returncode == 0, (tmp_path / "client.log").read_text()[-2000:]
    assert "DONE" in lines and not [line for line in lines if line.startswith("ERROR")]
    acked = _answers(lines)
    _check_acked(batch, gold, acked)
    # Every request was answered, and those made are exactly those acknowledged.
    made = Reservation.objects.filter(batch=batch).values_list("request_key", flat=True)
    assert set(acked) == set(made)
    # Receipts whose task was lost with Redis are still due; the sweep sends them, once.
    from django.core import mail

    from preorders.intake import reservations_receipts_sweep

    due = Reservation.objects.filter(batch=batch, receipt_due=True).count()
    assert due > 0
    mail.outbox.clear()
    assert reservations_receipts_sweep(older_than=timedelta(0)) == due
    assert reservations_receipts_sweep(older_than=timedelta(0)) == 0
    assert len(mail.outbox) == due
