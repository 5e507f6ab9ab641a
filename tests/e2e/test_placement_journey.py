"""Done when: an operator prints a placement's QR code, a new fan scans it at phone width,
signs up, finds the claimed voucher in the cart, sees the discounted total at checkout
before paying, and buys; the operator's placement then shows that scan, sign-up and order."""

import re
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from marketing.models import VoucherClaim
from marketing.selectors import placement_funnel
from orders.models import Order, OrderStatus
from tests.e2e.conftest import VIEWPORTS
from tests.e2e.steps import CARD_OK, PASSWORD, check_out, sign_in
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.marketing import placement_make, voucher_make

pytestmark = pytest.mark.django_db(transaction=True)

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def phone_page(browser):
    """A phone (its own user agent: headless Chromium's would be taken for a bot)."""
    context = browser.new_context(viewport=VIEWPORTS["phone"], user_agent=IPHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_a_new_fan_scans_signs_up_and_buys_with_the_claimed_voucher(
    live_server, phone_page, desktop_page
):
    brand = BrandFactory(name="Nimbus Mobile", slug="nimbus")
    phone = ProductFactory(name="Nimbus X2", slug="nimbus-x2", brand=brand)
    VariantFactory(product=phone, sku="X2-BLK", price=Decimal("60.00"), stock=5)
    voucher = voucher_make(brand=brand, code="UNUSED", claim_only=True, value=Decimal("15"))
    placement = placement_make(
        brand=brand,
        name="Berlin shop window",
        voucher=voucher,
        target_kind="product",
        target_id=phone.pk,
    )
    operator = UserFactory(email="ops@nimbus.example", is_staff=True)
    operator.user_permissions.add(*Permission.objects.filter(content_type__app_label="marketing"))
    brand.operators.add(operator)

    # The operator downloads the code for print.
    sign_in(desktop_page, live_server.url, operator.email, "correct-horse-battery-staple")
    desktop_page.goto(f"{live_server.url}/admin/marketing/placement/{placement.pk}/change/")
    with desktop_page.expect_download() as download:
        desktop_page.get_by_role("link", name="SVG").click()
    assert download.value.suggested_filename == f"placement-{placement.token}.svg"

    # A new fan scans it on their phone: the product page, with the offer to claim.
    page = phone_page
    page.goto(f"{live_server.url}/q/{placement.token}/")
    expect(page).to_have_url(re.compile(r"/products/nimbus-x2/"))
    expect(page.locator("body")).to_contain_text("claim 15% off Nimbus Mobile")
    page.get_by_role("button", name=re.compile("Add to cart")).first.click()

    # They sign up and confirm their address (the link of the mail).
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=display_name]", "Mia")
    page.fill("input[name=email]", "mia@fans.example")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page.locator("main")).to_contain_text("Check your email")
    key = EmailConfirmationHMAC(EmailAddress.objects.get(email="mia@fans.example")).key
    page.goto(f"{live_server.url}/accounts/confirm-email/{key}/")
    page.click("main form button[type=submit]")
    expect(page.locator("header")).to_contain_text("Account menu")

    # The voucher is theirs and in the cart.
    page.goto(f"{live_server.url}/cart/")
    claim = VoucherClaim.objects.get(user__email="mia@fans.example")
    expect(page.locator(".order-summary")).to_contain_text(claim.code.code)
    expect(page.locator(".order-summary")).to_contain_text("−$9.00")

    # The checkout shows the discounted total before paying, and follows the delivery.
    page.get_by_role("link", name="Checkout").click()
    total = page.locator(".summary-total dd")
    expect(total).to_have_text("$60.90")  # 60.00 - 9.00 + 9.90 standard
    page.get_by_text("Express (1–2 days)").click()
    expect(total).to_have_text("$70.90")
    page.get_by_text("Standard (3–5 days)").click()
    expect(total).to_have_text("$60.90")
    # Taking the code off and typing it in again (htmx both ways, nothing else posted).
    page.get_by_role("button", name="Remove code").click()
    expect(total).to_have_text("$69.90")
    page.fill("#checkout-code-input", claim.code.code.lower())
    page.get_by_role("button", name="Apply").click()
    expect(total).to_have_text("$60.90")
    expect(page.locator("#checkout-totals")).to_contain_text("15% off Nimbus Mobile")
    check_out(page, card=CARD_OK)
    expect(page.locator("body")).to_contain_text("is paid")
    order = Order.objects.get(user__email="mia@fans.example")
    assert (order.status, order.discount, order.total) == (
        OrderStatus.PAID,
        Decimal("9.00"),
        Decimal("60.90"),
    )
    scroll, width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= width

    # The operator sees the scan, the sign-up and the order on the placement.
    funnel = placement_funnel(placement)
    assert (funnel.scans, funnel.sign_ups, funnel.vouchers_used, funnel.orders) == (1, 1, 1, 1)
    assert funnel.revenue == Decimal("60.90")
    desktop_page.goto(f"{live_server.url}/admin/marketing/placement/{placement.pk}/change/")
    table = desktop_page.locator("table.placement-funnel")
    expect(table).to_contain_text("Sign-ups")
    expect(table.locator("tr", has_text="Revenue")).to_contain_text("60.90")
