"""A new shopper, in a real browser: sign up, verify the email, sign in, pick a variant
(htmx), add two variants to the cart, pay with 4242 and see the paid order."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from catalog.models import Variant
from orders.models import Order, OrderStatus
from tests.factories import BrandFactory, ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def phone():
    product = ProductFactory(
        name="Nimbus X2", slug="nimbus-x2", brand=BrandFactory(name="Nimbus Mobile", slug="nimbus")
    )
    VariantFactory(
        product=product, sku="X2-BLK", price=Decimal("599.00"), stock=5, options={"colour": "Black"}
    )
    VariantFactory(
        product=product, sku="X2-WHT", price=Decimal("649.00"), stock=2, options={"colour": "White"}
    )
    return product


def _sign_up_and_verify(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "Sup3r-secret-pass")
    page.fill("input[name=password2]", "Sup3r-secret-pass")
    page.click("form button[type=submit]")
    expect(page.locator("main")).to_contain_text("Verify Your Email Address")
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", mail.outbox[-1].body)
    page.goto(base + link.group(1))
    page.click("main form button[type=submit]")
    expect(page.locator("main")).to_contain_text("Where fans shape what gets made")


def _check_out(page, *, card: str) -> None:
    """Fill the checkout with a new address and a new card, and place the order."""
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
    page.get_by_role("button", name=re.compile("Place order")).click()


def test_new_shopper_buys_two_variants(live_server, page, phone):
    base = live_server.url
    email = f"new.fan.{page.viewport_name}@example.com"
    _sign_up_and_verify(page, base, email)

    page.goto(f"{base}/products/?q=nimbs")  # a typo still finds it
    page.get_by_role("link", name="Nimbus X2").first.click()
    expect(page.locator("#variant-panel")).to_contain_text("599.00")
    page.locator("label", has_text="White").click()  # htmx swaps the panel, no reload
    expect(page.locator("#variant-panel")).to_contain_text("649.00")
    expect(page.locator("#variant-panel")).to_contain_text("only 2 left")
    page.locator("#variant-panel").get_by_role("button", name="Add to cart").click()
    expect(page.locator("body")).to_contain_text("added to your cart")

    page.goto(f"{base}/products/nimbus-x2/?colour=Black")
    page.locator("#variant-panel").get_by_role("button", name="Add to cart").click()
    page.wait_for_url(f"{base}/cart/")
    expect(page.locator("main")).to_contain_text("USD 1248.00")  # cart subtotal

    page.get_by_role("link", name="Checkout").first.click()
    _check_out(page, card="4242 4242 4242 4242")

    expect(page.locator("body")).to_contain_text("is paid")
    order = Order.objects.get(user__email=email)
    assert order.status == OrderStatus.PAID and order.total == Decimal("1248.00")
    expect(page.locator("main")).to_contain_text(order.number)
    expect(page.locator("main")).to_contain_text("1248.00")
    assert Variant.objects.get(sku="X2-WHT").stock == 1
    assert any(order.number in message.subject for message in mail.outbox)


def test_declined_card_shows_a_clear_message(live_server, page, phone):
    base = live_server.url
    _sign_up_and_verify(page, base, f"decline.{page.viewport_name}@example.com")
    page.goto(f"{base}/products/nimbus-x2/")
    page.locator("#variant-panel").get_by_role("button", name="Buy now").click()
    _check_out(page, card="4000 0000 0000 0341")
    expect(page.locator("body")).to_contain_text("Your card was declined.")
    assert Order.objects.get().status == OrderStatus.PENDING_PAYMENT
    assert Variant.objects.get(sku="X2-BLK").stock == 5
