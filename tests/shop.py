"""Orders for tests, made through the real services (cart, placement, local card payment)."""

from orders.models import Cart, Order
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save
from tests.factories import UserFactory

ADDRESS = {
    "full_name": "A Fan",
    "line1": "1 Fan Street",
    "line2": "",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
    "phone": "",
}
CARD_OK = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def order_placed(*, variant, quantity: int = 1, buyer=None) -> Order:
    buyer = buyer or UserFactory()
    cart, _ = Cart.objects.get_or_create(user=buyer)
    cart_add(cart=cart, variant=variant, quantity=quantity)
    return order_place(user=buyer, cart=cart, address=ADDRESS, shipping_method="standard")


def order_paid(*, variant, quantity: int = 1, buyer=None) -> Order:
    order = order_placed(variant=variant, quantity=quantity, buyer=buyer)
    card = card_save(user=order.user, card=CARD_OK)
    order_pay(order=order, saved_card=card, user=order.user)
    order.refresh_from_db()
    return order
