"""A brand operator, in a real browser: signs in to the admin, creates a product with a
variant and a picture (the worker makes its thumbnails), sees it on the site, then ships and
refunds a paid order."""

from decimal import Decimal

import pytest
from PIL import Image
from playwright.sync_api import expect

from catalog.models import Product, ProductImage
from orders.models import OrderStatus
from tests.e2e.steps import admin_add_product, admin_sign_in
from tests.factories import (
    ProductFactory,
    VariantFactory,
)
from tests.services import wait_until
from tests.shop import order_paid

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_creates_a_product_then_ships_and_refunds(
    live_server, desktop_page, operator, password, tmp_path, live_worker
):
    page = desktop_page
    base = live_server.url
    admin_sign_in(page, base, operator.email, password)
    picture = tmp_path / "front.png"
    Image.new("RGB", (1600, 1200), "navy").save(picture)
    admin_add_product(
        page,
        base,
        brand="Forge Audio",
        name="Forge Studio Pro",
        category="Headphones",
        sku="FSP-BLK",
        colour="Black",
        price="349.00",
        stock="7",
        picture=str(picture),
    )

    product = Product.objects.get(slug="forge-studio-pro")
    assert (product.price_min, product.in_stock) == (Decimal("349.00"), True)
    # The worker makes the thumbnails from the stored upload.
    wait_until(
        lambda: ProductImage.objects.filter(product=product).exclude(thumbnail_small="").exists(),
        timeout=30,
        what="the worker's thumbnails",
        explain=live_worker.log_tail,
    )
    image = ProductImage.objects.get(product=product)
    with Image.open(image.thumbnail_small.path) as small, Image.open(image.image.path) as original:
        assert max(small.size) <= 240 < max(original.size)
    page.goto(f"{base}/products/forge-studio-pro/")
    expect(page.locator("main")).to_contain_text("349.00")
    expect(page.locator("main")).to_contain_text("tuned by fans")
    expect(page.locator("main img[alt='Front']").first).to_be_attached()

    variant = VariantFactory(
        product=ProductFactory(brand=operator.operated_brands.get(), name="Forge Buds"),
        price=Decimal("80.00"),
        stock=4,
    )
    order = order_paid(variant=variant, quantity=2)
    page.goto(f"{base}/admin/orders/order/{order.pk}/change/")
    page.get_by_role("link", name="Mark shipped").click()
    page.fill("#id_tracking_number", "1Z-FORGE-42")
    page.click("input[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("shipped, tracking number 1Z-FORGE-42")
    page.get_by_role("link", name="Refund").click()
    page.fill("#id_amount", "60.00")
    page.click("input[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("refunded $60.00")
    order.refresh_from_db()
    assert (order.status, order.tracking_number, order.amount_refunded) == (
        OrderStatus.SHIPPED,
        "1Z-FORGE-42",
        Decimal("60.00"),
    )
