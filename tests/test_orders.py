import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.models import Variant
from orders.models import Cart, Order, OrderStatus, StockHold
from orders.services import cart_add, order_pay, order_place, stock_holds_expire
from payments.models import Payment, PaymentStatus
from payments.services import card_save
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.shop import order_paid

pytestmark = pytest.mark.django_db

ADDRESS = {
    "full_name": "Lin Chen",
    "line1": "1 Fan Street",
    "line2": "",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
    "phone": "",
}
CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED_AT_SAVE = "4000 0000 0000 0002"
CARD_DECLINED_AT_CHARGE = "4000 0000 0000 0341"
CARD_3DS = "4000 0027 6000 3184"


def _checkout_data(card=CARD_OK, **extra):
    data = {f"address-{key}": value for key, value in ADDRESS.items()}
    data.update(
        {
            "shipping_method": "standard",
            "number": card,
            "exp_month": "12",
            "exp_year": str(timezone.now().year + 3),
            "cvc": "123",
            **extra,
        }
    )
    return data


def _stock(variant) -> int:
    return Variant.objects.get(pk=variant.pk).stock


def test_visitor_cart_then_checkout_with_4242(client, shop, django_capture_on_commit_callbacks):
    client.post(reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": 1})
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 2})
    cart_page = client.get(reverse("orders:cart"))
    assert cart_page.context["summary"].subtotal == Decimal("580.00")
    # Checkout needs an account; the visitor's cart follows them in.
    response = client.get(reverse("orders:checkout"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    fan = UserFactory()
    client.force_login(fan)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("orders:checkout"), _checkout_data())
    order = Order.objects.get(user=fan)
    assert response.status_code == 302 and response["Location"] == order.get_absolute_url()
    assert order.status == OrderStatus.PAID
    assert (order.subtotal, order.shipping_cost, order.total) == (
        Decimal("580.00"),
        Decimal("0.00"),
        Decimal("580.00"),
    )  # free shipping above 99
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines.all()] == [
        ("X2-BLK", 1, Decimal("500.00")),
        ("X2-WHT", 2, Decimal("40.00")),
    ]
    assert (_stock(shop["black"]), _stock(shop["white"])) == (4, 1)
    assert not StockHold.objects.filter(order=order, committed_at=None).exists()
    assert not Cart.objects.get(user=fan).lines.exists()
    payment = Payment.objects.get(reference=f"order:{order.number}")
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount == Decimal("580.00")
    assert [m.subject for m in mail.outbox] == [f"[Fanhub] Order {order.number} is confirmed"]
    assert order.number in mail.outbox[0].body
    page = client.get(order.get_absolute_url()).content.decode()
    assert "Paid" in page and "580.00" in page and "Lin Chen" in page
    assert "4242" not in str(Payment.objects.values()) + str(order.__dict__)  # no card number


def test_prices_are_read_at_checkout_not_from_the_form(client, shop):
    fan = UserFactory()
    client.force_login(fan)
    client.post(
        reverse("orders:cart_add"),
        {"variant": shop["white"].pk, "quantity": 1, "price": "0.01", "unit_price": "0.01"},
    )
    Variant.objects.filter(pk=shop["white"].pk).update(price=Decimal("45.00"))
    client.post(
        reverse("orders:checkout"), _checkout_data(subtotal="0.01", total="0.01", price="0.01")
    )
    order = Order.objects.get(user=fan)
    assert order.lines.get().unit_price == Decimal("45.00")
    assert order.total == Decimal("54.90")  # 45.00 + standard shipping 9.90


def test_card_refused_when_saved_changes_nothing(client, shop):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": 1})
    response = client.post(reverse("orders:checkout"), _checkout_data(CARD_DECLINED_AT_SAVE))
    assert response.status_code == 400
    assert "Your card was declined." in response.content.decode()
    assert not Order.objects.exists()
    assert _stock(shop["black"]) == 5


