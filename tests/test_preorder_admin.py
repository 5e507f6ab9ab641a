"""The operators' side of pre-order batches: scoping, setting a batch up with its ladder,
the actions (each one service), the production report and the exports."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.messages import ERROR, SUCCESS
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from audit.selectors import audit_entries_visible
from catalog.exports import export_job_run
from catalog.models import ExportJob
from preorders.models import (
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    PriceTier,
    Reservation,
    ReservationStatus,
    VariantCap,
)
from preorders.reports import (
    production_csv_rows,
    production_report,
    reservations_csv_rows,
)
from preorders.services import waitlist_join
from storefront.demo import OPERATOR_PERMISSIONS
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import CARD_DECLINED_ON_CHARGE, batch_open, reserve

pytestmark = pytest.mark.django_db

BATCHES = "/admin/preorders/preorderbatch/"
RESERVATIONS = "/admin/preorders/reservation/"


def _operator(brand, codenames=None):
    """A staff user of `brand` with the demo operators' pre-order permissions."""
    user = UserFactory(is_staff=True)
    codenames = OPERATOR_PERMISSIONS["preorders"] if codenames is None else codenames
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="preorders", codename__in=codenames)
    )
    brand.operators.add(user)
    return type(user).objects.get(pk=user.pk)  # fresh permission cache


def _product(brand, name):
    product = ProductFactory(brand=brand, name=name)
    for colour in ("Black", "White"):
        VariantFactory(product=product, options={"colour": colour})
    return product


@pytest.fixture
def worlds():
    mine, theirs = BrandFactory(name="Mine"), BrandFactory(name="Theirs")
    my_batch = batch_open(product=_product(mine, "Mine phone"))
    their_batch = batch_open(product=_product(theirs, "Theirs phone"), cap=1)
    reserve(batch=my_batch, user=UserFactory(email="mine-fan@example.com"))
    reserve(batch=their_batch, user=UserFactory(email="theirs-fan@example.com"))
    waitlist_join(
        batch=their_batch,
        user=UserFactory(email="theirs-waiter@example.com"),
        variant=their_batch.product.variants.first(),
        quantity=1,
    )
    return my_batch, their_batch, _operator(mine)


def _messages(response):
    return [(m.level, m.message) for m in response.context["messages"]]


def _action(client, action, batches, **extra):
    return client.post(
        BATCHES,
        {"action": action, "_selected_action": [b.pk for b in batches], **extra},
        follow=True,
    )


# --- scoping --------------------------------------------------------------------------------


def test_operator_sees_only_their_brands_batches_reservations_and_waitlist(client, worlds):
    my_batch, their_batch, operator = worlds
    client.force_login(operator)
    page = client.get(BATCHES).content.decode()
    assert my_batch.title in page and their_batch.title not in page
    assert "<meter" in page and "Production report" in page
    assert client.get(f"{BATCHES}?q=phone").context["cl"].result_count == 1
    page = client.get(RESERVATIONS).content.decode()
    assert "mine-fan@example.com" in page and "theirs-fan@example.com" not in page
    # The batch filter lists only batches the operator can see.
    assert their_batch.title not in page
    assert client.get("/admin/preorders/waitlistentry/").context["cl"].result_count == 0


def test_superuser_sees_every_batch(admin_client, worlds):
    my_batch, their_batch, _ = worlds
    page = admin_client.get(BATCHES).content.decode()
    assert my_batch.title in page and their_batch.title in page


