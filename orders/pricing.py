"""Shipping methods and prices. From settings (SHIPPING_*), read at call time."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from orders.adjusters import Adjustment, Basket, CodeRefused, PricedLine, adjustment_quote


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    label: str
    cost: Decimal
    free_above: Decimal | None

    def cost_for(self, subtotal: Decimal) -> Decimal:
        if self.free_above is not None and subtotal >= self.free_above:
            return Decimal("0.00")
        return self.cost


def shipping_methods() -> dict[str, ShippingMethod]:
    return {
        "standard": ShippingMethod(
            "standard",
            "Standard (3–5 days)",
            Decimal(settings.SHIPPING_STANDARD_COST),
            Decimal(settings.SHIPPING_FREE_ABOVE),
        ),
        "express": ShippingMethod(
            "express", "Express (1–2 days)", Decimal(settings.SHIPPING_EXPRESS_COST), None
        ),
    }


# --- checkout totals --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutTotals:
    """What the checkout shows and then charges: lines, shipping, the discount and the
    total. `code_problem` says why the cart's code does not apply (then no discount)."""

    basket: Basket
    adjustment: Adjustment | None
    adjuster: object | None
    code_problem: str

    @property
    def subtotal(self) -> Decimal:
        return self.basket.subtotal

    @property
    def shipping(self) -> Decimal:
        return self.basket.shipping

    @property
    def discount(self) -> Decimal:
        return self.adjustment.total if self.adjustment else Decimal("0.00")

    @property
    def shipping_discount(self) -> Decimal:
        return self.adjustment.shipping_total if self.adjustment else Decimal("0.00")

    @property
    def lines_discount(self) -> Decimal:
        return self.adjustment.lines_total if self.adjustment else Decimal("0.00")

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping - self.discount

    @property
    def code(self) -> str:
        return self.basket.code

    def line_discount(self, variant_id: int) -> Decimal:
        if self.adjustment is None:
            return Decimal("0.00")
        return self.adjustment.line_discounts.get(variant_id, Decimal("0.00"))


def basket_build(*, user, cart, cart_lines, shipping_method: str) -> Basket:
    """The basket of `cart_lines` (CartLines with variant__product loaded) at today's prices."""
    from orders.fulfilment import amount_split

    lines = tuple(
        PricedLine(
            variant_id=line.variant_id,
            product_id=line.variant.product_id,
            category_id=line.variant.product.category_id,
            category_path=getattr(line.variant.product.category, "path", "")
            if line.variant.product.category_id
            else "",
            brand_id=line.variant.product.brand_id,
            unit_price=line.variant.price,
            quantity=line.quantity,
        )
        for line in cart_lines
    )
    subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
    method = shipping_methods().get(shipping_method)
    shipping = method.cost_for(subtotal) if method else Decimal("0.00")
    by_brand: dict[int, Decimal] = {}
    for line in lines:
        by_brand[line.brand_id] = by_brand.get(line.brand_id, Decimal("0.00")) + line.line_total
    brands = sorted(by_brand)
    shares = amount_split(amount=shipping, weights=[by_brand[b] for b in brands])
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return Basket(
        user_id=user.pk if authenticated else None,
        email=user.email if authenticated else "",
        cart_id=cart.pk if cart else None,
        code=cart.discount_code if cart else "",
        lines=lines,
        subtotal=subtotal,
        shipping_method=shipping_method,
        shipping=shipping,
        shipping_shares=dict(zip(brands, shares, strict=True)),
    )


def checkout_totals(*, user, cart, cart_lines, shipping_method: str) -> CheckoutTotals:
    """The totals the shopper sees before paying (and order_place records)."""
    basket = basket_build(
        user=user, cart=cart, cart_lines=cart_lines, shipping_method=shipping_method
    )
    try:
        adjustment, adjuster = adjustment_quote(basket=basket)
    except CodeRefused as refused:
        return CheckoutTotals(basket, None, None, refused.reason)
    if basket.code and adjustment is None:
        return CheckoutTotals(basket, None, None, CODE_UNKNOWN)
    return CheckoutTotals(basket, adjustment, adjuster, "")


CODE_UNKNOWN = "This code isn’t valid."