def test_declined_charge_keeps_the_order_pending_and_releases_stock(client, shop):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": 2})
    response = client.post(
        reverse("orders:checkout"), _checkout_data(CARD_DECLINED_AT_CHARGE), follow=True
    )
    order = Order.objects.get(user=fan)
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert response.redirect_chain[-1][0] == reverse("orders:pay", args=[order.number])
    assert "Your card was declined." in response.content.decode()
    assert _stock(shop["black"]) == 5  # released
    # Paying again with a good card takes the stock again and completes the order.
    response = client.post(reverse("orders:pay", args=[order.number]), _checkout_data(CARD_OK))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and _stock(shop["black"]) == 3
    assert Payment.objects.filter(reference=f"order:{order.number}").count() == 1


@pytest.mark.parametrize(
    "decision, status, stock",
    [("approve", OrderStatus.PAID, 4), ("deny", OrderStatus.PENDING_PAYMENT, 5)],
)
def test_card_that_needs_authentication(client, shop, decision, status, stock):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": 1})
    response = client.post(reverse("orders:checkout"), _checkout_data(CARD_3DS))
    order = Order.objects.get(user=fan)
    assert response["Location"] == reverse("orders:authenticate", args=[order.number])
    assert order.status == OrderStatus.PENDING_PAYMENT and _stock(shop["black"]) == 4  # held
    client.post(reverse("orders:authenticate", args=[order.number]), {"decision": decision})
    order.refresh_from_db()
    assert order.status == status and _stock(shop["black"]) == stock


def test_quantity_beyond_stock_is_refused_with_a_message(client, shop):
    response = client.post(
        reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 4}, follow=True
    )
    assert "Only 3 of Nimbus X2 (White) left." in response.content.decode()
    assert not Cart.objects.filter(lines__isnull=False).exists()


def test_carts_merge_at_sign_in(client, shop):
    fan = UserFactory()
    cart_add(cart=Cart.objects.create(user=fan), variant=shop["white"], quantity=2)
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 2})
    client.post(reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": 1})
    client.post(
        reverse("account_login"), {"login": fan.email, "password": "correct-horse-battery-staple"}
    )
    summary = client.get(reverse("orders:cart")).context["summary"]
    # 2 + 2 whites, capped by the 3 in stock; the black joins.
    assert sorted((line.variant.sku, line.quantity) for line in summary.lines) == [
        ("X2-BLK", 1),
        ("X2-WHT", 3),
    ]
    assert Cart.objects.count() == 1


def test_another_users_order_is_404(client, shop):
    owner = UserFactory()
    cart = Cart.objects.create(user=owner)
    cart_add(cart=cart, variant=shop["white"], quantity=1)
    order = order_place(user=owner, cart=cart, address=ADDRESS, shipping_method="standard")
    client.force_login(UserFactory())
    for name in ("orders:detail", "orders:pay", "orders:authenticate"):
        assert client.get(reverse(name, args=[order.number])).status_code == 404
    assert client.get(reverse("orders:detail", args=["FH-NOPE"])).status_code == 404
    assert order.number not in client.get(reverse("orders:list")).content.decode()


def test_unpaid_orders_give_their_stock_back_when_the_hold_expires(shop):
    fan = UserFactory()
    cart = Cart.objects.create(user=fan)
    cart_add(cart=cart, variant=shop["black"], quantity=2)
    order = order_place(user=fan, cart=cart, address=ADDRESS, shipping_method="express")
    assert _stock(shop["black"]) == 3
    assert stock_holds_expire() == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert stock_holds_expire() == 1
    assert _stock(shop["black"]) == 5
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def _operator(brand):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="orders"))
    brand.operators.add(user)
    return user


def _paid_order(shop, quantity=1):
    order = order_paid(variant=shop["black"], quantity=quantity)
    assert order.status == OrderStatus.PAID
    return order


