"""The cap under contention, on Postgres with real transactions: 16 threads, 1,000 attempts
(double submits included) against a cap of 300 units."""

import random
import threading
import uuid
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum

from payments.services import card_save
from preorders.models import COUNTED_STATUSES, PreorderBatch, Reservation
from preorders.services import reservation_create
from tests.factories import UserFactory
from tests.preorders import batch_open
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 16
ATTEMPTS = 1000
CAP = 300
LIMIT = 3


def test_a_thousand_attempts_from_sixteen_threads_hold_exactly_the_cap():
    batch = batch_open(cap=CAP, per_customer_limit=LIMIT, min_quantity=10)
    variant = batch.product.variants.first()
    users = [UserFactory() for _ in range(150)]
    cards = {user.pk: card_save(user=user, card=CARD_OK) for user in users}
    rng = random.Random(7)
    attempts = []
    for index in range(ATTEMPTS):
        user = rng.choice(users)
        key = uuid.uuid4().hex
        quantity = 1 if index % 3 == 0 else rng.choice([1, 2, 3])
        attempts.append((user, quantity, key))
        if index % 50 == 0:  # the same form submitted twice
            attempts.append((user, quantity, key))
    rng.shuffle(attempts)
    refused = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(share):
        start.wait()
        try:
            for user, quantity, key in share:
                try:
                    reservation_create(
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
                        refused[exc.messages[0].split(";")[0][:30]] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(attempts[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    batch = PreorderBatch.objects.get(pk=batch.pk)
    held = Reservation.objects.filter(batch=batch, status__in=COUNTED_STATUSES)
    assert held.aggregate(units=Sum("quantity"))["units"] == CAP
    assert batch.reserved_units == CAP
    per_user = held.values("user").annotate(units=Sum("quantity"))
    assert max(row["units"] for row in per_user) <= LIMIT
    # Every double submit produced at most one reservation.
    assert held.values("user", "request_key").distinct().count() == held.count()
    assert refused, "the cap and the limit must have refused some attempts"
