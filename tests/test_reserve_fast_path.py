"""The reserve POST's fast path: the batch, its product and options come from the process's
copy (preorders.batch_cache), retired by every change of them; a copy older than a change
(a write that retired nothing) never admits what the batch row refuses, because the intake
decides on the row it locks: after the close, after the window, over the cap or the limit,
an option switched off."""

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payments.services import card_save
from preorders import batch_cache
from preorders.models import BatchStatus, PreorderBatch, PriceTier, Reservation, VariantCap
from preorders.selectors import batch_for_reserve
from preorders.services import batch_close
from tests.factories import UserFactory
from tests.preorders import batch_open
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db


def _post(client, batch, card, *, quantity=1, variant=None, key=None, **headers):
    data = {f"address-{name}": value for name, value in ADDRESS.items()}
    data.update(
        variant=(variant or batch.product.variants.order_by("pk").first()).pk,
        quantity=quantity,
        request_key=key or uuid.uuid4().hex,
        saved_card=card.pk,
    )
    data.update({k: headers.pop(k) for k in list(headers) if k.startswith("address-")})
    return client.post(reverse("preorders:reserve", args=[batch.slug]), data, **headers)


def _fan(client):
    user = UserFactory()
    client.force_login(user)
    return user, card_save(user=user, card=CARD_OK)