def test_operator_ships_and_refunds_in_the_admin(client, shop, django_capture_on_commit_callbacks):
    order = _paid_order(shop, quantity=2)  # 1000.00
    client.force_login(_operator(shop["brand"]))
    operate = f"/admin/orders/order/{order.pk}/operate/"
    change = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "Mark shipped" in change and "Refund" in change
    with django_capture_on_commit_callbacks(execute=True):
        client.post(operate + "ship/", {"tracking_number": "1Z999"})
    order.refresh_from_db()
    assert (order.status, order.tracking_number) == (OrderStatus.SHIPPED, "1Z999")
    assert mail.outbox[-1].subject == f"[Fanhub] Order {order.number} is on its way"
    client.post(operate + "refund/", {"amount": "250.00", "reason": "Scratched"})
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.SHIPPED, Decimal("250.00"))
    response = client.post(operate + "refund/", {"amount": "9999"}, follow=True)
    assert "Refund between $0.01 and $750.00" in response.content.decode()
    client.post(operate + "refund/", {"amount": "750.00"})
    order.refresh_from_db()
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, Decimal("1000.00"))
    payment = Payment.objects.get(reference=f"order:{order.number}")
    assert payment.status == PaymentStatus.REFUNDED and payment.refunds.count() == 2
    notes = [event.note for event in order.events.all()]
    assert any("Refunded $250.00" in note for note in notes)


def test_operators_of_another_brand_cannot_see_or_touch_the_order(client, shop):
    order = _paid_order(shop)
    client.force_login(_operator(BrandFactory(name="Other", slug="other")))
    assert client.get(f"/admin/orders/order/{order.pk}/change/").status_code == 302
    assert (
        client.post(
            f"/admin/orders/order/{order.pk}/operate/ship/", {"tracking_number": "X"}
        ).status_code
        == 404
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_cancelling_a_paid_order_refunds_and_restocks(shop):
    order = _paid_order(shop, quantity=2)
    assert _stock(shop["black"]) == 3
    from orders.fulfilment import order_cancel

    order_cancel(order=order, actor=UserFactory(is_staff=True), reason="Customer asked")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.amount_refunded == order.total
    assert _stock(shop["black"]) == 5


def test_illegal_transitions_are_refused(shop):
    from django.core.exceptions import ValidationError

    from orders.fulfilment import order_ship

    fan = UserFactory()
    cart = Cart.objects.create(user=fan)
    cart_add(cart=cart, variant=shop["white"], quantity=1)
    order = order_place(user=fan, cart=cart, address=ADDRESS, shipping_method="standard")
    with pytest.raises(ValidationError, match="awaiting payment cannot become shipped"):
        order_ship(order=order, tracking_number="X", actor=fan)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT and order.tracking_number == ""


@pytest.mark.django_db(transaction=True)
def test_twenty_buyers_for_the_last_five_units():
    """Real threads on real Postgres transactions: exactly five orders get paid."""
    variant = VariantFactory(stock=5, price=Decimal("10.00"))
    buyers = []
    for _ in range(20):
        fan = UserFactory()
        cart = Cart.objects.create(user=fan)
        cart_add(cart=cart, variant=variant, quantity=1)
        card = card_save(
            user=fan, card={"number": CARD_OK, "exp_month": 1, "exp_year": 2099, "cvc": "123"}
        )
        buyers.append((fan, cart, card))
    barrier = threading.Barrier(len(buyers))
    outcomes = []

    def buy(fan, cart, card):
        try:
            barrier.wait()
            order = order_place(user=fan, cart=cart, address=ADDRESS, shipping_method="standard")
            order_pay(order=order, saved_card=card, user=fan)
            outcomes.append("paid")
        except Exception as exc:  # the CheckoutError of the ones who were too late
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=buyer) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("paid") == 5
    assert set(outcomes) == {"paid", "CheckoutError"}
    assert Order.objects.filter(status=OrderStatus.PAID).count() == 5
    assert Variant.objects.get(pk=variant.pk).stock == 0


def test_order_number_is_human_friendly(shop):
    order = _paid_order(shop)
    assert re.fullmatch(r"FH-[A-HJ-NP-TV-Z2-9]{7}", order.number)


def test_a_review_after_a_paid_order_is_a_verified_purchase(shop):
    from reviews.services import review_save

    order = _paid_order(shop)
    product = shop["black"].product
    assert review_save(product=product, user=order.user, rating=5).verified_purchase
    assert not review_save(product=product, user=UserFactory(), rating=5).verified_purchase


def test_a_paid_order_notifies_its_buyer(shop):
    from notifications.models import Notification

    order = _paid_order(shop)
    notification = Notification.objects.get(recipient=order.user)
    assert notification.title == f"Order {order.number} is paid"
    assert notification.url == order.get_absolute_url()


