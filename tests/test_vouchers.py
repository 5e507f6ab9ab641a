"""Vouchers at checkout: what they take off (only the voucher brand's lines on a shared
order, never below zero), the rules and their reasons, once per customer (second accounts,
changed emails, 3-D Secure), giving a use back, the guessing limit, the checkout page."""

from decimal import Decimal

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone

from catalog.exports import export_job_run
from catalog.models import ExportJob
from marketing.models import Voucher, VoucherCode, VoucherUse
from marketing.vouchers import email_key, voucher_codes_csv, voucher_codes_generate
from orders.fulfilment import order_cancel, order_part_refund
from orders.models import Cart, Order, OrderStatus
from orders.services import CheckoutError, cart_code_apply, order_pay, order_place
from payments.services import card_save
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)
from tests.marketing import cart_with, voucher_make
from tests.shop import ADDRESS, CARD_OK

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
CARD_3DS = {**CARD_OK, "number": "4000002760003184"}


@pytest.fixture
def shop():
    nimbus, forge = BrandFactory(name="Nimbus"), BrandFactory(name="Forge")
    phone = VariantFactory(
        product=ProductFactory(brand=nimbus, name="Nimbus X2"), price=Decimal("40.00")
    )
    case = VariantFactory(
        product=ProductFactory(brand=nimbus, name="Nimbus case"), price=Decimal("15.00")
    )
    buds = VariantFactory(
        product=ProductFactory(brand=forge, name="Forge buds"), price=Decimal("30.00")
    )
    return {"nimbus": nimbus, "forge": forge, "phone": phone, "case": case, "buds": buds}


def _place(user, cart, shipping="standard"):
    return order_place(user=user, cart=cart, address=ADDRESS, shipping_method=shipping)


def _pay(order, card=CARD_OK):
    payment = order_pay(
        order=order, saved_card=card_save(user=order.user, card=card), user=order.user
    )
    order.refresh_from_db()
    return payment


def test_a_brands_voucher_takes_only_its_own_lines_off_a_shared_order(shop):
    voucher_make(brand=shop["nimbus"], code="NIMBUS20", value=Decimal("20"))
    buyer = UserFactory()
    cart = cart_with(
        user=buyer,
        items=[(shop["phone"], 2), (shop["case"], 1), (shop["buds"], 1)],
        code="NIMBUS20",
    )
    order = _place(buyer, cart)
    # Nimbus lines 95.00 -> 20% = 19.00; Forge's 30.00 untouched; 125.00 >= 99: free shipping.
    assert (order.subtotal, order.shipping_cost, order.discount, order.total) == (
        Decimal("125.00"),
        Decimal("0.00"),
        Decimal("19.00"),
        Decimal("106.00"),
    )
    lines = {line.sku: line.discount for line in order.lines.all()}
    assert lines == {
        shop["phone"].sku: Decimal("16.00"),
        shop["case"].sku: Decimal("3.00"),
        shop["buds"].sku: Decimal("0.00"),
    }
    parts = {part.brand_id: part for part in order.parts.all()}
    assert parts[shop["nimbus"].pk].discount == Decimal("19.00")
    assert parts[shop["nimbus"].pk].total == Decimal("76.00")
    assert parts[shop["forge"].pk].discount == Decimal("0.00")
    assert parts[shop["forge"].pk].total == Decimal("30.00")
    assert sum(p.total for p in parts.values()) == order.total
    assert VoucherUse.objects.get(order=order).amount == Decimal("19.00")


def test_a_discount_never_makes_a_total_negative(shop):
    voucher_make(brand=shop["nimbus"], code="HUGE", kind="fixed", value=Decimal("1000.00"))
    voucher_make(
        brand=shop["nimbus"],
        code="SHIPFREE",
        kind="fixed",
        value=Decimal("50.00"),
        scope="shipping",
    )
    buyer = UserFactory()
    order = _place(buyer, cart_with(user=buyer, items=[(shop["phone"], 1)], code="HUGE"))
    # The whole line, not more: the shipping is still paid.
    assert (order.discount, order.total) == (Decimal("40.00"), Decimal("9.90"))
    other = UserFactory()
    order = _place(other, cart_with(user=other, items=[(shop["phone"], 1)], code="SHIPFREE"))
    assert (order.discount, order.total) == (Decimal("9.90"), Decimal("40.00"))
    part = order.parts.get()
    assert (part.shipping_discount, part.total) == (Decimal("9.90"), Decimal("40.00"))