def _raw(sql: str, *params) -> None:
    """A write no service makes: it retires no copy, as a bug or a manual fix would."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _warm(client, batch, card) -> None:
    """Two reservations: the copy is kept from the second read on (the product's token is
    read before the row once the product is known)."""
    for _ in range(2):
        assert _post(client, batch, card).status_code == 302


def _reads(queries, table: str) -> list[str]:
    return [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]


def test_a_second_reserve_post_reads_neither_the_batch_nor_its_options(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    _warm(client, batch, card)
    variant = batch.product.variants.order_by("pk").first()
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, batch, card, variant=variant)
    assert response.status_code == 302
    assert not _reads(queries, "preorders_preorderbatch")
    assert not _reads(queries, "catalog_variant")
    # Only the posted card (the intake's own statements go on its raw connection).
    assert len([q for q in queries if q["sql"].startswith("SELECT")]) == 1, queries.captured_queries
    assert Reservation.objects.filter(batch=batch, user=user).count() == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("UPDATE preorders_preorderbatch SET status = 'settling' WHERE id = %s", "closed"),
        (
            "UPDATE preorders_preorderbatch SET opens_at = now() - interval '2 hours',"
            " closes_at = now() - interval '1 second' WHERE id = %s",
            "closed",
        ),
        ("UPDATE preorders_preorderbatch SET cap = reserved_units WHERE id = %s", "full"),
        ("UPDATE preorders_preorderbatch SET per_customer_limit = 1 WHERE id = %s", "At most 1"),
    ],
    ids=["closed", "window-over", "full", "limit-lowered"],
)
def test_a_stale_copy_of_the_batch_never_admits_what_its_row_refuses(client, change, message):
    batch = batch_open(cap=100, per_customer_limit=5)
    user, card = _fan(client)
    _warm(client, batch, card)
    _raw(change, batch.pk)
    stale = batch_for_reserve(slug=batch.slug)
    assert (stale.status, stale.cap, stale.per_customer_limit) == (BatchStatus.OPEN, 100, 5)

    response = _post(client, batch, card)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Reservation.objects.filter(batch=batch).count() == 2
    assert PreorderBatch.objects.get(pk=batch.pk).reserved_units == 2


def test_a_stale_copy_of_an_option_switched_off_is_refused(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    variant = batch.product.variants.order_by("pk").first()
    _warm(client, batch, card)
    _raw("UPDATE catalog_variant SET is_active = false WHERE id = %s", variant.pk)
    assert variant in batch_for_reserve(slug=batch.slug).product.active_variants

    response = _post(client, batch, card, variant=variant)

    assert response.status_code == 400
    assert "Choose one of this product" in response.content.decode()
    assert Reservation.objects.filter(batch=batch).count() == 2


def _token() -> str:
    return batch_cache.BATCH_STATIC.current()


def test_every_change_of_a_batch_a_tier_or_an_option_cap_retires_the_copies():
    batch = batch_open(cap=100)
    variant = batch.product.variants.first()
    changes = [
        lambda: PreorderBatch.objects.filter(pk=batch.pk).update(per_customer_limit=2),
        lambda: PriceTier.objects.create(batch=batch, min_quantity=500, unit_price="99.00"),
        lambda: PriceTier.objects.filter(batch=batch, min_quantity=500).delete(),
        lambda: VariantCap.objects.create(batch=batch, variant=variant, cap=3),
        lambda: batch_close(batch=batch, force=True),
    ]
    for change in changes:
        before = _token()
        change()
        assert _token() != before, change


def test_the_live_counters_retire_nothing():
    batch = batch_open(cap=100)
    before = _token()
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=3, offered_units=1)
    batch.refresh_from_db()
    batch.reserved_units = 4
    batch.save(update_fields=["reserved_units"])
    assert _token() == before


def test_the_close_through_the_service_shows_in_the_next_reserve_post(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    assert _post(client, batch, card).status_code == 302
    batch_close(batch=batch, force=True)
    assert batch_for_reserve(slug=batch.slug).status != BatchStatus.OPEN
    response = _post(client, batch, card)
    assert response.status_code == 400
    assert Reservation.objects.filter(batch=batch).count() == 1


def test_a_product_change_shows_in_the_copy(django_capture_on_commit_callbacks):
    from catalog.listing_version import product_changed

    batch = batch_open(cap=100)
    batch_for_reserve(slug=batch.slug)
    batch_for_reserve(slug=batch.slug)  # kept from the second read on
    batch.product.name = "Renamed kettle"
    batch.product.save()
    with django_capture_on_commit_callbacks(execute=True):
        product_changed(product_id=batch.product_id)
    assert batch_for_reserve(slug=batch.slug).product.name == "Renamed kettle"


def test_a_draft_is_not_found_even_when_it_was_open_before(client):
    batch = batch_open(cap=100)
    batch_for_reserve(slug=batch.slug)
    batch.status = BatchStatus.DRAFT
    batch.save(update_fields=["status"])
    user, card = _fan(client)
    assert _post(client, batch, card).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_stale_copy_is_refused_in_the_intake_blocks_too(client):
    """Outside a test transaction: the reservation goes through a committed intake block."""
    batch = batch_open(cap=100)
    user, card = _fan(client)
    _warm(client, batch, card)
    _raw("UPDATE preorders_preorderbatch SET status = 'settling' WHERE id = %s", batch.pk)
    assert batch_for_reserve(slug=batch.slug).status == BatchStatus.OPEN  # stale
    response = _post(client, batch, card)
    assert response.status_code == 400 and "closed" in response.content.decode()
    assert Reservation.objects.filter(batch=batch).count() == 2


def test_a_second_submit_of_one_form_gives_the_first_reservation(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    key = uuid.uuid4().hex
    first = _post(client, batch, card, key=key)
    second = _post(client, batch, card, key=key)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Reservation.objects.filter(batch=batch).count() == 1


def test_csrf_is_enforced(client):
    batch = batch_open(cap=100)
    checked = Client(enforce_csrf_checks=True)
    user, card = _fan(checked)
    assert _post(checked, batch, card).status_code == 403
    assert not Reservation.objects.filter(batch=batch).exists()


# --- answers without a flash message: htmx and JSON ------------------------------------------


def test_a_json_post_is_answered_with_the_reservation_and_no_message_cookie(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    key = uuid.uuid4().hex
    response = _post(client, batch, card, key=key, HTTP_ACCEPT="application/json")
    assert response.status_code == 201
    reservation = Reservation.objects.get(batch=batch, user=user)
    body = response.json()
    assert body["reserved"] is True and body["duplicate"] is False
    assert body["id"] == reservation.pk and body["url"] == reservation.get_absolute_url()
    assert "messages" not in response.cookies

    again = _post(client, batch, card, key=key, HTTP_ACCEPT="application/json")
    assert again.status_code == 200 and again.json()["id"] == reservation.pk
    assert again.json()["duplicate"] is True


def test_a_json_post_refused_says_why(client):
    batch = batch_open(cap=100, per_customer_limit=1)
    user, card = _fan(client)
    response = _post(client, batch, card, quantity=2, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["reserved"] is False and "At most 1" in " ".join(body["errors"]["__all__"])
    bad = _post(client, batch, card, HTTP_ACCEPT="application/json", **{"address-city": ""})
    assert bad.status_code == 400
    assert not Reservation.objects.filter(batch=batch).exists()


def test_an_htmx_post_gets_the_fragment(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    response = _post(client, batch, card, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    reservation = Reservation.objects.get(batch=batch, user=user)
    html = response.content.decode()
    assert "Reserved: 1 ×" in html and reservation.get_absolute_url() in html
    assert "<html" not in html and "messages" not in response.cookies


def test_a_plain_form_post_still_redirects_with_the_message(client):
    batch = batch_open(cap=100)
    user, card = _fan(client)
    response = _post(client, batch, card, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    reservation = Reservation.objects.get(batch=batch, user=user)
    assert response.status_code == 302 and response["Location"] == reservation.get_absolute_url()
    page = client.get(response["Location"])
    assert "Reserved: 1 ×" in page.content.decode()


def test_a_card_of_another_fan_is_refused(client):
    batch = batch_open(cap=100)
    _, theirs = _fan(Client())
    user, _ = _fan(client)
    response = _post(client, batch, theirs)
    assert response.status_code == 400
    assert not Reservation.objects.filter(batch=batch).exists()
