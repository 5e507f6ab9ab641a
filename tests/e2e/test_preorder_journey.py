"""A brand operator's pre-order, in a real browser, with a real Celery worker settling it: the
operator creates a product and a batch with a price ladder in the admin and publishes it; one
new fan reserves with 4242 and another with 4000 0000 0000 0341; the operator closes the batch
now; the worker charges the ladder price reached (the first fan sees a paid order) and mails
the second a link to pay again; the operator sees the orders and exports the production
report. (A fan reserving at phone width is part of tests/e2e/test_shopper_journey.py.)"""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from catalog.models import ExportJob
from orders.models import Order, OrderStatus
from preorders.models import BatchStatus, PreorderBatch, Reservation, ReservationStatus
from tests.e2e.steps import (
    CARD_DECLINED_ON_CHARGE,
    CARD_OK,
    admin_add_product,
    admin_sign_in,
    reserve,
    sign_in,
)
from tests.factories import UserFactory
from tests.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_creates_a_batch_closes_it_and_the_worker_charges_the_ladder_price(
    live_server, desktop_page, browser, password, operator, mailbox, live_worker
):
    base = live_server.url
    page = desktop_page
    admin_sign_in(page, base, operator.email, password)
    admin_add_product(
        page,
        base,
        brand="Forge Audio",
        name="Forge Studio",
        category="Headphones",
        sku="FS-BLK",
        colour="Black",
        price="320.00",
        stock="0",
    )

    # The batch with a two-tier ladder, published.
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

    # Two fans reserve at phone width: one card pays, one is declined when charged.
    fans = []
    for units, card in (("2", CARD_OK), ("1", CARD_DECLINED_ON_CHARGE)):
        fan = UserFactory()
        fans.append(fan)
        context = browser.new_context(viewport={"width": 390, "height": 844})
        shopper = context.new_page()
        shopper.set_default_timeout(15_000)
        sign_in(shopper, base, fan.email, password)
        shopper.goto(f"{base}/preorders/{batch.slug}/")
        expect(shopper.locator("#batch-progress")).to_contain_text("$250.00")  # next tier
        reserve(shopper, units=units, card=card)
        expect(shopper.locator("body")).to_contain_text("Reserved")
        context.close()
    batch.refresh_from_db()
    assert batch.reserved_units == 3

    # The operator closes it now; the worker settles it in the background.
    page.goto(f"{base}/admin/preorders/preorderbatch/{batch.pk}/change/")
    page.get_by_role("link", name="Close now").click()
    expect(page.locator("#content")).to_contain_text("the minimum is reached")
    expect(page.locator("#content")).to_contain_text("2 reservations will be charged now")
    page.locator("input[type=submit]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("confirmed at $250.00 per unit")
    wait_until(
        lambda: PreorderBatch.objects.get(pk=batch.pk).status == BatchStatus.CONFIRMED,
        timeout=60,
        what="the worker to settle the batch",
        explain=live_worker.log_tail,
    )
    page.reload()
    expect(page.locator("#content")).to_contain_text("Confirmed")

    paid, declined = (Reservation.objects.get(user=fan) for fan in fans)
    assert paid.status == ReservationStatus.CHARGED
    assert paid.order.status == OrderStatus.PAID and paid.order.total == Decimal("500.00")
    assert declined.status == ReservationStatus.PAYMENT_FAILED
    retry = mailbox.wait_for(to=fans[1].email, subject="needs a payment")
    assert f"/preorders/reservations/{declined.pk}/" in mailbox.text(retry)

    # The first fan sees the paid order at the ladder price.
    context = browser.new_context(viewport={"width": 390, "height": 844})
    shopper = context.new_page()
    sign_in(shopper, base, fans[0].email, password)
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
    # A worker writes the CSV; the exports page offers it when it is ready.
    page.get_by_role("button", name="Export CSV").click()
    expect(page.locator("ul.messagelist")).to_contain_text("being prepared")
    wait_until(
        lambda: ExportJob.objects.filter(kind="preorders.production", status="done").exists(),
        timeout=60,
        what="the worker to write the production CSV",
        explain=live_worker.log_tail,
    )
    page.reload()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download", exact=True).click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][0].lower().startswith("sku")
    fs = next(row for row in rows if row[0] == "FS-BLK")
    assert "2" in fs  # two units paid, to be made
    assert Order.objects.filter(paid_through__startswith="preorder-res:").count() == 1