def test_a_shipping_voucher_on_a_shared_order_takes_only_its_brands_share(shop):
    voucher_make(
        brand=shop["forge"],
        code="FORGESHIP",
        kind="percent",
        value=Decimal("100"),
        scope="shipping",
    )
    buyer = UserFactory()
    cart = cart_with(user=buyer, items=[(shop["phone"], 1), (shop["buds"], 1)], code="FORGESHIP")
    order = _place(buyer, cart)
    # 9.90 over 40.00 : 30.00 -> Nimbus 5.66 (rounded down) + the cent left over... Forge 4.24.
    parts = {part.brand_id: part for part in order.parts.all()}
    assert parts[shop["forge"].pk].shipping_discount == parts[shop["forge"].pk].shipping_share
    assert parts[shop["nimbus"].pk].shipping_discount == 0
    assert order.discount == parts[shop["forge"].pk].shipping_share
    assert order.total == Decimal("79.90") - order.discount


@pytest.mark.parametrize(
    ("fields", "items", "reason"),
    [
        ({"ends_at": "past"}, [("phone", 1)], "This code expired on"),
        ({"starts_at": "future"}, [("phone", 1)], "This code starts on"),
        ({"min_spend": Decimal("100.00")}, [("phone", 1)], "Spend at least"),
        ({"min_quantity": 3}, [("phone", 2)], "Buy at least 3"),
        ({"usage_limit": 0}, [("phone", 1)], "This code has been used up."),
        ({"scope": "products", "products": "case"}, [("phone", 1)], "none is in your cart"),
        ({}, [("buds", 1)], "none is in your cart"),
    ],
)
def test_a_code_that_does_not_apply_says_why_and_stays_off(shop, fields, items, reason):
    now = timezone.now()
    products = fields.pop("products", None)
    fields = {
        key: (
            now - timezone.timedelta(days=1)
            if value == "past"
            else now + timezone.timedelta(days=1)
        )
        if value in ("past", "future")
        else value
        for key, value in fields.items()
    }
    voucher = voucher_make(brand=shop["nimbus"], code="RULES", **fields)
    if products:
        voucher.products.set([shop[products].product])
    buyer = UserFactory()
    cart = cart_with(user=buyer, items=[(shop[name], qty) for name, qty in items])
    with pytest.raises(CheckoutError) as refused:
        cart_code_apply(cart=cart, user=buyer, code="rules", client_keys=["t"])
    assert reason in " ".join(refused.value.messages)
    cart.refresh_from_db()
    assert cart.discount_code == ""


def test_a_category_voucher_covers_subcategories(shop):
    phones = CategoryFactory(name="Phones", slug="phones")
    cases = CategoryFactory(name="Cases", slug="cases", parent=phones)
    case = VariantFactory(
        product=ProductFactory(brand=shop["nimbus"], category=cases), price=Decimal("20.00")
    )
    voucher = voucher_make(
        brand=shop["nimbus"], code="CAT50", value=Decimal("50"), scope="categories"
    )
    voucher.categories.set([phones])
    buyer = UserFactory()
    order = _place(
        buyer, cart_with(user=buyer, items=[(case, 1), (shop["phone"], 1)], code="CAT50")
    )
    assert order.discount == Decimal("10.00")


def test_once_per_customer_holds_for_the_account_a_changed_email_and_a_second_account(shop):
    voucher_make(brand=shop["nimbus"], code="ONCE")
    buyer = UserFactory(email="Ada.Lovelace+shop@gmail.com")
    EmailAddress.objects.filter(user=buyer).update(email=buyer.email)
    first = _place(buyer, cart_with(user=buyer, items=[(shop["phone"], 1)], code="ONCE"))
    _pay(first)
    assert first.status == OrderStatus.PAID and first.discount == Decimal("4.00")

    # The same account again, after changing its email.
    buyer.email = "ada@example.org"
    buyer.save(update_fields=["email"])
    cart = cart_with(user=buyer, items=[(shop["case"], 1)])
    with pytest.raises(CheckoutError, match="already used"):
        cart_code_apply(cart=cart, user=buyer, code="ONCE", client_keys=["a"])
    Cart.objects.filter(pk=cart.pk).update(discount_code="ONCE")  # forced past the check
    assert _place(buyer, Cart.objects.get(pk=cart.pk)).discount == 0  # placed without it

    # A second account on the same Gmail mailbox (dots and +tag differ).
    twin = UserFactory(email="adalovelace@googlemail.com")
    assert email_key(twin.email) == email_key("Ada.Lovelace+shop@gmail.com")
    cart = cart_with(user=twin, items=[(shop["phone"], 1)])
    with pytest.raises(CheckoutError, match="already used"):
        cart_code_apply(cart=cart, user=twin, code="ONCE", client_keys=["b"])
    Cart.objects.filter(pk=cart.pk).update(discount_code="ONCE")
    assert _place(twin, Cart.objects.get(pk=cart.pk)).discount == 0
    assert Voucher.objects.get().used == 1


