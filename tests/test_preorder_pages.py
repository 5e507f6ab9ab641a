"""The shopper's pre-order pages: the list, a batch with its live progress and the reserve
form, the waitlist, and the shopper's reservations (change, cancel, pay again)."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.cache.utils import make_template_fragment_key
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.page_cache import page_cache_forget
from orders.models import OrderStatus
from payments.models import Payment, PaymentStatus
from payments.services import card_save
from preorders import views
from preorders.models import (
    BatchStatus,
    PreorderBatch,
    Reservation,
    ReservationStatus,
    WaitlistEntry,
)
from preorders.selectors import duration_words
from preorders.services import batch_close
from tests.factories import BrandFactory, ProductFactory, UserFactory
from tests.preorders import CARD_DECLINED_ON_CHARGE, CARD_NEEDS_AUTH, batch_open, reserve
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db


def _reserve_data(batch, *, quantity=1, card=CARD_OK, request_key=None, variant=None, **extra):
    data = {f"address-{key}": value for key, value in ADDRESS.items()}
    data.update(
        {
            "variant": (variant or batch.product.variants.first()).pk,
            "quantity": quantity,
            "request_key": request_key or uuid.uuid4().hex,
            "number": card["number"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "cvc": card["cvc"],
            **extra,
        }
    )
    return data


def _post_reserve(client, batch, **kwargs):
    return client.post(
        reverse("preorders:reserve", kwargs={"slug": batch.slug}), _reserve_data(batch, **kwargs)
    )


def _units(batch) -> int:
    return PreorderBatch.objects.get(pk=batch.pk).reserved_units


def _count_queries(client, url, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200, url
    return len(queries)


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_open_and_upcoming_batches_never_drafts(client):
    assert "No pre-order batches are open right now." in client.get("/preorders/").content.decode()
    open_batch = batch_open(min_quantity=10)
    reserve(batch=open_batch, quantity=3)
    upcoming = batch_open()
    PreorderBatch.objects.filter(pk=upcoming.pk).update(
        status=BatchStatus.SCHEDULED, opens_at=timezone.now() + timedelta(days=2)
    )
    draft = batch_open()
    PreorderBatch.objects.filter(pk=draft.pk).update(status=BatchStatus.DRAFT)
    closed = batch_open()
    PreorderBatch.objects.filter(pk=closed.pk).update(status=BatchStatus.CONFIRMED)

    html = client.get("/preorders/").content.decode()
    assert open_batch.title in html and upcoming.title in html
    assert draft.title not in html and closed.title not in html
    assert html.index(open_batch.title) < html.index(upcoming.title)  # open ones first
    assert "3 reserved · min 10" in html
    assert "Opens in 1 day 23 hours" in html or "Opens in 2 days" in html
    assert "6 days 23 hours" in html  # time left
    assert "from</span> $159.00" in html  # the bottom of the ladder
    assert 'aria-current="page"' in html


def test_the_list_is_paginated(client):
    for _ in range(13):
        batch_open()
    html = client.get("/preorders/").content.decode()
    assert html.count('class="card product-card preorder-card"') == 12
    assert 'rel="next"' in html
    assert client.get("/preorders/?page=2").content.decode().count("preorder-card") >= 1


# --- a batch ------------------------------------------------------------------------------------


def test_the_batch_page_shows_progress_ladder_and_countdown(client):
    batch = batch_open(min_quantity=5, cap=20)
    reserve(batch=batch, quantity=4)
    response = client.get(batch.get_absolute_url())
    html = response.content.decode()
    assert response.status_code == 200
    assert batch.title in html and batch.product.name in html
    assert re.search(r'preorder-reserved">4<', html)
    assert "Minimum 5" in html and "at most 20" in html and "16 left" in html
    assert 'value="80"' in html and "80% of the minimum" in html
    # The tier reached is highlighted, and the next one is in sight.
    current = re.search(r'<li class="preorder-tier is-current"[^>]*>(.*?)</li>', html, re.S)
    assert "From 1 unit" in current.group(1) and "$199.00" in current.group(1)
    assert "6 more units unlock $179.00" in html
    assert "Closes in 6 days 23 hours" in html
    assert f'<time datetime="{timezone.localtime(batch.closes_at):%Y-%m-%dT%H:%M:%S}' in html
    assert 'hx-trigger="every 10s"' in html
    assert "Estimated shipping" in html
    assert "No deposit" in html
    assert "Sign in to reserve" in html and 'name="request_key"' not in html


def test_the_next_tier_past_the_minimum_and_the_cap(client):
    batch = batch_open(min_quantity=5, cap=30)
    for _ in range(3):
        reserve(batch=batch, quantity=4)  # 12 units: the "from 10" tier
    html = client.get(batch.get_absolute_url()).content.decode()
    assert "40% of the cap" in html
    current = re.search(r'<li class="preorder-tier is-current"[^>]*>(.*?)</li>', html, re.S)
    assert "From 10 units" in current.group(1) and "$179.00" in current.group(1)
    assert "more units unlock" not in html  # the "from 50" tier is beyond the cap of 30
    assert "is-unreachable" in html


def test_drafts_are_404_to_everyone(client, admin_client):
    batch = batch_open()
    PreorderBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.DRAFT)
    for browser in (client, admin_client):
        assert browser.get(batch.get_absolute_url()).status_code == 404
        assert browser.get(reverse("preorders:progress", args=[batch.slug])).status_code == 404


def test_the_progress_fragment_is_the_block_alone_and_stops_polling_once_closed(client):
    batch = batch_open(min_quantity=5)
    reserve(batch=batch, quantity=2)
    url = reverse("preorders:progress", kwargs={"slug": batch.slug})
    response = client.get(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="batch-progress"') and "<html" not in html
    assert 'hx-trigger="every 10s"' in html and f'hx-get="{url}"' in html
    assert "40% of the minimum" in html
    PreorderBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.CONFIRMED, final_unit_price=Decimal("199.00")
    )
    html = client.get(url).content.decode()
    assert "hx-trigger" not in html and "Final price" in html and "Closed" in html


def test_a_member_sees_the_reserve_form_with_a_fresh_key_and_the_fan_club(client):
    from communities.models import Community

    batch = batch_open(deposit="20.00")
    club = Community.objects.create(
        name="Nimbus fans", slug="nimbus-fans", kind="brand", brand=batch.product.brand
    )
    client.force_login(UserFactory())
    page = client.get(batch.get_absolute_url()).content.decode()
    form_url = reverse("preorders:reserve_form", args=[batch.slug])
    assert f'hx-get="{form_url}"' in page and 'name="request_key"' not in page
    assert club.get_absolute_url() in page
    # The form is fetched when the fan opens it (htmx), or as a page without JavaScript.
    first = client.get(form_url, HTTP_HX_REQUEST="true").content.decode()
    assert first.lstrip().startswith('<div id="reserve-form">') and "<html" not in first
    second = client.get(form_url).content.decode()
    assert "<html" in second and batch.title in second
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', first).group(1)
    assert key not in second  # a fresh key each time the form is shown
    assert 'name="variant"' in first and 'name="quantity"' in first
    assert 'name="address-full_name"' in first and 'name="number"' in first
    assert "Save this card" not in first  # a reservation's card is always kept
    assert "$20.00 per unit" in page and "your deposit is refunded" in page


# --- reserving ----------------------------------------------------------------------------------


def test_reserving_through_the_page_holds_units(client):
    batch = batch_open(min_quantity=5)
    user = UserFactory()
    client.force_login(user)
    response = _post_reserve(client, batch, quantity=2)
    reservation = Reservation.objects.get(user=user)
    assert response.status_code == 302
    assert response["Location"] == reservation.get_absolute_url()
    assert reservation.status == ReservationStatus.HELD and reservation.quantity == 2
    assert reservation.ship_city == ADDRESS["city"]
    assert reservation.saved_card.last4 == "4242" and reservation.saved_card.deleted_at is None
    assert _units(batch) == 2
    page = client.get(response["Location"]).content.decode()
    assert "Reserved: 2 ×" in page
    # The batch page now lists it.
    assert reservation.get_absolute_url() in client.get(batch.get_absolute_url()).content.decode()


def test_reserving_with_a_saved_address_and_a_saved_card(client):
    from orders.services import address_save

    batch = batch_open()
    user = UserFactory()
    address = address_save(user=user, data={**ADDRESS, "city": "Shelbyville"})
    card = card_save(user=user, card=CARD_OK)
    client.force_login(user)
    response = client.post(
        reverse("preorders:reserve", args=[batch.slug]),
        {
            "variant": batch.product.variants.last().pk,
            "quantity": 1,
            "saved_address": address.pk,
            "saved_card": card.pk,
            "request_key": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 302
    reservation = Reservation.objects.get(user=user)
    assert reservation.saved_card == card and reservation.ship_city == "Shelbyville"
    assert reservation.variant == batch.product.variants.last()


def test_a_double_submit_makes_one_reservation(client):
    batch = batch_open()
    user = UserFactory()
    client.force_login(user)
    key = uuid.uuid4().hex
    first = _post_reserve(client, batch, quantity=1, request_key=key)
    second = _post_reserve(client, batch, quantity=1, request_key=key)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Reservation.objects.filter(user=user).count() == 1
    assert _units(batch) == 1


def test_over_the_per_customer_limit_is_refused_and_nothing_changes(client):
    batch = batch_open(per_customer_limit=3)
    user = UserFactory()
    reserve(batch=batch, user=user, quantity=2)
    client.force_login(user)
    response = _post_reserve(client, batch, quantity=2)
    assert response.status_code == 400
    html = response.content.decode()
    assert "At most 3 units per customer; you can add 1 more." in html
    assert Reservation.objects.filter(user=user).count() == 1
    assert _units(batch) == 2
    # The card typed in for the refused reservation is not kept.
    assert not user.saved_cards.filter(deleted_at=None).exclude(reservations__isnull=False)


def test_invalid_fields_are_shown_and_nothing_is_reserved(client):
    batch = batch_open()
    client.force_login(UserFactory())
    response = _post_reserve(client, batch, quantity=0, **{"address-city": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please check the details below." in html
    assert not Reservation.objects.exists() and _units(batch) == 0


def test_a_closed_batch_says_so_and_takes_no_reservation(client):
    batch = batch_open()
    user = UserFactory()
    client.force_login(user)
    PreorderBatch.objects.filter(pk=batch.pk).update(
        opens_at=timezone.now() - timedelta(days=2), closes_at=timezone.now() - timedelta(days=1)
    )
    html = client.get(batch.get_absolute_url()).content.decode()
    assert "reservations are no longer taken" in html and 'name="request_key"' not in html
    response = _post_reserve(client, batch)
    assert response.status_code == 400
    assert "This batch is closed: reservations are no longer taken." in response.content.decode()
    assert not Reservation.objects.exists()


def test_a_batch_not_open_yet_says_when_it_opens(client):
    batch = batch_open()
    PreorderBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.SCHEDULED, opens_at=timezone.now() + timedelta(days=3)
    )
    client.force_login(UserFactory())
    html = client.get(batch.get_absolute_url()).content.decode()
    assert "Not open yet: reservations open on" in html and 'name="request_key"' not in html
    assert "Opens in 2 days 23 hours" in html


def test_a_confirmed_batch_says_production_goes_ahead(client):
    batch = batch_open()
    PreorderBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.CONFIRMED, final_unit_price=Decimal("179.00")
    )
    html = client.get(batch.get_absolute_url()).content.decode()
    assert "confirmed: production goes ahead at $179.00 per unit" in html
    assert "Sign in to reserve" not in html


def test_a_full_batch_offers_the_waitlist_and_joining_works(client):
    batch = batch_open(cap=5, min_quantity=5)
    reserve(batch=batch, quantity=5)
    user = UserFactory()
    client.force_login(user)
    html = client.get(batch.get_absolute_url()).content.decode()
    assert "This batch is full" in html
    assert reverse("preorders:waitlist", args=[batch.slug]) in html
    assert 'name="request_key"' not in html
    response = client.post(
        reverse("preorders:waitlist", args=[batch.slug]),
        {"variant": batch.product.variants.first().pk, "quantity": 2},
        follow=True,
    )
    assert "on the waitlist for 2" in response.content.decode()
    entry = WaitlistEntry.objects.get(user=user)
    assert entry.quantity == 2
    # Joining twice is refused with the service's message.
    response = client.post(
        reverse("preorders:waitlist", args=[batch.slug]),
        {"variant": batch.product.variants.first().pk, "quantity": 1},
        follow=True,
    )
    assert "You are already on the waitlist." in response.content.decode()
    assert WaitlistEntry.objects.filter(user=user).count() == 1


def test_a_waitlist_offer_brings_the_reserve_form_back(client):
    batch = batch_open(cap=3, min_quantity=3)
    holder = UserFactory()
    taken = reserve(batch=batch, user=holder, quantity=3)
    waiting = UserFactory()
    client.force_login(waiting)
    client.post(
        reverse("preorders:waitlist", args=[batch.slug]),
        {"variant": batch.product.variants.first().pk, "quantity": 2},
    )
    from preorders.services import reservation_cancel

    reservation_cancel(reservation=taken, user=holder)  # 3 units freed: 2 offered to `waiting`
    html = client.get(batch.get_absolute_url()).content.decode()
    form_url = reverse("preorders:reserve_form", args=[batch.slug])
    assert "are held for you until" in html and f'hx-get="{form_url}"' in html
    assert 'name="request_key"' in client.get(form_url, HTTP_HX_REQUEST="true").content.decode()
    assert _post_reserve(client, batch, quantity=2).status_code == 302
    assert Reservation.objects.get(user=waiting).quantity == 2


def test_the_waitlist_refuses_when_units_are_left(client):
    batch = batch_open(cap=10)
    client.force_login(UserFactory())
    response = client.post(
        reverse("preorders:waitlist", args=[batch.slug]),
        {"variant": batch.product.variants.first().pk, "quantity": 1},
        follow=True,
    )
    assert "There are units left: reserve them instead." in response.content.decode()
    assert not WaitlistEntry.objects.exists()


def test_reserving_needs_sign_in(client):
    batch = batch_open()
    response = _post_reserve(client, batch)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Reservation.objects.exists()
    # Back from signing in (a GET on the form's address): the batch page, at the form.
    client.force_login(UserFactory())
    response = client.get(reverse("preorders:reserve", args=[batch.slug]))
    assert response["Location"] == batch.get_absolute_url() + "#reserve"


# --- deposits -----------------------------------------------------------------------------------


def test_a_deposit_is_charged_when_reserving(client):
    batch = batch_open(deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    assert _post_reserve(client, batch, quantity=2).status_code == 302
    reservation = Reservation.objects.get(user=user)
    assert reservation.deposit_paid == Decimal("50.00")
    html = client.get(reservation.get_absolute_url()).content.decode()
    assert "$50.00 paid" in html and "Your deposit of $50.00 is refunded" in html


def test_a_declined_deposit_cancels_the_reservation(client):
    batch = batch_open(deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    response = _post_reserve(client, batch, quantity=2, card=CARD_DECLINED_ON_CHARGE)
    assert response.status_code == 400
    html = response.content.decode()
    assert "The deposit was not paid, so nothing was reserved." in html
    assert "Your card was declined." in html
    reservation = Reservation.objects.get(user=user)
    assert reservation.status == ReservationStatus.CANCELLED
    assert _units(batch) == 0
    # The form comes back with a fresh key: sending it again is a new attempt.
    assert re.search(r'name="request_key" value="[0-9a-f]{32}"', html)


def test_a_deposit_that_needs_authentication_goes_to_the_bank_page(client):
    batch = batch_open(deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    response = _post_reserve(client, batch, quantity=1, card=CARD_NEEDS_AUTH)
    reservation = Reservation.objects.get(user=user)
    authenticate = reverse("preorders:reservation_authenticate", args=[reservation.pk])
    assert response.status_code == 302 and response["Location"] == authenticate
    # Left half-way, the reservation page leads back to the bank.
    assert authenticate in client.get(reservation.get_absolute_url()).content.decode()
    html = client.get(authenticate).content.decode()
    assert "$25.00" in html and "the deposit on your pre-order" in html
    response = client.post(authenticate, {"decision": "approve"})
    assert response["Location"] == reservation.get_absolute_url()
    reservation.refresh_from_db()
    assert reservation.deposit_paid == Decimal("25.00")
    assert reservation.status == ReservationStatus.HELD
    assert authenticate not in client.get(reservation.get_absolute_url()).content.decode()
    # Nothing waits any more: the bank page sends you back.
    assert client.get(authenticate)["Location"] == reservation.get_absolute_url()


def test_a_refused_deposit_authentication_cancels_the_new_reservation(client):
    batch = batch_open(deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    _post_reserve(client, batch, quantity=2, card=CARD_NEEDS_AUTH)
    reservation = Reservation.objects.get(user=user)
    response = client.post(
        reverse("preorders:reservation_authenticate", args=[reservation.pk]), {"decision": "deny"}
    )
    assert response["Location"] == batch.get_absolute_url()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED and _units(batch) == 0


def test_adding_units_takes_their_deposit_and_a_decline_changes_nothing(client):
    batch = batch_open(deposit="10.00")
    user = UserFactory()
    reservation = reserve(batch=batch, user=user, quantity=1)
    client.force_login(user)
    change = reverse("preorders:reservation_change", args=[reservation.pk])
    variant = reservation.variant.pk
    client.post(change, {"variant": variant, "quantity": 3})
    reservation.refresh_from_db()
    assert reservation.quantity == 3 and reservation.deposit_paid == Decimal("30.00")

    declined = reserve(batch=batch, quantity=1, card=CARD_DECLINED_ON_CHARGE)
    assert declined.status == ReservationStatus.HELD and declined.deposit_paid == 0  # in bulk
    # (the helper charges the deposit but does not cancel on a decline; the page does)
    client.force_login(declined.user)
    before = _units(batch)
    response = client.post(
        reverse("preorders:reservation_change", args=[declined.pk]),
        {"variant": declined.variant_id, "quantity": 2},
        follow=True,
    )
    assert "nothing changed" in response.content.decode()
    declined.refresh_from_db()
    assert declined.quantity == 1 and _units(batch) == before


# --- the shopper's reservations ------------------------------------------------------------------


def test_someone_elses_reservation_is_404(client):
    reservation = reserve(batch=batch_open())
    client.force_login(UserFactory())
    pk = reservation.pk
    for url in [
        reverse("preorders:reservation", args=[pk]),
        reverse("preorders:reservation_pay", args=[pk]),
        reverse("preorders:reservation_authenticate", args=[pk]),
    ]:
        assert client.get(url).status_code == 404, url
    for url in [
        reverse("preorders:reservation_change", args=[pk]),
        reverse("preorders:reservation_cancel", args=[pk]),
    ]:
        assert (
            client.post(url, {"variant": reservation.variant_id, "quantity": 2}).status_code == 404
        )
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.HELD and reservation.quantity == 1


def test_the_reservation_page_explains_and_lets_you_change_and_cancel(client):
    batch = batch_open(min_quantity=5)
    user = UserFactory()
    reservation = reserve(batch=batch, user=user, quantity=1)
    client.force_login(user)
    url = reservation.get_absolute_url()
    html = client.get(url).content.decode()
    assert "Your units are reserved." in html and "minimum of 5 units" in html
    assert "Visa •••• 4242" in html
    assert reverse("preorders:reservation_change", args=[reservation.pk]) in html
    assert reverse("preorders:reservation_cancel", args=[reservation.pk]) in html
    assert "Reserved 1 ×" in html  # the history

    other = batch.product.variants.last()
    response = client.post(
        reverse("preorders:reservation_change", args=[reservation.pk]),
        {"variant": other.pk, "quantity": 3},
        follow=True,
    )
    assert "Your reservation is now 3 ×" in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.quantity == 3 and reservation.variant == other and _units(batch) == 3
    assert "Changed from 1 ×" in response.content.decode()

    response = client.post(
        reverse("preorders:reservation_change", args=[reservation.pk]),
        {"variant": other.pk, "quantity": 9},
        follow=True,
    )
    assert "At most 5 units per customer" in response.content.decode()
    assert Reservation.objects.get(pk=reservation.pk).quantity == 3

    response = client.post(
        reverse("preorders:reservation_cancel", args=[reservation.pk]), follow=True
    )
    html = response.content.decode()
    assert "Your reservation is cancelled." in html and "You cancelled this reservation" in html
    assert reverse("preorders:reservation_cancel", args=[reservation.pk]) not in html
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED and _units(batch) == 0


def test_cancelling_explains_a_kept_deposit(client):
    batch = batch_open(deposit="10.00", deposit_refundable=False)
    user = UserFactory()
    reservation = reserve(batch=batch, user=user, quantity=2)
    client.force_login(user)
    html = client.get(reservation.get_absolute_url()).content.decode()
    assert "your deposit of $20.00 is <strong>not refunded</strong>" in html


def test_my_pre_orders_lists_mine_only(client):
    user = UserFactory()
    client.force_login(user)
    assert "No pre-orders yet" in client.get("/preorders/mine/").content.decode()
    batch = batch_open(min_quantity=50)
    mine = reserve(batch=batch, user=user, quantity=2)
    theirs = reserve(batch=batch_open())
    html = client.get("/preorders/mine/").content.decode()
    assert mine.get_absolute_url() in html and batch.title in html
    assert theirs.get_absolute_url() not in html
    assert "at $199.00 today" in html and "$398.00" in html and "Reserved" in html
    assert client.get("/preorders/mine/", follow=False).status_code == 200
    client.logout()
    assert client.get("/preorders/mine/").status_code == 302


def test_the_pay_page_only_for_a_failed_payment(client):
    user = UserFactory()
    reservation = reserve(batch=batch_open(), user=user)
    client.force_login(user)
    response = client.get(reverse("preorders:reservation_pay", args=[reservation.pk]))
    assert response.status_code == 302 and response["Location"] == reservation.get_absolute_url()


@pytest.mark.django_db(transaction=True)
def test_after_a_failed_charge_the_pay_page_takes_another_card_and_makes_the_order(client):
    batch = batch_open(min_quantity=1)
    user = UserFactory()
    reservation = reserve(batch=batch, user=user, quantity=2, card=CARD_DECLINED_ON_CHARGE)
    batch_close(batch=batch, force=True)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAYMENT_FAILED

    client.force_login(user)
    html = client.get(reservation.get_absolute_url()).content.decode()
    pay = reverse("preorders:reservation_pay", args=[reservation.pk])
    assert "$398.00 is owed." in html and pay in html and "Pay now" in html
    assert f'datetime="{timezone.localtime(reservation.grace_until):%Y-%m-%dT%H:%M}' in html
    assert "Pay $398.00" in client.get(pay).content.decode()

    # Declined again: the page says why.
    response = client.post(pay, {**CARD_DECLINED_ON_CHARGE})
    assert response.status_code == 400 and "Your card was declined." in response.content.decode()

    response = client.post(pay, {**CARD_OK})
    assert response.status_code == 302 and response["Location"] == reservation.get_absolute_url()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CHARGED
    assert reservation.order.status == OrderStatus.PAID
    assert reservation.order.total == Decimal("398.00")
    html = client.get(reservation.get_absolute_url()).content.decode()
    assert reservation.order.get_absolute_url() in html and "Paid:" in html
    assert reservation.order.get_absolute_url() in client.get("/preorders/mine/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_settlement_charge_that_needs_authentication_is_confirmed_on_the_bank_page(client):
    batch = batch_open(min_quantity=1)
    user = UserFactory()
    reservation = reserve(batch=batch, user=user, card=CARD_NEEDS_AUTH)
    batch_close(batch=batch, force=True)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAYMENT_FAILED
    client.force_login(user)
    response = client.post(
        reverse("preorders:reservation_pay", args=[reservation.pk]),
        {"saved_card": reservation.saved_card_id},
    )
    authenticate = reverse("preorders:reservation_authenticate", args=[reservation.pk])
    assert response["Location"] == authenticate
    assert "$199.00" in client.get(authenticate).content.decode()
    response = client.post(authenticate, {"decision": "approve"})
    assert response["Location"] == reservation.get_absolute_url()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CHARGED and reservation.order is not None
    assert Payment.objects.get(reference=reservation.payment_reference).status == (
        PaymentStatus.SUCCEEDED
    )


# --- the composed pages -----------------------------------------------------------------------


def test_home_brand_page_and_brand_offers_show_open_batches(client):
    brand = BrandFactory(slug="nimbus")
    batch = batch_open(product=ProductFactory(brand=brand))
    elsewhere = batch_open()
    home = client.get("/").content.decode()
    assert batch.get_absolute_url() in home and elsewhere.get_absolute_url() in home
    page = client.get(brand.get_absolute_url()).content.decode()
    assert batch.get_absolute_url() in page and elsewhere.get_absolute_url() not in page
    offers = client.get(reverse("storefront:brand_offers", args=[brand.slug])).content.decode()
    assert batch.get_absolute_url() in offers and "0 reserved, 5 needed" in offers


# --- security and queries -------------------------------------------------------------------


def test_the_pages_run_no_inline_scripts_and_keep_user_text_inert(client):
    script = "<script>alert('pwned')</script>"
    batch = batch_open()
    PreorderBatch.objects.filter(pk=batch.pk).update(description=f"Fine {script}")
    user = UserFactory()
    reservation = reserve(batch=batch, user=user)
    client.force_login(user)
    for url in [
        "/preorders/",
        batch.get_absolute_url(),
        "/preorders/mine/",
        reservation.get_absolute_url(),
    ]:
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert [t for t in re.findall(r"<script\b[^>]*>", html) if "src=" not in t] == [], url
        assert script not in html, url


def test_query_counts_stay_fixed(client):
    batch = batch_open(min_quantity=50, cap=100)
    user = UserFactory()
    reserve(batch=batch, user=user)
    form_url = reverse("preorders:reserve_form", args=[batch.slug])
    anonymous = _count_queries(client, batch.get_absolute_url())
    anonymous_warm = _count_queries(client, batch.get_absolute_url())
    index = _count_queries(client, "/preorders/")
    client.force_login(user)
    client.get("/cart/")  # the header's cart count is counted once, then kept
    member = _count_queries(client, batch.get_absolute_url())
    member_warm = _count_queries(client, batch.get_absolute_url())
    form = _count_queries(client, form_url)
    form_fragment = _count_queries(client, form_url, HTTP_HX_REQUEST="true")
    mine = _count_queries(client, "/preorders/mine/")
    fragment = _count_queries(client, reverse("preorders:progress", args=[batch.slug]))
    home = _count_queries(client, "/")

    # More batches, more reservations (by others and by the user), more tiers seen.
    for _ in range(4):
        extra = batch_open()
        reserve(batch=extra, user=user)
        reserve(batch=batch, quantity=2)
    for _ in range(3):
        reserve(batch=batch, user=user)
    client.logout()
    page_cache_forget()  # the reservations' commits would retire the batch's token
    views._batch_ids.clear()  # and the slug's batch is looked up again (a new process)
    assert _count_queries(client, batch.get_absolute_url()) == anonymous
    assert _count_queries(client, batch.get_absolute_url()) == anonymous_warm
    assert _count_queries(client, "/preorders/") == index
    client.force_login(user)
    client.get("/cart/")  # the user's row is read once after a sign-in, then kept
    assert _count_queries(client, batch.get_absolute_url()) == member
    assert _count_queries(client, batch.get_absolute_url()) == member_warm
    assert _count_queries(client, form_url) == form
    assert _count_queries(client, form_url, HTTP_HX_REQUEST="true") == form_fragment
    assert _count_queries(client, "/preorders/mine/") == mine
    assert _count_queries(client, reverse("preorders:progress", args=[batch.slug])) == fragment
    cache.delete(make_template_fragment_key("home_showcase"))  # count the cold home page again
    page_cache_forget()  # its whole-page entry too
    assert _count_queries(client, "/") == home
    # Anonymous batch page, cold: the slug's batch (then kept by the process), batch, tiers,
    # images, options, fan club; warm: none (the batch's, product's and catalogue's tokens).
    # Signed in, cold: the fan's reservations and waitlist place (one query, the page's key),
    # batch, tiers, images, options, fan club; warm: the fan's part only (the cart count and
    # the user are kept in the cache). The reserve form as a page: batch, tiers, images,
    # options, fan club, the fan's part, addresses, cards; as the fragment: batch, tiers,
    # options, addresses, cards. List: count, batches, tiers, images. Mine: count,
    # reservations, tiers. Fragment: batch, tiers.
    counts = (anonymous, anonymous_warm, member, member_warm, form, form_fragment)
    assert counts == (6, 0, 6, 1, 8, 5)
    assert (index, mine, fragment) == (4, 3, 2)


def test_reservation_page_queries_do_not_grow_with_its_history(client):
    batch = batch_open()
    user = UserFactory()
    reservation = reserve(batch=batch, user=user)
    client.force_login(user)
    url = reservation.get_absolute_url()
    client.get(url)  # the header's cart count is counted once, then kept
    before = _count_queries(client, url)
    change = reverse("preorders:reservation_change", args=[reservation.pk])
    for quantity in (2, 3, 1, 4):
        client.post(change, {"variant": reservation.variant_id, "quantity": quantity})
    assert reservation.events.count() == 5
    assert _count_queries(client, url) == before


def test_time_in_words():
    assert duration_words(3 * 86400 + 4 * 3600 + 59) == "3 days 4 hours"
    assert duration_words(86400 + 120) == "1 day"
    assert duration_words(5 * 3600 + 12 * 60) == "5 hours 12 minutes"
    assert duration_words(61) == "1 minute"
    assert duration_words(5) == "less than a minute"
