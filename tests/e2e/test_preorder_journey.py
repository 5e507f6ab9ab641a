"""Pre-orders in a real browser. A fan reserves in a batch (phone and desktop widths). And the
whole story: an operator creates a batch with a price ladder in the admin and publishes it,
one new fan reserves with 4242 and another with 4000 0000 0000 0341, the batch closes by
itself at its deadline (the beat's task), the first fan is charged the ladder price and sees
a paid order, the second gets the email to pay again, and the operator downloads the
production report."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from preorders.models import BatchStatus, PreorderBatch, Reservation, ReservationStatus
from preorders.services import batches_close_due
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page, base, user, password):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", password)
    page.locator("main form button[type=submit]").click()
    expect(page.locator("body")).to_contain_text("Sign out")


def _reserve(page, *, units: str, card: str) -> None:
    """Fill the batch page's reserve form with a new address and a new card, and submit."""
    page.fill("input[name=quantity]", units)
    for field, value in {
        "full_name": "Lin Chen",
        "line1": "1 Fan Street",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    }.items():
        page.fill(f"input[name=address-{field}]", value)
    for field, value in {
        "number": card,
        "exp_month": "12",
        "exp_year": "2031",
        "cvc": "123",
    }.items():
        page.fill(f"input[name={field}]", value)
    page.get_by_role("button", name="Reserve", exact=True).click()


def test_a_fan_reserves_and_sees_the_progress(live_server, page, password):
    product = ProductFactory(name="Nimbus X3", slug="nimbus-x3")
    VariantFactory(product=product, sku="X3-BLK", options={"colour": "Black"})
    batch = batch_open(product=product, min_quantity=5, cap=100)
    fan = UserFactory()
    base = live_server.url
    _sign_in(page, base, fan, password)

    page.goto(f"{base}/preorders/")
    page.get_by_role("link", name=re.compile(batch.title)).first.click()
    progress = page.locator("#batch-progress")
    expect(progress).to_contain_text("0 units reserved")
    expect(progress).to_contain_text("5 more units needed")
    expect(progress).to_contain_text("USD 179.00")  # the ladder's next tier

    _reserve(page, units="2", card="4242 4242 4242 4242")

    expect(page.locator("body")).to_contain_text("Reserved")
    reservation = Reservation.objects.get(user=fan)
    assert (reservation.status, reservation.quantity) == (ReservationStatus.HELD, 2)
    assert page.url.endswith(f"/preorders/reservations/{reservation.pk}/")
    page.goto(f"{base}/preorders/{batch.slug}/")
    expect(page.locator("#batch-progress")).to_contain_text("2 units reserved")
    expect(page.locator("#batch-progress")).to_contain_text("3 more units needed")
    page.goto(f"{base}/preorders/mine/")
    expect(page.locator("main")).to_contain_text(batch.title)


def test_operator_batch_closes_itself_charges_the_ladder_price_and_reports_production(
    live_server, desktop_page, browser, password
):
    brand = BrandFactory(name="Forge Audio", slug="forge")
    product = ProductFactory(name="Forge Studio", slug="forge-studio", brand=brand)
    VariantFactory(product=product, sku="FS-BLK", options={"colour": "Black"})
    operator = UserFactory(email="ops@forge.example", is_staff=True)
    operator.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["preorders", "orders"])
    )
    brand.operators.add(operator)
    base = live_server.url
    page = desktop_page

    # The operator creates the batch with a two-tier ladder and publishes it.
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", operator.email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.goto(f"{base}/admin/preorders/preorderbatch/add/")
    page.select_option("#id_product", label="Forge Studio")
    page.locator("#id_title").press_sequentially("Forge Studio, first run")
    expect(page.locator("#id_slug")).to_have_value("forge-studio-first-run")  # from the title
    now = timezone.localtime()
    closes = now + timedelta(days=3)
    page.fill("#id_opens_at_0", now.strftime("%Y-%m-%d"))
    page.fill("#id_opens_at_1", (now - timedelta(minutes=5)).strftime("%H:%M:%S"))
    page.fill("#id_closes_at_0", closes.strftime("%Y-%m-%d"))
    page.fill("#id_closes_at_1", closes.strftime("%H:%M:%S"))
    page.fill("#id_estimated_ship_date", (now + timedelta(days=60)).strftime("%Y-%m-%d"))
    page.fill("#id_min_quantity", "3")
    page.fill("#id_tiers-0-min_quantity", "1")
    page.fill("#id_tiers-0-unit_price", "300.00")
    page.fill("#id_tiers-1-min_quantity", "3")
    page.fill("#id_tiers-1-unit_price", "250.00")
    page.click("input[name=_continue]")
    errors = page.locator(".errorlist, .errornote").all_inner_texts()
    assert not errors, errors
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    page.get_by_role("link", name="Publish").click()
    page.locator("input[type=submit]").click()
    batch = PreorderBatch.objects.get(title="Forge Studio, first run")
    assert batch.status == BatchStatus.OPEN

    # Two new fans reserve: one card pays, one is declined when charged at the close.
    fans = []
    for units, card in (("2", "4242 4242 4242 4242"), ("1", "4000 0000 0000 0341")):
        fan = UserFactory()
        fans.append(fan)
        context = browser.new_context(viewport={"width": 390, "height": 844})
        shopper = context.new_page()
        shopper.set_default_timeout(15_000)
        _sign_in(shopper, base, fan, password)
        shopper.goto(f"{base}/preorders/{batch.slug}/")
        _reserve(shopper, units=units, card=card)
        expect(shopper.locator("body")).to_contain_text("Reserved")
        context.close()
    batch.refresh_from_db()
    assert batch.reserved_units == 3

    # The deadline passes; the beat's task closes the batch and settles it.
    with time_machine.travel(batch.closes_at + timedelta(seconds=1)):
        assert batches_close_due() == 1
    batch.refresh_from_db()
    assert (batch.status, batch.final_unit_price) == (BatchStatus.CONFIRMED, Decimal("250.00"))

    paid, declined = (Reservation.objects.get(user=fan) for fan in fans)
    assert paid.status == ReservationStatus.CHARGED
    assert paid.order.status == OrderStatus.PAID and paid.order.total == Decimal("500.00")
    assert declined.status == ReservationStatus.PAYMENT_FAILED
    retry = [m for m in mail.outbox if m.to == [fans[1].email] and "needs a payment" in m.subject]
    assert retry and f"/preorders/reservations/{declined.pk}/" in retry[0].body

    # The first fan sees the paid order at the ladder price.
    context = browser.new_context(viewport={"width": 390, "height": 844})
    shopper = context.new_page()
    _sign_in(shopper, base, fans[0], password)
    shopper.goto(f"{base}/orders/")
    expect(shopper.locator("main")).to_contain_text(paid.order.number)
    shopper.goto(f"{base}{paid.order.get_absolute_url()}")
    expect(shopper.locator("main")).to_contain_text("500.00")
    expect(shopper.locator("main")).to_contain_text("Paid")
    context.close()

    # The operator sees the orders and downloads the production report.
    page.goto(f"{base}/admin/orders/order/")
    expect(page.locator("#result_list")).to_contain_text(paid.order.number)
    page.goto(f"{base}/admin/preorders/preorderbatch/{batch.pk}/change/")
    page.get_by_role("link", name="Production report").click()
    expect(page.locator("#content")).to_contain_text("FS-BLK")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][0].lower().startswith("sku")
    fs = next(row for row in rows if row[0] == "FS-BLK")
    assert "2" in fs  # two units paid, to be made
    assert Order.objects.filter(paid_through__startswith="preorder-res:").count() == 1