def test_second_purchase_with_saved_address_and_card(client, shop):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    client.post(reverse("orders:checkout"), _checkout_data(save_card="on", save_address="on"))
    address, card = fan.addresses.get(), fan.saved_cards.get(deleted_at=None)
    assert (address.city, card.last4, card.brand) == ("Springfield", "4242", "visa")
    cards_page = client.get(reverse("orders:saved_cards")).content.decode()
    assert "Visa •••• 4242" in cards_page

    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    response = client.post(
        reverse("orders:checkout"),
        {"saved_address": address.pk, "shipping_method": "express", "saved_card": card.pk},
    )
    assert response.status_code == 302
    second = Order.objects.filter(user=fan).order_by("-created_at").first()
    assert second.status == OrderStatus.PAID and second.shipping_cost == Decimal("19.90")
    assert second.ship_city == "Springfield"
    assert fan.saved_cards.count() == 1 and fan.addresses.count() == 1


def test_a_card_not_saved_for_later_is_not_kept(client, shop):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    client.post(reverse("orders:checkout"), _checkout_data())  # save_card unticked
    assert not fan.saved_cards.filter(deleted_at=None).exists()
    assert "No saved cards" in client.get(reverse("orders:saved_cards")).content.decode()


def test_someone_elses_saved_card_or_address_cannot_be_used(client, shop):
    owner = UserFactory()
    card = card_save(
        user=owner, card={"number": CARD_OK, "exp_month": 1, "exp_year": 2099, "cvc": "123"}
    )
    from orders.models import Address

    address = Address.objects.create(user=owner, **ADDRESS)
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    response = client.post(
        reverse("orders:checkout"),
        {"saved_address": address.pk, "shipping_method": "standard", "saved_card": card.pk},
    )
    assert response.status_code == 400
    assert not Order.objects.exists()
    assert client.post(reverse("orders:saved_card_delete", args=[card.pk])).status_code == 404


def test_checkout_uses_the_payment_element_with_stripe_keys(client, shop, settings):
    from payments.providers.registry import provider_get

    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_123"
    provider_get.cache_clear()
    try:
        client.force_login(UserFactory())
        client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
        html = client.get(reverse("orders:checkout")).content.decode()
        assert (
            'id="stripe-payment-element"' in html and 'data-publishable-key="pk_test_123"' in html
        )
        assert "https://js.stripe.com/v3/" in html and "/static/js/stripe-card.js" in html
        assert "Test cards" not in html
    finally:
        provider_get.cache_clear()


@pytest.mark.parametrize("quantity", ["0", "11", "abc", ""])
def test_a_cart_add_with_a_bad_quantity_says_what_is_wrong(client, shop, quantity):
    response = client.post(
        reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": quantity}
    )
    assert response["Location"] == f"/products/x2/?variant={shop['black'].pk}"
    page = client.get(response["Location"]).content.decode()
    assert "Choose a quantity between 1 and 10." in page
    assert "Choose an available option first." not in page
    assert not Cart.objects.filter(lines__isnull=False).exists()


def test_a_cart_add_with_a_bad_option_says_so(client, shop):
    response = client.post(reverse("orders:cart_add"), {"variant": "abc", "quantity": "1"})
    page = client.get(response["Location"]).content.decode()
    assert "Choose an available option first." in page


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("13", "Enter the expiry month as a number from 1 to 12."),
        ("0", "Enter the expiry month as a number from 1 to 12."),
        ("May", "Enter the expiry month as a number from 1 to 12."),
        ("", "Required for a new card."),
    ],
)
def test_an_expiry_month_out_of_range_says_1_to_12(client, shop, month, message):
    client.force_login(UserFactory())
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    response = client.post(reverse("orders:checkout"), _checkout_data(exp_month=month))
    assert response.status_code == 400
    errors = response.context["card_form"].errors["exp_month"]
    assert errors == [message]
    assert not Order.objects.exists() and not Payment.objects.exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("DE", "DE"), ("de", "DE"), ("Germany", "DE"), ("germany", "DE"), ("United Kingdom", "GB")],
)
def test_a_country_is_stored_as_its_code(client, shop, typed, stored):
    client.force_login(UserFactory())
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    data = _checkout_data(**{"address-country": typed, "save_address": "on"})
    response = client.post(reverse("orders:checkout"), data)
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.ship_country == stored and order.status == OrderStatus.PAID
    assert order.user.addresses.get().country == stored  # the saved address too