def test_a_payment_waiting_for_3d_secure_holds_the_use(shop):
    voucher_make(brand=shop["nimbus"], code="SECURE")
    buyer = UserFactory(email="bea@example.com")
    order = _place(buyer, cart_with(user=buyer, items=[(shop["phone"], 1)], code="SECURE"))
    payment = _pay(order, CARD_3DS)
    assert payment.status == "requires_action" and order.status == OrderStatus.PENDING_PAYMENT
    # Another checkout of theirs (the cart changed) cannot take it while the bank decides...
    cart = cart_with(user=buyer, items=[(shop["case"], 1)], code="SECURE")
    with pytest.raises(CheckoutError, match="waiting for its payment"):
        _place(buyer, cart)
    # ...nor a second account of the same address.
    twin = UserFactory(email="bea+2@example.com")
    with pytest.raises(CheckoutError, match="already used"):
        cart_code_apply(
            cart=cart_with(user=twin, items=[(shop["phone"], 1)]),
            user=twin,
            code="SECURE",
            client_keys=["twin"],
        )
    assert Voucher.objects.get().used == 1


def test_an_unpaid_earlier_checkout_is_replaced_by_the_new_one(shop):
    voucher_make(brand=shop["nimbus"], code="AGAIN")
    buyer = UserFactory()
    cart = cart_with(user=buyer, items=[(shop["phone"], 1)], code="AGAIN")
    first = _place(buyer, cart)
    cart = cart_with(user=buyer, items=[(shop["case"], 1)])  # a new revision
    second = _place(buyer, cart)
    first.refresh_from_db()
    assert first.status == OrderStatus.CANCELLED
    assert second.discount == Decimal("5.50")
    assert list(VoucherUse.objects.filter(released_at=None).values_list("order_id", flat=True)) == [
        second.pk
    ]
    assert Voucher.objects.get().used == 1


def test_a_refund_or_a_cancel_gives_the_use_back(shop):
    voucher = voucher_make(brand=shop["nimbus"], code="BACK", usage_limit=1, once_per_customer=True)
    buyer = UserFactory()
    order = _place(buyer, cart_with(user=buyer, items=[(shop["phone"], 2)], code="BACK"))
    _pay(order)
    voucher.refresh_from_db()
    assert voucher.used == 1
    other = UserFactory()
    with pytest.raises(CheckoutError, match="used up"):
        cart_code_apply(
            cart=cart_with(user=other, items=[(shop["phone"], 1)]),
            user=other,
            code="BACK",
            client_keys=["o"],
        )
    # A partial refund of a discounted line refunds what was paid for it: 80.00 - 8.00 over 2.
    part = order.parts.get()
    line = order.lines.get()
    refund = order_part_refund(part=part, actor=None, lines={line.pk: 1}, key="r1")
    assert refund.amount == Decimal("36.00")
    voucher.refresh_from_db()
    assert voucher.used == 1  # the order still stands
    refund = order_part_refund(part=part, actor=None, lines={line.pk: 1}, shipping=True, key="r2")
    assert refund.amount == Decimal("36.00") + part.shipping_share
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED and order.amount_refunded == order.total
    voucher.refresh_from_db()
    assert voucher.used == 0 and VoucherUse.objects.get().released_at is not None
    # Now someone else may use it; cancelling their unpaid order gives it back again.
    second = _place(other, cart_with(user=other, items=[], code="BACK"))  # its one phone
    assert second.discount == Decimal("4.00")
    order_cancel(order=second, actor=other)
    voucher.refresh_from_db()
    assert voucher.used == 0


