"""Deposits and reservations on Postgres with real transactions: a deposit left at 3-D Secure
gives its units back in time, racing changes and twin submits charge each deposit once,
failed deposit refunds stay visible and are retried, and a card a reservation needs stays."""

import re
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import time_machine
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from payments.models import LocalCharge, Payment, PaymentStatus, Refund, RefundStatus, SavedCard
from payments.providers.base import RefundResult
from payments.providers.local import LocalProvider
from payments.services import card_save, refunds_retry_due
from preorders.models import (
    PreorderBatch,
    PreorderEvent,
    Reservation,
    ReservationStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from preorders.services import (
    batch_cancel,
    reservation_cancel,
    reservation_change,
    reservations_deposit_expire,
    waitlist_join,
)
from preorders.tasks import batches_close_due_task
from tests.factories import UserFactory
from tests.preorders import CARD_NEEDS_AUTH, batch_open, reserve
from tests.shop import ADDRESS, CARD_OK


def _reserve_data(batch, *, quantity=1, card=CARD_OK, request_key=None):
    data = {f"address-{key}": value for key, value in ADDRESS.items()}
    data.update(
        variant=batch.product.variants.first().pk,
        quantity=quantity,
        request_key=request_key or uuid.uuid4().hex,
        number=card["number"],
        exp_month=card["exp_month"],
        exp_year=card["exp_year"],
        cvc=card["cvc"],
    )
    return data


def _reserve_page(client, batch, **kwargs):
    return client.post(
        reverse("preorders:reserve", kwargs={"slug": batch.slug}), _reserve_data(batch, **kwargs)
    )


def _authenticate(client, reservation, decision="approve"):
    return client.post(
        reverse("preorders:reservation_authenticate", args=[reservation.pk]),
        {"decision": decision},
        follow=True,
    )


def _deposits(reservation):
    return Payment.objects.filter(reference=reservation.deposit_reference)


def _net_deposit(reservation) -> Decimal:
    paid = _deposits(reservation).filter(
        status__in=[
            PaymentStatus.SUCCEEDED,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        ]
    )
    totals = paid.aggregate(amount=Sum("amount"), refunded=Sum("amount_refunded"))
    return (totals["amount"] or 0) - (totals["refunded"] or 0)


def _provider_charges(reservation) -> int:
    refs = _deposits(reservation).exclude(provider_ref="").values_list("provider_ref", flat=True)
    return LocalCharge.objects.filter(charge_id__in=list(refs)).count()


def _in_parallel(count, work):
    """Run work(index) in `count` threads released together; each closes its connection."""
    start = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(index):
        try:
            start.wait()
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


# --- 1. a deposit left at 3-D Secure gives its units back ---------------------------------------


@pytest.mark.django_db
def test_an_unconfirmed_deposit_releases_its_units_and_the_waitlist_gets_them(client):
    batch = batch_open(cap=4, deposit="25.00", per_customer_limit=2)
    squatters = [UserFactory(), UserFactory()]
    for squatter in squatters:  # two accounts fill the cap with the authentication card
        client.force_login(squatter)
        assert _reserve_page(client, batch, quantity=2, card=CARD_NEEDS_AUTH).status_code == 302
    fan = UserFactory()
    client.force_login(fan)
    response = _reserve_page(client, batch, quantity=1)
    assert "This batch is full" in response.content.decode()
    entry = waitlist_join(batch=batch, user=fan, variant=batch.product.variants.first(), quantity=1)

    held = list(Reservation.objects.filter(user__in=squatters))
    assert all(r.status == ReservationStatus.HELD and r.deposit_paid == 0 for r in held)
    assert all(r.deposit_due_at is not None for r in held)
    with time_machine.travel(timezone.now() + timedelta(minutes=9)):
        batches_close_due_task()  # within the window: nothing moves
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 4

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        batches_close_due_task()  # the per-minute beat task
    batch.refresh_from_db()
    assert batch.reserved_units == 0
    for reservation in held:
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.RELEASED
        event = PreorderEvent.objects.get(
            reservation=reservation, to_status=ReservationStatus.RELEASED
        )
        assert event.from_status == ReservationStatus.HELD
        assert event.note == "Deposit not paid within 10 minutes: units released"
        assert Notification.objects.filter(
            recipient=reservation.user, title__contains="was released"
        ).exists()
    entry.refresh_from_db()
    assert entry.status == WaitlistStatus.OFFERED and batch.offered_units == 1
    # The squatter's page no longer offers the bank page for units that are gone.
    client.force_login(squatters[0])
    html = client.get(held[0].get_absolute_url()).content.decode()
    assert reverse("preorders:reservation_authenticate", args=[held[0].pk]) not in html
    # And the fan reserves.
    client.force_login(fan)
    assert _reserve_page(client, batch, quantity=1).status_code == 302
    assert Reservation.objects.get(user=fan).status == ReservationStatus.HELD


@pytest.mark.django_db
def test_a_deposit_confirmed_in_time_keeps_the_reservation(client):
    batch = batch_open(cap=4, deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    _reserve_page(client, batch, quantity=2, card=CARD_NEEDS_AUTH)
    reservation = Reservation.objects.get(user=user)
    html = client.get(reservation.get_absolute_url()).content.decode()
    due = timezone.localtime(reservation.deposit_due_at)
    assert f'Confirm it by <time datetime="{due:%Y-%m-%dT%H:%M:%S}' in html
    assert "or the units it is for are released" in html
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        html = _authenticate(client, reservation).content.decode()
    assert "Deposit paid: your units are reserved." in html
    reservation.refresh_from_db()
    assert reservation.deposit_paid == Decimal("50.00") and reservation.deposit_due_at is None
    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        assert reservations_deposit_expire() == 0
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.HELD and reservation.quantity == 2
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 2


@pytest.mark.django_db
def test_a_deposit_confirmed_after_the_release_is_refunded(client):
    batch = batch_open(cap=4, deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    _reserve_page(client, batch, quantity=1, card=CARD_NEEDS_AUTH)
    reservation = Reservation.objects.get(user=user)
    payment = _deposits(reservation).get()
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert reservations_deposit_expire() == 1
    # The bank page is gone from the reservation, but the bank may still confirm it.
    LocalProvider().authentication_complete(provider_ref=payment.provider_ref, approved=True)
    from payments.services import payment_refresh

    payment_refresh(payment=payment)
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.RELEASED
    assert payment.status == PaymentStatus.REFUNDED and _net_deposit(reservation) == 0
    assert reservation.deposit_paid == reservation.deposit_refunded == Decimal("25.00")
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 0


@pytest.mark.django_db
def test_units_added_whose_deposit_is_not_confirmed_go_back_the_rest_stays(client):
    batch = batch_open(cap=10, deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    _reserve_page(client, batch, quantity=1, card=CARD_NEEDS_AUTH)
    reservation = Reservation.objects.get(user=user)
    _authenticate(client, reservation)
    response = client.post(
        reverse("preorders:reservation_change", args=[reservation.pk]),
        {"variant": reservation.variant_id, "quantity": 3},
    )
    assert response["Location"] == reverse(
        "preorders:reservation_authenticate", args=[reservation.pk]
    )
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 3
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert reservations_deposit_expire() == 2
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.HELD and reservation.quantity == 1
    assert reservation.deposit_paid == Decimal("25.00")
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 1


# --- 2. parallel changes charge each unit's deposit once ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_changes_from_one_to_two_charge_the_extra_deposit_once():
    batch = batch_open(deposit="50.00", per_customer_limit=5)
    reservation = reserve(batch=batch, quantity=1)
    assert reservation.deposit_paid == Decimal("50.00")
    url = reverse("preorders:reservation_change", args=[reservation.pk])
    clients = []
    for _ in range(6):
        client = Client()
        client.force_login(reservation.user)
        clients.append(client)

    responses = _in_parallel(
        6, lambda i: clients[i].post(url, {"variant": reservation.variant_id, "quantity": 2})
    )

    assert all(response.status_code == 302 for response in responses)
    reservation.refresh_from_db()
    assert reservation.quantity == 2
    succeeded = _deposits(reservation).filter(status=PaymentStatus.SUCCEEDED)
    assert succeeded.count() == 2  # the reserve's and exactly one for the extra unit
    assert _net_deposit(reservation) == Decimal("100.00") == reservation.deposit_paid
    assert _provider_charges(reservation) == 2
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 2


@pytest.mark.django_db(transaction=True)
def test_parallel_changes_to_different_quantities_end_with_one_deposit_per_unit():
    batch = batch_open(deposit="50.00", per_customer_limit=5)
    reservation = reserve(batch=batch, quantity=1)
    variant = batch.product.variants.first()

    def change(index):
        reservation_change(
            reservation=reservation,
            user=reservation.user,
            variant=variant,
            quantity=[2, 3, 4, 2, 3, 4, 5, 2][index],
        )

    _in_parallel(8, change)
    reservation.refresh_from_db()
    # Whatever order they ran in, the deposit held is one per unit now reserved.
    assert _net_deposit(reservation) == Decimal("50.00") * reservation.quantity
    assert reservation.deposit_paid - reservation.deposit_refunded == _net_deposit(reservation)
    assert not _deposits(reservation).filter(status=PaymentStatus.PENDING).exists()
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == reservation.quantity


# --- 3. twin submits of the reserve form --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_five_twin_submits_land_on_one_reservation_with_one_deposit():
    batch = batch_open(deposit="20.00", cap=50)
    user = UserFactory()
    data = _reserve_data(batch, quantity=2)
    url = reverse("preorders:reserve", kwargs={"slug": batch.slug})
    clients = []
    for _ in range(5):
        client = Client()
        client.force_login(user)
        clients.append(client)

    responses = _in_parallel(5, lambda i: clients[i].post(url, data))

    reservation = Reservation.objects.get(user=user)
    assert [r.status_code for r in responses] == [302] * 5, [
        r.content.decode()[:300] for r in responses if r.status_code != 302
    ]
    assert {r["Location"] for r in responses} == {reservation.get_absolute_url()}
    for client in clients:  # no page says "already exists"
        html = client.get(reservation.get_absolute_url()).content.decode()
        assert "already exists" not in html
    assert reservation.quantity == 2 and reservation.deposit_paid == Decimal("40.00")
    assert _deposits(reservation).count() == 1 and _provider_charges(reservation) == 1
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 2
    # The cards typed by the twins that lost are not kept; the reservation's is.
    kept = SavedCard.objects.filter(user=user, deleted_at=None)
    assert list(kept) == [reservation.saved_card]


def _browser(live_server, user, page_url) -> tuple[dict, str]:
    """Cookies of a signed-in browser and the CSRF token of the form on `page_url`."""
    client = Client()
    client.force_login(user)
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
    page = requests.get(f"{live_server.url}{page_url}", cookies=cookies, timeout=30)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    cookies.update(page.cookies.get_dict())
    return cookies, token


def _post_at_once(live_server, url, data, cookies, token, count) -> list[requests.Response]:
    return _in_parallel(
        count,
        lambda i: requests.post(
            f"{live_server.url}{url}",
            data={**data, "csrfmiddlewaretoken": token},
            cookies=cookies,
            headers={"Referer": f"{live_server.url}{url}"},
            allow_redirects=False,
            timeout=60,
        ),
    )


@pytest.mark.django_db(transaction=True)
def test_over_http_twin_reserves_and_parallel_changes_each_charge_one_deposit(live_server):
    batch = batch_open(deposit="50.00", cap=20, per_customer_limit=5)
    user = UserFactory()
    cookies, token = _browser(live_server, user, batch.get_absolute_url())
    url = reverse("preorders:reserve", kwargs={"slug": batch.slug})

    responses = _post_at_once(live_server, url, _reserve_data(batch), cookies, token, 5)

    reservation = Reservation.objects.get(user=user)
    assert [r.status_code for r in responses] == [302] * 5
    assert {r.headers["Location"] for r in responses} == {reservation.get_absolute_url()}
    assert _provider_charges(reservation) == 1

    change = reverse("preorders:reservation_change", args=[reservation.pk])
    data = {"variant": reservation.variant_id, "quantity": 2}
    responses = _post_at_once(live_server, change, data, cookies, token, 4)

    assert [r.status_code for r in responses] == [302] * 4
    reservation.refresh_from_db()
    assert reservation.quantity == 2 and _provider_charges(reservation) == 2
    assert _net_deposit(reservation) == Decimal("100.00") == reservation.deposit_paid
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 2


# --- 4. a deposit refund the provider refuses ---------------------------------------------------


@pytest.fixture
def refunds_refused(monkeypatch):
    def refuse(self, *, provider_ref, amount_minor, idempotency_key):
        return RefundResult(False, message="The issuer is unavailable.")

    monkeypatch.setattr(LocalProvider, "refund", refuse)
    return monkeypatch


@pytest.mark.django_db
def test_a_refused_deposit_refund_is_shown_pending_and_retried_until_it_succeeds(
    client, admin_client, refunds_refused
):
    batch = batch_open(deposit="25.00")
    reservation = reserve(batch=batch, quantity=2)
    reservation_cancel(reservation=reservation, user=reservation.user)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED
    assert reservation.deposit_refunded == 0
    event = PreorderEvent.objects.get(reservation=reservation, to_status="cancelled")
    assert event.note == (
        "Cancelled by the customer; deposit refund of 50.00 pending (The issuer is unavailable.)"
    )
    client.force_login(reservation.user)
    html = client.get(reservation.get_absolute_url()).content.decode()
    assert "Deposit refund of $50.00 pending: The issuer is unavailable." in html
    admin_page = admin_client.get(f"/admin/preorders/reservation/{reservation.pk}/change/")
    assert "deposit refund of $50.00 pending: The issuer is unavailable." in (
        admin_page.content.decode()
    )

    refunds_refused.undo()  # the provider is back
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert refunds_retry_due() == 1  # payments' sweep
    reservation.refresh_from_db()
    assert reservation.deposit_refunded == Decimal("50.00")
    assert Refund.objects.get(payment__reference=reservation.deposit_reference).status == (
        RefundStatus.SUCCEEDED
    )
    html = client.get(reservation.get_absolute_url()).content.decode()
    assert "Deposit refund of" not in html and "$50.00 refunded" in html


@pytest.mark.django_db
def test_a_cancelled_batch_notes_the_deposit_refund_that_is_still_pending(
    refunds_refused, django_capture_on_commit_callbacks
):
    batch = batch_open(deposit="20.00", min_quantity=10)
    refunded_one = reserve(batch=batch, quantity=1)
    refunds_refused.undo()
    reservation_cancel(reservation=refunded_one, user=refunded_one.user)  # refunded fine
    refused = reserve(batch=batch, quantity=2)
    refunds_refused.setattr(
        LocalProvider,
        "refund",
        lambda self, **kwargs: RefundResult(False, message="The issuer is unavailable."),
    )
    with django_capture_on_commit_callbacks(execute=True):  # the settlement's chunks
        batch_cancel(batch=batch, actor=UserFactory(), reason="Supplier fell through")
    refused.refresh_from_db()
    assert refused.status == ReservationStatus.RELEASED
    assert refused.deposit_refunded == 0
    event = PreorderEvent.objects.get(reservation=refused, to_status="released")
    assert event.note == (
        "Batch cancelled; nobody is charged; deposit refund of 40.00 pending"
        " (The issuer is unavailable.)"
    )
    assert "0.00 refunded" not in event.note
    refunded_one.refresh_from_db()
    assert refunded_one.deposit_refunded == Decimal("20.00")


# --- 6. a card a reservation will be charged with ------------------------------------------------


@pytest.mark.django_db
def test_the_card_a_held_reservation_needs_cannot_be_deleted_until_it_is_cancelled(client):
    batch = batch_open()
    user = UserFactory()
    card = card_save(user=user, card=CARD_OK)
    spare = card_save(user=user, card=CARD_OK)
    reservation = reserve(batch=batch, user=user, card_obj=card)
    client.force_login(user)
    delete = reverse("orders:saved_card_delete", args=[card.pk])

    html = client.post(delete, follow=True).content.decode()
    closes = timezone.localtime(batch.closes_at)
    assert f"your pre-order of {batch.product.name} (closes {closes:%-d %b %Y})" in html
    card.refresh_from_db()
    assert card.deleted_at is None
    client.post(reverse("orders:saved_card_delete", args=[spare.pk]))  # an unused one goes
    spare.refresh_from_db()
    assert spare.deleted_at is not None

    reservation_cancel(reservation=reservation, user=user)
    client.post(delete)
    card.refresh_from_db()
    assert card.deleted_at is not None


@pytest.mark.django_db
def test_a_failed_charge_within_its_grace_period_keeps_its_card():
    from preorders.selectors import reservation_card_uses

    batch = batch_open()
    reservation = reserve(batch=batch)
    Reservation.objects.filter(pk=reservation.pk).update(
        status=ReservationStatus.PAYMENT_FAILED, grace_until=timezone.now() + timedelta(days=2)
    )
    assert reservation_card_uses(card=reservation.saved_card) == [
        f"your pre-order of {batch.product.name} (to pay by"
        f" {timezone.localtime(timezone.now() + timedelta(days=2)):%-d %b %Y})"
    ]
    Reservation.objects.filter(pk=reservation.pk).update(
        grace_until=timezone.now() - timedelta(minutes=1)
    )
    assert reservation_card_uses(card=reservation.saved_card) == []
    assert not WaitlistEntry.objects.exists()


@pytest.mark.django_db
def test_lowering_the_quantity_notes_a_refused_refund_as_pending_not_refunded(refunds_refused):
    batch = batch_open(deposit="25.00")
    reservation = reserve(batch=batch, quantity=3)
    reservation_change(
        reservation=reservation,
        user=reservation.user,
        variant=reservation.variant,
        quantity=1,
    )
    reservation.refresh_from_db()
    assert reservation.quantity == 1 and reservation.deposit_refunded == 0
    notes = list(
        PreorderEvent.objects.filter(reservation=reservation).values_list("note", flat=True)
    )
    assert notes[-1] == "Deposit refund of 50.00 pending (The issuer is unavailable.)"
    # One refund asked of the provider, kept for payments' retry sweep.
    assert Refund.objects.filter(payment__reference=reservation.deposit_reference).count() == 1


@pytest.mark.django_db
def test_a_refused_bank_check_for_added_units_takes_back_only_those(client):
    batch = batch_open(cap=10, deposit="25.00")
    user = UserFactory()
    client.force_login(user)
    _reserve_page(client, batch, quantity=1, card=CARD_NEEDS_AUTH)
    reservation = Reservation.objects.get(user=user)
    _authenticate(client, reservation)
    client.post(
        reverse("preorders:reservation_change", args=[reservation.pk]),
        {"variant": reservation.variant_id, "quantity": 3},
    )
    html = _authenticate(client, reservation, decision="deny").content.decode()
    assert "The deposit for the extra units was not paid: you have 1 reserved." in html
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.HELD and reservation.quantity == 1
    assert reservation.deposit_paid == Decimal("25.00")
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 1


@pytest.mark.django_db(transaction=True)
def test_a_deposit_confirmed_after_the_batch_closed_is_refunded():
    """What the reservation owes was reckoned at the close without the unconfirmed deposit,
    so a bank that confirms it afterwards must not leave the fan paying it on top."""
    from payments.services import payment_refresh
    from preorders.services import batch_close

    batch = batch_open(min_quantity=1, deposit="25.00")
    reservation = reserve(batch=batch, card=CARD_NEEDS_AUTH)
    deposit = _deposits(reservation).get()
    assert deposit.status == PaymentStatus.REQUIRES_ACTION
    batch_close(batch=batch, force=True)  # settles at once (eager Celery)
    reservation.refresh_from_db()
    assert reservation.status not in (ReservationStatus.HELD, ReservationStatus.CHARGING)
    owed = reservation.amount_charged

    LocalProvider().authentication_complete(provider_ref=deposit.provider_ref, approved=True)
    payment_refresh(payment=deposit)

    deposit.refresh_from_db()
    reservation.refresh_from_db()
    assert deposit.status == PaymentStatus.REFUNDED and _net_deposit(reservation) == 0
    assert reservation.amount_charged == owed  # still owed in full, nothing paid twice
    assert "batch closed" in reservation.events.order_by("pk").last().note


@pytest.mark.django_db(transaction=True)
def test_paying_again_while_the_bank_waits_keeps_the_card_and_forgets_the_typed_ones(client):
    """Found by a hostile tester: with a charge waiting for 3-D Secure, paying with 4242
    switched the reservation's card (the 3184 card was still the one charged) and three
    parallel submits left three typed cards saved."""
    from preorders.services import batch_close

    batch = batch_open(min_quantity=1)
    reservation = reserve(batch=batch, card=CARD_NEEDS_AUTH)
    batch_close(batch=batch, force=True)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAYMENT_FAILED
    waiting_card = reservation.saved_card_id
    client.force_login(reservation.user)
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
    url = reverse("preorders:reservation_pay", args=[reservation.pk])

    def pay(index):
        other = Client()
        other.cookies[settings.SESSION_COOKIE_NAME] = cookies[settings.SESSION_COOKIE_NAME]
        return other.post(
            url,
            {
                "number": CARD_OK["number"],
                "exp_month": CARD_OK["exp_month"],
                "exp_year": CARD_OK["exp_year"],
                "cvc": CARD_OK["cvc"],
            },
        ).status_code

    statuses = _in_parallel(3, pay)

    assert statuses == [302, 302, 302]
    reservation.refresh_from_db()
    assert reservation.saved_card_id == waiting_card  # not switched under the bank's check
    assert reservation.status == ReservationStatus.PAYMENT_FAILED
    kept = SavedCard.objects.filter(user=reservation.user, deleted_at=None)
    assert list(kept.values_list("pk", flat=True)) == [waiting_card]  # typed ones forgotten
