"""A few orders by the demo fans, paid with the local provider's test card, so that the
operators' admin has orders to ship and refund."""

from catalog.models import ProductStatus, Variant
from orders.models import Cart, Order
from orders.services import cart_add, order_pay, order_place
from payments.services import card_save

DEMO_ADDRESS = {
    "full_name": "",
    "line1": "12 Fan Street",
    "line2": "",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
    "phone": "",
}


def demo_seed_orders(*, fans) -> int:
    created = 0
    variants = list(
        Variant.objects.filter(product__status=ProductStatus.ACTIVE, stock__gte=3)
        .select_related("product")
        .order_by("pk")
    )
    for n, fan in enumerate(fans[:3]):
        if Order.objects.filter(user=fan).exists() or len(variants) < 6:
            continue
        cart, _ = Cart.objects.get_or_create(user=fan)
        cart_add(cart=cart, variant=variants[n * 2], quantity=1)
        cart_add(cart=cart, variant=variants[n * 2 + 1], quantity=1)
        order = order_place(
            user=fan,
            cart=cart,
            shipping_method="standard",
            address={**DEMO_ADDRESS, "full_name": fan.public_name},
        )
        card = card_save(
            user=fan,
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        )
        order_pay(order=order, saved_card=card, user=fan)
        created += 1
    return created