def test_wrong_codes_get_one_answer_and_guessing_is_limited(shop, settings):
    settings.DISCOUNT_CODE_TRIES = 5
    voucher_make(brand=shop["nimbus"], code="REAL")
    guesser = UserFactory()
    cart = cart_with(user=guesser, items=[(shop["phone"], 1)])
    answers = set()
    for guess in ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"]:
        with pytest.raises(CheckoutError) as refused:
            cart_code_apply(
                cart=cart, user=guesser, code=guess, client_keys=["user:g", "ip:1.2.3.4"]
            )
        answers.add(" ".join(refused.value.messages))
    assert answers == {"This code isn’t valid."}
    # Past the limit even the right code is refused, so guessing cannot find it.
    with pytest.raises(CheckoutError, match="Too many codes tried"):
        cart_code_apply(cart=cart, user=guesser, code="REAL", client_keys=["user:g", "ip:1.2.3.4"])
    # From the same address with another account: the address is limited too.
    with pytest.raises(CheckoutError, match="Too many codes tried"):
        cart_code_apply(cart=cart, user=guesser, code="REAL", client_keys=["user:h", "ip:1.2.3.4"])
    cart.refresh_from_db()
    assert cart.discount_code == ""
    other = UserFactory()
    cart = cart_with(user=other, items=[(shop["phone"], 1)])
    assert (
        cart_code_apply(cart=cart, user=other, code=" real ", client_keys=["user:o", "ip:5.6.7.8"])
        == "REAL"
    )


def test_the_guessing_limit_holds_over_http(client, shop, settings):
    settings.DISCOUNT_CODE_TRIES = 3
    voucher_make(brand=shop["nimbus"], code="REAL")
    for guess in ["X1X1", "X2X2", "X3X3"]:
        client.post("/cart/code/", {"code": guess, "code_action": "apply"})
    response = client.get("/v/REAL/", follow=True, HTTP_USER_AGENT=BROWSER)
    assert "Too many codes tried" in response.content.decode()


def test_a_personal_code_works_only_for_its_owner(shop):
    voucher = voucher_make(brand=shop["nimbus"], code="BASE", claim_only=True)
    owner, other = UserFactory(), UserFactory()
    personal = voucher_codes_generate(voucher=voucher, count=1, prefix="FAN")[0]
    VoucherCode.objects.filter(pk=personal.pk).update(user=owner)
    for code in ("BASE", personal.code):  # the shared code of a claim-only voucher is no code
        with pytest.raises(CheckoutError, match="isn’t valid"):
            cart_code_apply(
                cart=cart_with(user=other, items=[(shop["phone"], 1)]),
                user=other,
                code=code,
                client_keys=["x"],
            )
    cart = cart_with(user=owner, items=[(shop["phone"], 1)])
    assert (
        cart_code_apply(cart=cart, user=owner, code=personal.code, client_keys=["y"])
        == personal.code
    )


def test_codes_are_generated_in_bulk_unique_and_exported(shop, admin_client):
    voucher = voucher_make(brand=shop["nimbus"], code="BULKBASE")
    made = voucher_codes_generate(voucher=voucher, count=300, prefix="gig")
    assert len({c.code for c in made}) == 300 and all(c.code.startswith("GIG-") for c in made)
    response = admin_client.post(
        "/admin/marketing/voucher/", {"action": "export_codes", "_selected_action": [voucher.pk]}
    )
    # A worker writes the file, offered on the exports page: the same CSV as before.
    assert response["Location"] == reverse("admin:catalog_exportjob_changelist")
    job = ExportJob.objects.get()
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 301, 301)
    download = admin_client.get(reverse("admin:catalog_exportjob_download", args=[job.pk]))
    text = download.content.decode()
    assert text == voucher_codes_csv(vouchers=Voucher.objects.filter(pk=voucher.pk))
    rows = text.strip().splitlines()
    assert rows[0].startswith("voucher,code") and len(rows) == 302


def test_the_checkout_shows_the_discounted_total_and_updates_it(
    client, shop, django_assert_max_num_queries
):
    voucher_make(brand=shop["nimbus"], code="SHOWME", kind="fixed", value=Decimal("5.00"))
    buyer = UserFactory()
    cart_with(user=buyer, items=[(shop["phone"], 1)])
    client.force_login(buyer)
    page = client.get("/checkout/").content.decode()
    assert "49.90" in page and "Discount" not in page
    response = client.post(
        "/cart/code/",
        {
            "code": "showme",
            "code_action": "apply",
            "next": "checkout",
            "shipping_method": "express",
        },
        HTTP_HX_REQUEST="true",
    )
    fragment = response.content.decode()
    assert 'id="checkout-totals"' in fragment and "<html" not in fragment
    assert "SHOWME" in fragment and "−$5.00" in fragment
    assert 'data-total="54.90"' in fragment  # 40.00 + 19.90 express - 5.00
    with django_assert_max_num_queries(14):
        response = client.post(
            "/checkout/totals/", {"shipping_method": "standard"}, HTTP_HX_REQUEST="true"
        )
    assert 'data-total="44.90"' in response.content.decode()
    assert 'name="expected_total_express" value="54.90"' in response.content.decode()
    # Removing it brings the full total back.
    response = client.post(
        "/cart/code/", {"code_action": "remove", "next": "checkout"}, HTTP_HX_REQUEST="true"
    )
    assert 'data-total="49.90"' in response.content.decode()