def test_another_brands_batch_and_its_pages_do_not_exist_for_an_operator(client, worlds):
    my_batch, their_batch, operator = worlds
    their_reservation = their_batch.reservations.get()
    client.force_login(operator)
    for url in (
        f"{BATCHES}{their_batch.pk}/change/",
        f"{RESERVATIONS}{their_reservation.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == "/admin/", url
    for url in (
        f"{BATCHES}{their_batch.pk}/production/",
        f"{BATCHES}{their_batch.pk}/production.csv",
        f"{BATCHES}{their_batch.pk}/operate/close/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"{BATCHES}{their_batch.pk}/production.csv").status_code == 404
    assert not ExportJob.objects.exists()
    response = client.post(f"{BATCHES}{their_batch.pk}/operate/cancel/", {"reason": "mine now"})
    assert response.status_code == 404
    # Actions with another brand's ids do nothing to it.
    _action(client, "cancel", [their_batch], confirm="yes")
    their_batch.refresh_from_db()
    assert their_batch.status == BatchStatus.OPEN
    # Their own pages work.
    assert client.get(f"{BATCHES}{my_batch.pk}/change/").status_code == 200
    assert client.get(f"{BATCHES}{my_batch.pk}/production/").status_code == 200


def test_staff_without_pre_order_permissions_cannot_read_the_report(client, worlds):
    my_batch, _, _ = worlds
    stranger = _operator(my_batch.product.brand, codenames=[])
    client.force_login(stranger)
    assert client.get(f"{BATCHES}{my_batch.pk}/production/").status_code == 403
    assert client.get(f"{BATCHES}{my_batch.pk}/operate/close/").status_code == 403
    assert client.get(BATCHES).status_code == 403


def test_viewer_cannot_operate(client, worlds):
    my_batch, _, _ = worlds
    viewer = _operator(my_batch.product.brand, codenames=["view_preorderbatch"])
    client.force_login(viewer)
    assert client.get(f"{BATCHES}{my_batch.pk}/production/").status_code == 200
    assert client.post(f"{BATCHES}{my_batch.pk}/operate/cancel/").status_code == 403
    _action(client, "cancel", [my_batch], confirm="yes")
    my_batch.refresh_from_db()
    assert my_batch.status == BatchStatus.OPEN


# --- setting a batch up ---------------------------------------------------------------------


def _inline(prefix, rows, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for n, row in enumerate(rows):
        data.update({f"{prefix}-{n}-{key}": value for key, value in row.items()})
    return data


def _batch_data(product, overrides=()):
    opens = timezone.now() - timedelta(minutes=1)
    closes = timezone.now() + timedelta(days=10)
    data = {
        "product": product.pk,
        "title": "Mine Z1 first batch",
        "slug": "mine-z1-first-batch",
        "description": "The first run.",
        "opens_at_0": f"{opens:%Y-%m-%d}",
        "opens_at_1": f"{opens:%H:%M:%S}",
        "closes_at_0": f"{closes:%Y-%m-%d}",
        "closes_at_1": f"{closes:%H:%M:%S}",
        "estimated_ship_date": f"{closes + timedelta(days=30):%Y-%m-%d}",
        "min_quantity": "10",
        "cap": "100",
        "per_customer_limit": "3",
        "deposit_per_unit": "0.00",
        "deposit_refundable": "on",
        **_inline(
            "tiers",
            [
                {"min_quantity": "1", "unit_price": "299.00"},
                {"min_quantity": "20", "unit_price": "269.00"},
                {"min_quantity": "50", "unit_price": "249.00"},
            ],
        ),
        **_inline("variant_caps", [{"variant": product.variants.first().pk, "cap": "40"}]),
    }
    data.update(dict(overrides))
    return data


def test_operator_creates_a_batch_with_its_ladder_then_publishes_it(client, worlds):
    my_batch, their_batch, operator = worlds
    product = _product(my_batch.product.brand, "Mine Z1")
    client.force_login(operator)
    form = client.get(f"{BATCHES}add/").content.decode()
    product_select = re.search(r'<select name="product".*?</select>', form, re.S).group(0)
    assert f'value="{product.pk}"' in product_select
    assert f'value="{their_batch.product_id}"' not in product_select

    response = client.post(f"{BATCHES}add/", _batch_data(product))
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    batch = PreorderBatch.objects.get(slug="mine-z1-first-batch")
    assert batch.status == BatchStatus.DRAFT and batch.reserved_units == 0
    assert list(batch.tiers.values_list("min_quantity", "unit_price")) == [
        (1, Decimal("299.00")),
        (20, Decimal("269.00")),
        (50, Decimal("249.00")),
    ]
    cap = VariantCap.objects.get(batch=batch)
    assert cap.cap == 40
    capped = AuditEntry.objects.get(action="variantcap.create")
    assert (capped.actor, capped.object_id, capped.after) == (
        operator,
        str(cap.pk),
        {"variant_id": cap.variant_id, "cap": 40},
    )
    assert AuditEntry.objects.filter(action="pricetier.create").count() == 3
    assert not audit_entries_visible(user=_operator(their_batch.product.brand)).exists()

    # Editing it: the option caps offer only this product's options.
    page = client.get(f"{BATCHES}{batch.pk}/change/").content.decode()
    caps_select = re.search(
        r'<select name="variant_caps-__prefix__-variant".*?</select>', page, re.S
    )
    options = set(re.findall(r'<option value="(\d+)"', caps_select.group(0)))
    assert options == {str(pk) for pk in product.variants.values_list("pk", flat=True)}
    assert "Publish" in page and f"{BATCHES}{batch.pk}/operate/publish/" in page

    response = _action(client, "publish", [batch])
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN  # the window has started
    assert (SUCCESS, f"{batch.title}: published, now open.") in _messages(response)
    assert PreorderEvent.objects.get(batch=batch).actor == operator


def test_a_bad_batch_is_refused_with_form_errors(client, worlds):
    my_batch, their_batch, operator = worlds
    product = _product(my_batch.product.brand, "Mine Z1")
    client.force_login(operator)
    cases = [
        ({"tiers-0-min_quantity": "2"}, "The first price tier must start from 1 unit."),
        ({"tiers-1-unit_price": "399.00"}, "cannot be higher"),
        ({"cap": "5"}, "The cap cannot be below the minimum to confirm."),
        ({"closes_at_0": "2001-01-01"}, "The batch must close after it opens."),
        ({"deposit_per_unit": "260.00"}, "The deposit per unit must be below"),
        ({"variant_caps-0-variant": str(my_batch.product.variants.first().pk)}, "this batch"),
        ({"product": str(their_batch.product_id)}, "Select a valid choice"),
    ]
    for change, error in cases:
        response = client.post(f"{BATCHES}add/", _batch_data(product, change))
        assert response.status_code == 200, change
        assert error in response.content.decode(), change
    assert not PreorderBatch.objects.filter(slug="mine-z1-first-batch").exists()


def _cap_choices(html):
    """The variant ids the option caps' (empty) row offers."""
    select = re.search(r'<select name="variant_caps-__prefix__-variant".*?</select>', html, re.S)
    return set(re.findall(r'<option value="(\d+)"', select.group(0)))


def _ids(product):
    return {str(pk) for pk in product.variants.values_list("pk", flat=True)}


def test_the_caps_offer_only_the_chosen_products_options(client, worlds):
    my_batch, their_batch, operator = worlds
    product = _product(my_batch.product.brand, "Mine Z1")
    client.force_login(operator)
    page = client.get(f"{BATCHES}add/?product={product.pk}").content.decode()
    assert _cap_choices(page) == _ids(product)
    # No product chosen yet: the options of the operator's brands only.
    choices = _cap_choices(client.get(f"{BATCHES}add/").content.decode())
    assert choices == _ids(product) | _ids(my_batch.product)

    # Another product's option posted with the new batch, even when the product was switched
    # in the same submit: refused on the page, nothing saved.
    for other in (my_batch.product, their_batch.product):
        data = _batch_data(product, {"variant_caps-0-variant": other.variants.first().pk})
        response = client.post(f"{BATCHES}add/?product={other.pk}", data)
        assert response.status_code == 200
        html = response.content.decode()
        assert "Choose an option of this batch&#x27;s product." in html
        assert _cap_choices(html) == _ids(product)
    # A product that is no id is a form error too, not a crash.
    response = client.post(f"{BATCHES}add/", _batch_data(product, {"product": "abc"}))
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not PreorderBatch.objects.filter(slug="mine-z1-first-batch").exists()
    assert not VariantCap.objects.exists()

    # Editing a batch being set up: only its product's options, another one is refused.
    PreorderBatch.objects.filter(pk=my_batch.pk).update(status=BatchStatus.SCHEDULED)
    page = client.get(f"{BATCHES}{my_batch.pk}/change/")
    assert _cap_choices(page.content.decode()) == _ids(my_batch.product)
    data = _change_data(page)
    data.update(
        {
            "variant_caps-TOTAL_FORMS": "1",
            "variant_caps-0-variant": str(product.variants.first().pk),
            "variant_caps-0-cap": "5",
            "min_quantity": "7",
        }
    )
    response = client.post(f"{BATCHES}{my_batch.pk}/change/", data)
    assert response.status_code == 200
    assert "Choose an option of this batch&#x27;s product." in response.content.decode()
    assert not VariantCap.objects.exists()
    my_batch.refresh_from_db()
    assert my_batch.min_quantity == 5


def test_the_window_and_ladder_are_read_only_once_open(client, worlds):
    my_batch, _, operator = worlds
    client.force_login(operator)
    page = client.get(f"{BATCHES}{my_batch.pk}/change/")
    html = page.content.decode()
    assert 'name="closes_at_0"' not in html and 'name="tiers-0-unit_price"' not in html
    assert 'name="min_quantity"' not in html and 'name="status"' not in html
    assert 'name="estimated_ship_date"' in html  # a production delay can still be posted
    tiers_before = list(my_batch.tiers.values_list("min_quantity", "unit_price"))
    data = {
        "description": "Now with a case.",
        "estimated_ship_date": "2031-01-01",
        "closes_at_0": "2031-01-01",
        "closes_at_1": "00:00:00",
        "min_quantity": "1",
        "status": BatchStatus.CONFIRMED,
        "reserved_units": "999",
    }
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(n): management[n].value() for n in management.fields})
    data["tiers-0-unit_price"] = "1.00"
    data["tiers-0-min_quantity"] = "1"
    data["tiers-0-id"] = str(my_batch.tiers.first().pk)
    response = client.post(f"{BATCHES}{my_batch.pk}/change/", data)
    assert response.status_code == 302
    before_closes = my_batch.closes_at
    my_batch.refresh_from_db()
    assert my_batch.description == "Now with a case."
    assert str(my_batch.estimated_ship_date) == "2031-01-01"
    assert my_batch.closes_at == before_closes
    assert my_batch.min_quantity == 5 and my_batch.reserved_units == 1
    assert my_batch.status == BatchStatus.OPEN
    assert list(my_batch.tiers.values_list("min_quantity", "unit_price")) == tiers_before


def _change_data(page):
    """What the change form would post back, as rendered."""
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    for name in ("opens_at", "closes_at"):
        if name in data:
            value = timezone.localtime(data.pop(name))
            data[f"{name}_0"], data[f"{name}_1"] = f"{value:%Y-%m-%d}", f"{value:%H:%M:%S}"
    for key in ("close_when_full", "deposit_refundable"):
        if data.get(key) is False:
            data.pop(key)
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(n): management[n].value() for n in management.fields})
        for inline_form in formset.formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                if value is not None and value is not False:
                    data[inline_form.add_prefix(name)] = value
    return data


