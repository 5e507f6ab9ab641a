"""A fan's own pages from the cache (config.page_cache, orders.page_versions): their cart,
their orders and their marks on a product page cost no query once cached; whatever they or
the shop do (a cart add, a checkout, a payment, a refund, a review, a wishlist mark, a
price change) shows on their next request, and no fan ever sees another's."""

import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.services import variant_save
from orders.fulfilment import order_cancel, order_part_refund, order_ship
from orders.models import Cart, Order, OrderStatus
from orders.services import (
    PaidOrderSpec,
    cart_add,
    cart_code_set,
    order_pay,
    orders_create_paid,
)
from payments.services import card_save
from reviews.models import Review
from tests.factories import UserFactory
from tests.shop import ADDRESS, CARD_OK, order_paid, order_placed

pytestmark = pytest.mark.django_db


def _get(client, path: str) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def _warm(client, path: str) -> tuple[str, int]:
    """The page twice: the second is what a fan's reload costs."""
    _get(client, path)
    return _get(client, path)


def _token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="(\w+)">', html)[1]


def _line_id(html: str) -> str:
    return re.search(r'name="line" value="(\d+)"', html)[1]


def _private_keys() -> list[str]:
    return [key for key in cache.keys("page:*") if ".cart_view:" in key or ".order_list:" in key]


# --- the cart -------------------------------------------------------------------------------


def test_a_fans_cart_page_is_cached_for_them_and_nobody_else(
    client, shop, django_capture_on_commit_callbacks
):
    lin, ada = UserFactory(display_name="Lin Zhou"), UserFactory(display_name="Ada Park")
    with django_capture_on_commit_callbacks(execute=True):
        cart_add(cart=Cart.objects.create(user=lin), variant=shop["black"], quantity=2)
        cart_add(cart=Cart.objects.create(user=ada), variant=shop["white"], quantity=1)
    client.force_login(lin)
    with CaptureQueriesContext(connection) as cold:
        client.get("/cart/")
    html, warm = _get(client, "/cart/")
    assert warm == 0 < len(cold)  # the tokens, the header's count and the page from the cache
    assert "Black" in html and "$1,000.00" in html and "Lin Zhou" in html
    assert "fhcsrf" not in html and "<!--fh:" not in html
    assert 'badge-cart" aria-hidden="true">2<' in html
    client.force_login(ada)
    html, warm = _warm(client, "/cart/")
    assert warm == 0 and "White" in html and "$40.00" in html and "Ada Park" in html
    assert "Black" not in html and "$1,000.00" not in html and "Lin Zhou" not in html
    assert 'badge-cart" aria-hidden="true">1<' in html
    assert len(_private_keys()) == 2  # one entry each
    client.force_login(UserFactory())
    html, warm = _warm(client, "/cart/")
    assert warm == 0 and "Your cart is empty." in html and "White" not in html


def test_an_add_an_update_and_a_removal_show_on_the_next_request(
    shop, django_capture_on_commit_callbacks
):
    client = Client(enforce_csrf_checks=True)
    fan = UserFactory()
    client.force_login(fan)
    html, _ = _warm(client, "/cart/")
    assert "Your cart is empty." in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/cart/add/",
            {"variant": shop["black"].pk, "quantity": 1, "csrfmiddlewaretoken": _token(html)},
        )
    assert response.status_code == 302
    html, _ = _get(client, "/cart/")
    assert "was added to your cart" in html and "Black" in html  # the flash message...
    html, _ = _get(client, "/cart/")
    assert "was added to your cart" not in html and "Black" in html  # ...shown once
    html, warm = _get(client, "/cart/")
    assert warm == 0 and "Black" in html
    # The cached page's forms carry this request's own token, which the POST then passes.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/cart/update/",
            {"line": _line_id(html), "quantity": 3, "csrfmiddlewaretoken": _token(html)},
        )
    assert response.status_code == 302
    html, _ = _get(client, "/cart/")
    assert 'value="3"' in html and "$1,500.00" in html
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/cart/update/",
            {"line": _line_id(html), "quantity": 0, "csrfmiddlewaretoken": _token(html)},
        )
    html, _ = _get(client, "/cart/")
    assert "Your cart is empty." in html and "Black" not in html
    refused = Client(enforce_csrf_checks=True)
    refused.force_login(fan)
    response = refused.post("/cart/update/", {"line": "1", "quantity": 0})
    assert response.status_code == 403  # the page's token is the request's, never shared


