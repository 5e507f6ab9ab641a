"""A brand operator, in a real browser: signs in to the admin, creates a product with a
variant and a picture, sees it on the site, then ships and refunds a paid order."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from PIL import Image
from playwright.sync_api import expect

from catalog.models import Product
from orders.models import OrderStatus
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)
from tests.shop import order_paid

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(password):
    brand = BrandFactory(name="Forge Audio", slug="forge")
    CategoryFactory(name="Headphones", slug="headphones")
    user = UserFactory(email="ops@forge.example", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["catalog", "orders"])
    )
    brand.operators.add(user)
    return user


def test_operator_creates_a_product_then_ships_and_refunds(
    live_server, desktop_page, operator, password, tmp_path
):
    page = desktop_page
    base = live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", operator.email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#content")).to_contain_text("Products")

    page.goto(f"{base}/admin/catalog/product/add/")
    page.select_option("#id_brand", label="Forge Audio")
    page.locator("#id_name").press_sequentially("Forge Studio Pro")
    expect(page.locator("#id_slug")).to_have_value("forge-studio-pro")  # filled from the name
    page.select_option("#id_status", "active")
    page.fill("#id_description", "Planar drivers, **tuned by fans**.")
    page.select_option("#id_category", label="Headphones")
    page.fill("#id_variants-0-sku", "FSP-BLK")
    page.fill("#id_variants-0-options", '{"colour": "Black"}')
    page.fill("#id_variants-0-price", "349.00")
    page.fill("#id_variants-0-stock", "7")
    picture = tmp_path / "front.png"
    Image.new("RGB", (400, 300), "navy").save(picture)
    page.set_input_files("#id_images-0-image", str(picture))
    page.fill("#id_images-0-alt_text", "Front")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")

    product = Product.objects.get(slug="forge-studio-pro")
    assert (product.price_min, product.in_stock) == (Decimal("349.00"), True)
    page.goto(f"{base}/products/forge-studio-pro/")
    expect(page.locator("main")).to_contain_text("349.00")
    expect(page.locator("main")).to_contain_text("tuned by fans")
    assert page.locator("main img[alt='Front']").count() >= 1

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
    expect(page.locator("ul.messagelist")).to_contain_text("ship done")
    page.get_by_role("link", name="Refund").click()
    page.fill("#id_amount", "60.00")
    page.click("input[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("refund done")
    order.refresh_from_db()
    assert (order.status, order.tracking_number, order.amount_refunded) == (
        OrderStatus.SHIPPED,
        "1Z-FORGE-42",
        Decimal("60.00"),
    )
