"""The batch page from the whole-page cache (preorders.views.batch_detail): one rendering for
visitors, one for signed-in fans (per waitlist class), each fan's reservations and waitlist
place filled in; the batch's token retired by every change once committed, so nothing is
stale; nobody sees another fan's reservations, cards or addresses."""

import re
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.services import address_save
from payments.services import card_save
from preorders.batch_version import BATCH_VERSION, batch_changed
from preorders.models import BatchStatus, PreorderBatch, PriceTier, Reservation
from preorders.services import batch_close, reservation_cancel
from tests.factories import UserFactory
from tests.preorders import batch_open, reserve
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db


def _get(client, url, **extra) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200, url
    return response.content.decode(), len(queries)


def _reserved(html: str) -> int:
    return int(re.search(r'<span class="preorder-reserved">(\d+)</span>', html)[1])


def _reserve_data(batch, *, quantity=1, **extra):
    data = {f"address-{key}": value for key, value in ADDRESS.items()}
    data.update(
        variant=batch.product.variants.first().pk,
        quantity=quantity,
        request_key=uuid.uuid4().hex,
        number=CARD_OK["number"],
        exp_month=CARD_OK["exp_month"],
        exp_year=CARD_OK["exp_year"],
        cvc=CARD_OK["cvc"],
        **extra,
    )
    return data


def test_fans_share_one_rendering_and_see_only_their_own_reservations(client, db):
    batch = batch_open(min_quantity=50, cap=100)
    lin, ada = UserFactory(), UserFactory()
    lins = reserve(batch=batch, user=lin, quantity=2)
    address_save(user=lin, data={**ADDRESS, "city": "Lin's town"})
    card_save(user=lin, card={**CARD_OK, "number": "5555555555554444"})
    url = batch.get_absolute_url()
    client.force_login(lin)
    mine, _ = _get(client, url)
    client.force_login(ada)
    _get(client, url)  # the header's cart count, once
    theirs, queries = _get(client, url)
    assert queries == 1  # the fan's own part: their reservations and waitlist place
    assert lins.get_absolute_url() in mine and "Your reservations in this batch" in mine
    assert lins.get_absolute_url() not in theirs and "Your reservations" not in theirs
    for html in (mine, theirs):
        assert "Lin's town" not in html and "4444" not in html  # the form is fetched apart
        assert "fhcsrf" not in html and "<!--fh:" not in html
    (shared,) = [cache.get(key)[1] for key in cache.keys("page:*") if ":member:" in key]
    assert lins.get_absolute_url() not in shared and "<!--fh:preorder-mine-->" in shared
    # Ada's form has her cards and addresses only.
    form = client.get(
        reverse("preorders:reserve_form", args=[batch.slug]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Lin's town" not in form and "4444" not in form


def test_a_reservation_through_the_form_shows_at_once_to_everyone(
    client, db, django_capture_on_commit_callbacks
):
    batch = batch_open(min_quantity=50, cap=100)
    url = batch.get_absolute_url()
    visitor = Client()
    assert _reserved(_get(visitor, url)[0]) == 0
    fan = UserFactory()
    client.force_login(fan)
    before, _ = _get(client, url)
    assert _reserved(before) == 0 and "Your reservations" not in before
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("preorders:reserve", args=[batch.slug]), _reserve_data(batch, quantity=2)
        )
    assert response.status_code == 302
    reservation = Reservation.objects.get(user=fan)
    after, _ = _get(client, url)
    assert _reserved(after) == 2 and reservation.get_absolute_url() in after
    assert _reserved(_get(visitor, url)[0]) == 2
    # Cancelled: the units come back and the reservation shows as cancelled.
    with django_capture_on_commit_callbacks(execute=True):
        reservation_cancel(reservation=reservation, user=fan)
    after, _ = _get(client, url)
    assert _reserved(after) == 0 and "Cancelled" in after
    assert _reserved(_get(visitor, url)[0]) == 0


def test_the_no_javascript_form_page_reserves(client, db, django_capture_on_commit_callbacks):
    batch = batch_open()
    client.force_login(UserFactory())
    page = client.get(reverse("preorders:reserve_form", args=[batch.slug]))
    html = page.content.decode()
    assert page.status_code == 200 and 'name="request_key"' in html and "Sign out" in html
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', html)[1]
    assert not token.startswith("fhcsrf")
    # Signed out, the form page asks to sign in first.
    anonymous = Client().get(reverse("preorders:reserve_form", args=[batch.slug]))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_the_waitlist_form_posts_with_the_fans_own_token(db):
    batch = batch_open(cap=2, min_quantity=2)
    reserve(batch=batch, quantity=2)
    url = batch.get_absolute_url()
    for _ in range(2):  # the second from the cache
        fan = UserFactory()
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(fan)
        html, _ = _get(browser, url)
        assert "This batch is full" in html
        token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', html)[1]
        response = browser.post(
            reverse("preorders:waitlist", args=[batch.slug]),
            {
                "variant": batch.product.variants.first().pk,
                "quantity": 1,
                "csrfmiddlewaretoken": token,
            },
        )
        assert response.status_code == 302
        html, _ = _get(browser, url)
        assert "on the waitlist for 1" in html and "This batch is full" not in html
        html, _ = _get(browser, url)  # without the flash message: from the cache
        assert "waitlist for 1" in html and "This batch is full" not in html
    assert len([k for k in cache.keys("page:*") if ":member:" in k]) == 2  # "-" and waiting


def test_every_change_to_the_batch_retires_its_page(client, db, django_capture_on_commit_callbacks):
    batch = batch_open(min_quantity=2)
    url = batch.get_absolute_url()
    assert "$139.00" not in _get(client, url)[0]
    tier = PriceTier.objects.get(batch=batch, min_quantity=10)
    tier.unit_price = "139.00"
    with django_capture_on_commit_callbacks(execute=True):
        tier.save()
    assert "$139.00" in _get(client, url)[0]
    reserve(batch=batch, quantity=2)
    PreorderBatch.objects.filter(pk=batch.pk).update(
        closes_at=timezone.now() - timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert batch_close(batch=batch)
    html, _ = _get(client, url)
    assert "Sign in to reserve" not in html and "This batch is closed" in html
    # A slug changed or a batch back to draft: the old address is a 404 at once.
    batch = PreorderBatch.objects.get(pk=batch.pk)
    old = url
    batch.slug = "renamed-batch"
    with django_capture_on_commit_callbacks(execute=True):
        batch.save(update_fields=["slug"])
    assert client.get(old).status_code == 404
    assert client.get("/preorders/renamed-batch/").status_code == 200
    batch.status = BatchStatus.DRAFT
    with django_capture_on_commit_callbacks(execute=True):
        batch.save(update_fields=["status"])
    assert client.get("/preorders/renamed-batch/").status_code == 404


def test_a_rolled_back_change_keeps_the_token(db):
    from django.db import transaction

    batch = batch_open()
    before = BATCH_VERSION.current(batch.pk)
    with transaction.atomic():
        batch_changed(batch.pk)
        transaction.set_rollback(True)
    assert BATCH_VERSION.current(batch.pk) == before