@pytest.mark.parametrize("typed", ["ZZ", "XX", "Narnia", "D"])
def test_a_country_that_does_not_exist_is_refused_before_paying(client, shop, typed):
    client.force_login(UserFactory())
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    response = client.post(reverse("orders:checkout"), _checkout_data(**{"address-country": typed}))
    assert response.status_code == 400
    assert response.context["address_form"].errors["country"] == ["Choose a country from the list."]
    assert not Order.objects.exists() and not Payment.objects.exists()
    assert _stock(shop["white"]) == 3


def test_the_checkout_offers_the_country_list(client, shop):
    client.force_login(UserFactory())
    client.post(reverse("orders:cart_add"), {"variant": shop["white"].pk, "quantity": 1})
    html = client.get(reverse("orders:checkout")).content.decode()
    assert (
        '<select name="address-country"' in html and '<option value="DE">Germany</option>' in html
    )


def test_a_reservation_refuses_a_country_that_does_not_exist(client):
    from preorders.models import Reservation
    from tests.preorders import batch_open

    batch = batch_open(product=ProductFactory())
    client.force_login(UserFactory())
    data = {f"address-{key}": value for key, value in ADDRESS.items()}
    data.update(
        {
            "variant": batch.product.variants.first().pk,
            "quantity": 1,
            "request_key": "k" * 32,
            "number": CARD_OK,
            "exp_month": 12,
            "exp_year": 2099,
            "cvc": "123",
            "address-country": "ZZ",
        }
    )
    response = client.post(reverse("preorders:reserve", kwargs={"slug": batch.slug}), data)
    assert "Choose a country from the list." in response.content.decode()
    assert not Reservation.objects.exists()
    data.update({"address-country": "Germany", "request_key": "m" * 32})
    client.post(reverse("preorders:reserve", kwargs={"slug": batch.slug}), data)
    assert Reservation.objects.get().ship_country == "DE"


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1e999", "12.505", "abc"])
def test_a_refund_amount_that_is_not_money_is_refused(client, shop, amount):
    order = _paid_order(shop)
    client.force_login(_operator(shop["brand"]))
    response = client.post(
        f"/admin/orders/order/{order.pk}/operate/refund/",
        {"amount": amount, "reason": "x", "token": "t" * 32},
    )
    assert response.status_code == 200
    assert "Enter the amount to refund, e.g. 12.50." in response.content.decode()
    order.refresh_from_db()
    assert order.amount_refunded == 0 and order.status == OrderStatus.PAID


def test_the_order_list_counts_units_not_lines(client, shop):
    from tests.shop import order_paid

    fan = UserFactory()
    order_paid(variant=shop["white"], quantity=3, buyer=fan)
    client.force_login(fan)
    page = client.get(reverse("orders:list")).content.decode()
    assert "3 items" in page and "1 item" not in page


def _cart_badge(client) -> tuple[str | None, int]:
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/").content.decode()
    badge = re.search(r'badge-cart" aria-hidden="true">(\d+)<', page)
    cart_queries = sum('"orders_cartline"' in q["sql"] for q in queries)
    return (badge[1] if badge else None), cart_queries


def test_the_header_cart_count_costs_no_query_and_follows_every_change(
    client, shop, django_capture_on_commit_callbacks
):
    fan = UserFactory()
    client.force_login(fan)
    assert _cart_badge(client) == (None, 1)  # counted once...
    assert _cart_badge(client) == (None, 0)  # ...then kept
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("orders:cart_add"), {"variant": shop["black"].pk, "quantity": "2"})
    assert _cart_badge(client) == ("2", 1)  # the fan's next page shows it
    assert _cart_badge(client) == ("2", 0)
    cart = Cart.objects.get(user=fan)
    with django_capture_on_commit_callbacks(execute=True):
        cart_add(cart=cart, variant=shop["white"], quantity=1)
    assert _cart_badge(client)[0] == "3"
    other = UserFactory()
    client.force_login(other)
    assert _cart_badge(client)[0] is None  # another fan's count is their own