def test_a_scheduled_batch_can_be_edited_but_keeps_a_ladder(client, worlds):
    my_batch, _, operator = worlds
    PreorderBatch.objects.filter(pk=my_batch.pk).update(status=BatchStatus.SCHEDULED)
    client.force_login(operator)
    page = client.get(f"{BATCHES}{my_batch.pk}/change/")
    assert 'name="closes_at_0"' in page.content.decode()
    data = _change_data(page)
    data.update({"min_quantity": "8", "tiers-1-unit_price": "175.00"})
    response = client.post(f"{BATCHES}{my_batch.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    my_batch.refresh_from_db()
    assert my_batch.min_quantity == 8 and my_batch.status == BatchStatus.SCHEDULED
    assert my_batch.reserved_units == 1  # the counter is never written by the form
    tier = my_batch.tiers.get(min_quantity=10)
    assert tier.unit_price == Decimal("175.00")
    entry = AuditEntry.objects.get(action="pricetier.edit")  # the ladder's one changed rung
    assert (entry.actor, entry.brand_id, entry.object_id) == (
        operator,
        my_batch.product.brand_id,
        str(tier.pk),
    )
    assert (entry.before, entry.after) == ({"unit_price": "179.00"}, {"unit_price": "175.00"})
    assert entry.parent_object_id == str(my_batch.pk)  # on the batch's history

    # Removing every tier of a published batch is refused.
    data = _change_data(client.get(f"{BATCHES}{my_batch.pk}/change/"))
    data.update({f"tiers-{n}-DELETE": "on" for n in range(3)})
    response = client.post(f"{BATCHES}{my_batch.pk}/change/", data)
    assert response.status_code == 200
    assert "A published batch needs at least one price tier." in response.content.decode()
    assert my_batch.tiers.count() == 3
    assert not AuditEntry.objects.filter(action="pricetier.delete").exists()


# --- the actions ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_close_now_confirms_the_batch_and_the_production_report_shows_what_to_make(client):
    brand = BrandFactory(name="Mine")
    operator = _operator(brand)
    batch = batch_open(product=_product(brand, "Mine phone"), min_quantity=5)
    black, white = batch.product.variants.order_by("pk")
    reserve(batch=batch, variant=black, quantity=3)
    reserve(batch=batch, variant=black, quantity=1)
    reserve(batch=batch, variant=white, quantity=2)
    failed = reserve(batch=batch, variant=white, quantity=1, card=CARD_DECLINED_ON_CHARGE)
    client.force_login(operator)

    # First the operator is asked, with what will happen.
    response = client.post(BATCHES, {"action": "close_now", "_selected_action": [batch.pk]})
    assert response.status_code == 200
    assert "the minimum is reached: confirmed at $199.00" in " ".join(
        response.content.decode().split()
    )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.OPEN

    response = _action(client, "close_now", [batch], confirm="yes")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CONFIRMED  # eager Celery settled it at once
    assert batch.final_unit_price == Decimal("199.00")
    assert _messages(response) == [
        (SUCCESS, f"{batch.title}: closed with 7 of 5 units, confirmed at $199.00 per unit.")
    ]
    failed.refresh_from_db()
    assert failed.status == ReservationStatus.PAYMENT_FAILED
    assert PreorderEvent.objects.filter(
        batch=batch, actor=operator, to_status=BatchStatus.SETTLING
    ).exists()

    lines = {line.sku: line for line in production_report(batch=batch)}
    assert (lines[black.sku].paid_units, lines[black.sku].awaiting_units) == (4, 0)
    assert (lines[white.sku].paid_units, lines[white.sku].awaiting_units) == (2, 1)
    assert lines[white.sku].paid_amount == Decimal("398.00")

    page = client.get(f"{BATCHES}{batch.pk}/production/")
    assert page.status_code == 200
    html = " ".join(page.content.decode().split())
    assert f"<td>{black.sku}</td> <td>Black</td> <td>4</td> <td>796.00</td> <td>0</td>" in html
    assert f"<td>{white.sku}</td> <td>White</td> <td>2</td> <td>398.00</td> <td>1</td>" in html
    assert f"{BATCHES}{batch.pk}/production.csv" in html

    # The CSV: a worker writes it (an export job of the batch's brand), the exports page
    # offers it; a GET only leads back to the report, it starts nothing.
    csv_url = f"{BATCHES}{batch.pk}/production.csv"
    assert client.get(csv_url)["Location"] == f"{BATCHES}{batch.pk}/production/"
    assert not ExportJob.objects.exists()
    response = client.post(csv_url, follow=True)  # (the page shows its message)
    assert response.redirect_chain[0][0] == reverse("admin:catalog_exportjob_changelist")
    job = ExportJob.objects.get()
    assert (job.user, job.brand, job.kind) == (operator, brand, "preorders.production")
    export_job_run(job_id=job.pk)  # (already run by the eager worker: a second run is a no-op)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 3, 3)
    response = client.get(reverse("admin:catalog_exportjob_download", args=[job.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert f"{batch.slug}-production.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        [
            "sku",
            "option",
            "units_paid",
            "amount_paid",
            "units_awaiting_payment",
            "units_not_charged_yet",
        ],
        [black.sku, "Black", "4", "796.00", "0", "0"],
        [white.sku, "White", "2", "398.00", "1", "0"],
        ["", "Total", "6", "1194.00", "1", "0"],
    ]

    # Confirmed: now it can be marked fulfilled, and not closed or cancelled again.
    response = _action(client, "close_now", [batch], confirm="yes")
    assert _messages(response)[0][0] == ERROR
    response = _action(client, "mark_fulfilled", [batch])
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FULFILLED
    assert (SUCCESS, f"{batch.title}: marked fulfilled.") in _messages(response)


@pytest.mark.django_db(transaction=True)
def test_cancel_batch_releases_everyone_and_refunds_deposits(client):
    brand = BrandFactory(name="Mine")
    operator = _operator(brand)
    batch = batch_open(product=_product(brand, "Mine phone"), min_quantity=2, deposit="20.00")
    reservations = [reserve(batch=batch, quantity=2) for _ in range(3)]
    client.force_login(operator)

    page = client.get(f"{BATCHES}{batch.pk}/change/").content.decode()
    assert f"{BATCHES}{batch.pk}/operate/cancel/" in page
    confirm = client.get(f"{BATCHES}{batch.pk}/operate/cancel/")
    assert "3 reservations will be released" in " ".join(confirm.content.decode().split())

    response = client.post(
        f"{BATCHES}{batch.pk}/operate/cancel/", {"reason": "Supplier fell through"}, follow=True
    )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert _messages(response) == [(SUCCESS, f"{batch.title}: cancelled; nobody is charged.")]
    for reservation in reservations:
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.RELEASED
        assert reservation.deposit_refunded == Decimal("40.00")
    event = PreorderEvent.objects.get(batch=batch, to_status=BatchStatus.CANCELLING)
    assert (event.actor, event.note) == (operator, "Supplier fell through")
    lines = production_report(batch=batch)
    assert sum(line.paid_units + line.open_units for line in lines) == 0


def test_cancel_action_asks_first_then_cancels(client, worlds):
    my_batch, _, operator = worlds
    draft = batch_open(product=my_batch.product)
    PreorderBatch.objects.filter(pk=draft.pk).update(status=BatchStatus.DRAFT)
    client.force_login(operator)
    response = client.post(BATCHES, {"action": "cancel", "_selected_action": [draft.pk]})
    assert response.status_code == 200 and "Reason" in response.content.decode()
    response = _action(client, "cancel", [draft], confirm="yes", reason="Too early")
    draft.refresh_from_db()
    assert draft.status == BatchStatus.CANCELLED
    assert PreorderEvent.objects.get(batch=draft).note == "Too early"


@pytest.mark.parametrize(
    "status, action",
    [
        (BatchStatus.OPEN, "publish"),
        (BatchStatus.OPEN, "mark_fulfilled"),
        (BatchStatus.DRAFT, "close_now"),
        (BatchStatus.SETTLING, "cancel"),
        (BatchStatus.CONFIRMED, "cancel"),
        (BatchStatus.CANCELLED, "publish"),
        (BatchStatus.FULFILLED, "mark_fulfilled"),
    ],
)
def test_an_action_in_the_wrong_state_shows_an_error_and_changes_nothing(
    client, worlds, status, action
):
    my_batch, _, operator = worlds
    PreorderBatch.objects.filter(pk=my_batch.pk).update(status=status)
    events = PreorderEvent.objects.count()
    client.force_login(operator)
    response = _action(client, action, [my_batch], confirm="yes")
    assert response.status_code == 200
    [(level, message)] = _messages(response)
    assert level == ERROR and message.startswith(f"{my_batch.title}: ")
    my_batch.refresh_from_db()
    assert my_batch.status == status
    assert PreorderEvent.objects.count() == events
    assert my_batch.closed_at is None


def test_publish_lists_what_is_missing(client, worlds):
    my_batch, _, operator = worlds
    PreorderBatch.objects.filter(pk=my_batch.pk).update(status=BatchStatus.DRAFT)
    PriceTier.objects.filter(batch=my_batch).delete()
    client.force_login(operator)
    response = client.post(f"{BATCHES}{my_batch.pk}/operate/publish/", follow=True)
    assert _messages(response) == [(ERROR, f"{my_batch.title}: Add at least one price tier.")]
    my_batch.refresh_from_db()
    assert my_batch.status == BatchStatus.DRAFT


def test_close_due_batches_command(worlds):
    my_batch, their_batch, _ = worlds
    scheduled = batch_open(product=my_batch.product, closes_in=timedelta(days=8))
    PreorderBatch.objects.filter(pk=scheduled.pk).update(status=BatchStatus.SCHEDULED)
    out = io.StringIO()
    with time_machine.travel(my_batch.closes_at + timedelta(seconds=1)):
        call_command("close_due_batches", stdout=out)
    assert out.getvalue().strip() == "1 batch(es) opened, 2 batch(es) closed."
    my_batch.refresh_from_db()
    assert my_batch.status == BatchStatus.CANCELLING  # 1 of 5 units: settles on commit


# --- reservations ---------------------------------------------------------------------------


def test_reservations_are_read_only_and_export_to_csv(client, worlds):
    my_batch, their_batch, operator = worlds
    mine = reserve(batch=my_batch, quantity=2, user=UserFactory(email="=cmd@example.com"))
    theirs = their_batch.reservations.get()
    client.force_login(operator)
    page = client.get(f"{RESERVATIONS}{mine.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="status"' not in html and 'name="amount_charged"' not in html
    assert 'name="_save"' not in html
    assert client.get(f"{RESERVATIONS}add/").status_code == 403
    client.post(f"{RESERVATIONS}{mine.pk}/change/", {"status": "charged", "quantity": "5"})
    mine.refresh_from_db()
    assert (mine.status, mine.quantity) == (ReservationStatus.HELD, 2)

    assert client.get(f"{RESERVATIONS}?q=example.com").context["cl"].result_count == 2
    response = client.post(
        RESERVATIONS,
        {"action": "export_csv", "_selected_action": [mine.pk, theirs.pk], "index": "0"},
    )
    # A worker writes the file: the action queues an export job of the operator's brand
    # only and leads to the exports page, where the file is offered once it is done.
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:catalog_exportjob_changelist")
    job = ExportJob.objects.get()
    assert (job.user, job.brand, job.status) == (operator, my_batch.product.brand, "queued")
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 1, 1)
    page = client.get(reverse("admin:catalog_exportjob_changelist"))
    download = reverse("admin:catalog_exportjob_download", args=[job.pk])
    assert download in page.content.decode()
    response = client.get(download)
    assert response["Content-Disposition"] == 'attachment; filename="reservations.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    before = reservations_csv_rows(reservations=Reservation.objects.filter(pk=mine.pk))
    assert rows == [[str(value) for value in row] for row in before]  # the CSV as before
    assert rows[0][:4] == ["id", "created_at", "email", "batch"]
    assert [row[0] for row in rows[1:]] == [str(mine.pk)]
    assert rows[1][2] == "'=cmd@example.com"  # never a formula in a spreadsheet
    assert rows[1][6:8] == ["2", "held"]


# --- query counts ---------------------------------------------------------------------------


def test_production_report_is_one_query_whatever_the_size(django_assert_num_queries):
    batch = batch_open(product=_product(BrandFactory(), "Phone"), min_quantity=1)
    with django_assert_num_queries(1):
        production_report(batch=batch)
    for n in range(3):
        VariantFactory(product=batch.product, options={"colour": f"Extra {n}"})
    variants = list(batch.product.variants.all())
    for n in range(10):
        reserve(batch=batch, variant=variants[n % len(variants)])
    with django_assert_num_queries(1):
        lines = production_report(batch=batch)
    assert sum(line.open_units for line in lines) == 10 and len(lines) == 5
    with django_assert_num_queries(1):
        rows = list(production_csv_rows(lines=production_report(batch=batch)))
    assert len(rows) == 1 + 5 + 1  # the header, a line per variant, the totals


def _count(client, url):
    """The queries of a warm request: the first one after a change may refill caches that
    the change retired (the header's cart count, per-version fragments), counted once."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_report_and_list_pages_keep_a_fixed_query_count(client, worlds):
    my_batch, _, operator = worlds
    client.force_login(operator)
    report = f"{BATCHES}{my_batch.pk}/production/"
    pages = [report, BATCHES, RESERVATIONS]
    before = {url: _count(client, url) for url in pages}
    for n in range(3):
        VariantFactory(product=my_batch.product, options={"colour": f"Extra {n}"})
    for variant in my_batch.product.variants.all():
        reserve(batch=my_batch, variant=variant)
    for _ in range(3):
        reserve(batch=batch_open(product=my_batch.product))
    after = {url: _count(client, url) for url in pages}
    assert after == before
    assert before[report] <= 6, before
    # The change page does not grow with the reservations either (batch events only).
    change = f"{BATCHES}{my_batch.pk}/change/"
    first = _count(client, change)
    for _ in range(3):
        reserve(batch=my_batch)
    assert _count(client, change) == first