def test_an_order_is_refused_when_the_total_changed_since_the_page(client, shop):
    voucher = voucher_make(brand=shop["nimbus"], code="GONE", kind="fixed", value=Decimal("5.00"))
    buyer = UserFactory()
    cart_with(user=buyer, items=[(shop["phone"], 1)], code="GONE")
    client.force_login(buyer)
    page = client.get("/checkout/").content.decode()
    assert 'name="expected_total_standard" value="44.90"' in page
    Voucher.objects.filter(pk=voucher.pk).update(is_active=False)  # ended meanwhile
    data = {
        **{f"address-{k}": v for k, v in ADDRESS.items()},
        "shipping_method": "standard",
        "expected_total_standard": "44.90",
        "number": "4242424242424242",
        "exp_month": "12",
        "exp_year": "2099",
        "cvc": "123",
    }
    response = client.post("/checkout/", data)
    assert response.status_code == 400
    assert "The total changed to" in response.content.decode()
    assert not Order.objects.exists()
    data["expected_total_standard"] = "49.90"
    response = client.post("/checkout/", data)
    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.status, order.total, order.discount) == (OrderStatus.PAID, Decimal("49.90"), 0)


def test_a_voucher_link_puts_the_code_in_the_cart(client, shop):
    voucher_make(brand=shop["nimbus"], code="LINK15", value=Decimal("15"))
    product = shop["phone"]
    client.post("/cart/add/", {"variant": product.pk, "quantity": 1})
    response = client.get("/v/link15/", follow=True, HTTP_USER_AGENT=BROWSER)
    page = response.content.decode()
    assert "Code LINK15 is in your cart." in page
    assert Cart.objects.get().discount_code == "LINK15"
    assert "6.00" in page  # 15% of 40.00 on the cart page
    # A link preview changes nothing.
    client.get("/v/OTHER/", HTTP_USER_AGENT="WhatsApp/2.23")
    assert Cart.objects.get().discount_code == "LINK15"


@pytest.mark.parametrize("lines", [1, 6])
def test_the_checkout_totals_cost_the_same_queries_whatever_the_cart(
    client, shop, lines, django_assert_num_queries
):
    voucher_make(brand=shop["nimbus"], code="COUNT", value=Decimal("10"))
    buyer = UserFactory()
    items = [
        (VariantFactory(product=shop["phone"].product, options={"n": str(n)}), 1)
        for n in range(lines)
    ]
    cart_with(user=buyer, items=items, code="COUNT")
    client.force_login(buyer)
    client.get("/")  # the session and the cart count cached
    # The session, the cart, its lines and their images; for each shipping method the code
    # with its voucher and the once-per-customer checks. 11 for 1 line as for 6.
    with django_assert_num_queries(11):
        response = client.post("/checkout/totals/", {"shipping_method": "standard"})
    assert "COUNT" in response.content.decode()


def test_an_unpaid_order_past_its_time_gives_its_use_back(shop):
    from marketing.vouchers import voucher_unpaid_orders_cancel

    voucher = voucher_make(brand=shop["nimbus"], code="LAST", usage_limit=2)
    abandoned, waiting, paid = UserFactory(), UserFactory(), UserFactory()
    first = _place(abandoned, cart_with(user=abandoned, items=[(shop["phone"], 1)], code="LAST"))
    second = _place(waiting, cart_with(user=waiting, items=[(shop["phone"], 1)], code="LAST"))
    _pay(second, CARD_3DS)  # the bank is still asking
    later = timezone.now() + timezone.timedelta(hours=25)
    with time_machine.travel(later):
        assert voucher_unpaid_orders_cancel() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == OrderStatus.CANCELLED
    assert second.status == OrderStatus.PENDING_PAYMENT  # 3-D Secure: left alone
    voucher.refresh_from_db()
    assert voucher.used == 1
    shop["phone"].refresh_from_db()
    assert shop["phone"].stock == 9  # the abandoned order's unit is back; 3-D Secure holds one
    third = _place(paid, cart_with(user=paid, items=[(shop["phone"], 1)], code="LAST"))
    assert third.discount == Decimal("4.00")