def test_a_price_or_stock_change_shows_in_the_cart_at_once(
    client, shop, django_capture_on_commit_callbacks
):
    fan = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        cart_add(cart=Cart.objects.create(user=fan), variant=shop["white"], quantity=3)
    client.force_login(fan)
    html, warm = _warm(client, "/cart/")
    assert warm == 0 and "$120.00" in html and "left" not in html
    white = shop["white"]
    white.price = Decimal("35.00")
    with django_capture_on_commit_callbacks(execute=True):
        variant_save(variant=white, fields=["price"])
    assert "$105.00" in _get(client, "/cart/")[0]
    with django_capture_on_commit_callbacks(execute=True):
        order_placed(variant=white, quantity=2)  # another fan's checkout holds two units
    html, _ = _get(client, "/cart/")
    assert "Only 1 left" in html


def test_a_cart_with_a_discount_code_is_rendered_each_time(
    client, shop, django_capture_on_commit_callbacks
):
    fan = UserFactory()
    cart = Cart.objects.create(user=fan)
    with django_capture_on_commit_callbacks(execute=True):
        cart_add(cart=cart, variant=shop["white"], quantity=1)
        cart_code_set(cart=cart, code="SPRING")
    client.force_login(fan)
    _, warm = _warm(client, "/cart/")
    assert warm > 0 and not _private_keys()  # its quote follows the code's own uses


