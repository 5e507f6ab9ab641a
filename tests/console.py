"""Helpers for the operators' console tests: team members with the production groups, and
paid orders of a brand."""

from decimal import Decimal

from accounts.models import User
from catalog.team import brand_operator_add
from orders.models import Cart
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save
from storefront.demo import _operators_group
from tests.factories import ProductFactory, UserFactory, VariantFactory
from tests.shop import ADDRESS, CARD_OK


def operator_of(brand, *, role: str, email: str | None = None) -> User:
    """A member of `brand`'s team with `role`, whose permissions come only from the groups
    the role puts them in (as in production)."""
    _operators_group()  # the staff's permissions, as the demo and production have them
    user = UserFactory(**({"email": email} if email else {}))
    brand_operator_add(brand=brand, user=user, role=role, actor=None)
    return User.objects.get(pk=user.pk)  # fresh permission cache


def paid_order(brand, *, price: Decimal, buyer: User | None = None, quantity: int = 1):
    """A paid order of one line of `brand` at `price`: (order, the brand's part)."""
    variant = VariantFactory(product=ProductFactory(brand=brand), price=price, stock=100)
    buyer = buyer or UserFactory()
    cart, _ = Cart.objects.get_or_create(user=buyer)
    cart_add(cart=cart, variant=variant, quantity=quantity)
    order = order_place(user=buyer, cart=cart, address=ADDRESS, shipping_method="standard")
    order_pay(order=order, saved_card=card_save(user=buyer, card=CARD_OK), user=buyer)
    order.refresh_from_db()
    return order, order.parts.get(brand=brand)
