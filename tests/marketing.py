"""Vouchers and placements for tests, made through the models and services."""

from decimal import Decimal

from marketing.models import Placement, Voucher, VoucherCode
from orders.models import Cart
from orders.services import cart_add, cart_code_set


def voucher_make(*, brand, code: str = "SPRING10", **fields) -> Voucher:
    defaults = {"name": f"{code} voucher", "kind": "percent", "value": Decimal("10")}
    voucher = Voucher.objects.create(brand=brand, **{**defaults, **fields})
    VoucherCode.objects.create(voucher=voucher, code=code)
    return voucher


def cart_with(*, user, items, code: str = "") -> Cart:
    """`items`: [(variant, quantity)]."""
    cart, _ = Cart.objects.get_or_create(user=user)
    for variant, quantity in items:
        cart_add(cart=cart, variant=variant, quantity=quantity)
    if code:
        cart_code_set(cart=cart, code=code)
    cart.refresh_from_db()
    return cart


def placement_make(*, brand, voucher=None, **fields) -> Placement:
    defaults = {"name": "Shop window", "kind": "shop_window"}
    return Placement.objects.create(brand=brand, voucher=voucher, **{**defaults, **fields})