def test_a_checkout_empties_the_cart_and_shows_in_the_orders_list(
    client, shop, django_capture_on_commit_callbacks
):
    fan = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        cart_add(cart=Cart.objects.create(user=fan), variant=shop["black"], quantity=1)
    client.force_login(fan)
    assert "Black" in _warm(client, "/cart/")[0]
    html, warm = _warm(client, "/orders/")
    assert warm == 0 and "No orders yet" in html
    data = {f"address-{key}": value for key, value in ADDRESS.items()}
    data.update(
        shipping_method="standard",
        number="4242 4242 4242 4242",
        exp_month="12",
        exp_year=str(timezone.now().year + 3),
        cvc="123",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/checkout/", data)
    order = Order.objects.get(user=fan)
    assert response.status_code == 302 and order.status == OrderStatus.PAID
    html, _ = _get(client, "/cart/")
    assert "Your cart is empty." in html
    client.get(order.get_absolute_url())  # the "Thank you" message is shown there
    html, _ = _get(client, "/orders/")
    assert order.number in html and "badge-success" in html and "No orders yet" not in html


# --- the orders list -------------------------------------------------------------------------


def _status_of(html: str, number: str) -> str:
    row = html[html.index(number) :]
    return re.search(r'class="badge[^"]*">([^<]+)<', row)[1]


def test_payments_shipping_refunds_and_cancellations_show_on_the_next_request(
    client, shop, django_capture_on_commit_callbacks
):
    fan = UserFactory()
    staff = UserFactory(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        order = order_placed(variant=shop["white"], quantity=2, buyer=fan)
    client.force_login(fan)
    html, warm = _warm(client, "/orders/")
    assert warm == 0 and _status_of(html, order.number) == "Awaiting payment"
    with django_capture_on_commit_callbacks(execute=True):
        order_pay(order=order, saved_card=card_save(user=fan, card=CARD_OK), user=fan)
    assert _status_of(_get(client, "/orders/")[0], order.number) == "Paid"
    with django_capture_on_commit_callbacks(execute=True):
        order_ship(order=order, tracking_number="1Z999", actor=staff)
    assert _status_of(_get(client, "/orders/")[0], order.number) == "Shipped"
    with django_capture_on_commit_callbacks(execute=True):
        order_part_refund(part=order.parts.get(), actor=staff, amount=order.total)
    assert _status_of(_get(client, "/orders/")[0], order.number) == "Refunded"
    with django_capture_on_commit_callbacks(execute=True):
        other = order_paid(variant=shop["black"], buyer=fan)
    html, warm = _warm(client, "/orders/")
    assert warm == 0 and _status_of(html, other.number) == "Paid" and "2 orders" in html
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order=other, actor=staff, reason="Asked")
    assert _status_of(_get(client, "/orders/")[0], other.number) == "Cancelled"


def test_orders_settled_in_bulk_show_in_each_fans_list(
    client, shop, django_capture_on_commit_callbacks
):
    lin, ada = UserFactory(), UserFactory()
    for fan in (lin, ada):
        client.force_login(fan)
        assert "No orders yet" in _warm(client, "/orders/")[0]
    specs = [
        PaidOrderSpec(
            user_id=fan.pk,
            email=fan.email,
            variant=shop["white"],
            unit_price=Decimal("40.00"),
            quantity=quantity,
            address=ADDRESS,
            paid_through=f"test:{fan.pk}",
            note="Settled",
        )
        for fan, quantity in ((lin, 1), (ada, 4))
    ]
    with django_capture_on_commit_callbacks(execute=True):
        orders_create_paid(specs=specs, shipping_method="standard")
    for fan, units in ((lin, "1 item"), (ada, "4 items")):
        client.force_login(fan)
        html, _ = _get(client, "/orders/")
        (number,) = Order.objects.filter(user=fan).values_list("number", flat=True)
        assert number in html and units in html and "No orders yet" not in html
        others = Order.objects.exclude(user=fan).values_list("number", flat=True)
        assert not any(other in html for other in others)  # nobody else's orders


def test_a_settled_pre_order_shows_in_each_fans_warm_orders_list(
    client, django_capture_on_commit_callbacks
):
    """The settlement writes a chunk's orders in the statement that charges them (no
    Order.save()): each fan's cached /orders/ must still show theirs on the next request."""
    from preorders.services import batch_close
    from tests.preorders import batch_open, reserve

    batch = batch_open(min_quantity=1)
    reservations = [reserve(batch=batch, quantity=q) for q in (1, 3)]
    for reservation in reservations:
        client.force_login(reservation.user)
        assert "No orders yet" in _warm(client, "/orders/")[0]
    with django_capture_on_commit_callbacks(execute=True):
        batch_close(batch=batch, force=True)
    for reservation in reservations:
        reservation.refresh_from_db()
        client.force_login(reservation.user)
        html, _ = _get(client, "/orders/")
        assert reservation.order.number in html and "No orders yet" not in html


def test_a_visitor_is_sent_to_sign_in_and_gets_no_ones_orders(client, shop):
    fan = UserFactory()
    order = order_paid(variant=shop["white"], buyer=fan)
    client.force_login(fan)
    _warm(client, "/orders/")
    client.logout()
    response = client.get("/orders/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert order.number not in response.content.decode()


# --- a fan's marks on a product page --------------------------------------------------------


def test_a_review_and_a_wishlist_mark_show_on_the_next_request(
    client, shop, django_capture_on_commit_callbacks
):
    product = shop["product"]
    path = product.get_absolute_url()
    fan = UserFactory(display_name="Lin Zhou")
    client.force_login(fan)
    html, warm = _warm(client, path)
    assert warm == 0 and "Write a review" in html and "Add to wishlist" in html
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/products/{product.slug}/review/", {"rating": 4, "title": "Warm sound"})
    _get(client, path)  # their flash message: rendered for them, not cached
    html, _ = _get(client, path)
    assert "Edit your review" in html and "Warm sound" in html
    assert _get(client, path)[1] == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/wishlist/{product.pk}/toggle/")
    _get(client, path)
    html, _ = _get(client, path)
    assert "On your wishlist" in html
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/wishlist/{product.pk}/toggle/")
    _get(client, path)
    html, _ = _get(client, path)
    assert "Add to wishlist" in html and "On your wishlist" not in html
    review = Review.objects.get(user=fan)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/reviews/{review.pk}/delete/")
    _get(client, path)
    html, warm = _warm(client, path)
    assert "Write a review" in html and "Edit your review" not in html and warm == 0
