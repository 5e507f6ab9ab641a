from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, QuerySet, Sum
from django.http import Http404

from accounts.models import User
from catalog.models import ProductImage
from orders.models import Address, Cart, CartLine, Order, OrderEvent, OrderPart
from orders.pricing import CheckoutTotals, checkout_totals, shipping_methods


@dataclass
class CartSummary:
    cart: Cart | None
    lines: list[CartLine]
    subtotal: Decimal
    count: int

    @property
    def is_empty(self) -> bool:
        return not self.lines


def cart_summary(cart: Cart | None) -> CartSummary:
    """The cart's lines with their variant, product, brand and first image: one query for
    the lines and one for the images, whatever the number of lines."""
    if cart is None:
        return CartSummary(None, [], Decimal("0.00"), 0)
    lines = list(
        CartLine.objects.filter(cart=cart)
        .select_related("variant__product__brand", "variant__product__category")
        .prefetch_related(
            Prefetch(
                "variant__product__images",
                queryset=ProductImage.objects.order_by("position", "id"),
                to_attr="ordered_images",
            )
        )
        .order_by("added_at", "id")
    )
    for line in lines:
        line.line_total = line.variant.price * line.quantity
    subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
    return CartSummary(cart, lines, subtotal, sum(line.quantity for line in lines))


def cart_page_state(*, user: User) -> tuple[bool, tuple[int, ...]]:
    """What names a fan's cart page besides their cart's token, in one query: whether the
    cart holds a discount code, and the products of its lines (their versions name the
    prices and stock the lines show)."""
    rows = Cart.objects.filter(user=user).values_list("discount_code", "lines__variant__product")
    rows = list(rows)
    has_code = any(code for code, _ in rows)
    return has_code, tuple(sorted({product for _, product in rows if product is not None}))


def shipping_options(subtotal: Decimal) -> list[dict]:
    return [
        {
            "code": method.code,
            "label": method.label,
            "cost": method.cost_for(subtotal),
            "free_above": method.free_above,
        }
        for method in shipping_methods().values()
    ]


def order_list_for(*, user: User) -> QuerySet[Order]:
    """The user's orders, newest first, each with `units`: how many things were bought."""
    return (
        Order.objects.filter(user=user)
        .annotate(units=Sum("lines__quantity"))
        .order_by("-created_at")
    )


def order_for(*, user: User, number: str) -> Order:
    """The user's own order with its parts (each with its brand, lines and state) and its
    history; another user's number is a 404 like an unknown one. `order.timeline` is the
    history the shopper sees: with one part, its part events that repeat the order's own
    state changes are left out."""
    order = (
        Order.objects.filter(user=user, number=number)
        .prefetch_related(
            "lines",
            Prefetch("parts", queryset=OrderPart.objects.select_related("brand").order_by("id")),
            "parts__lines",
            Prefetch("events", queryset=OrderEvent.objects.select_related("part__brand")),
        )
        .first()
    )
    if order is None:
        raise Http404("No such order")
    several = len(order.parts.all()) > 1
    order.several_parts = several
    order.timeline = [
        event
        for event in order.events.all()
        if several or event.part_id is None or event.from_status == event.to_status
    ]
    return order


def addresses_for(*, user: User) -> QuerySet[Address]:
    return Address.objects.filter(user=user)


def checkout_totals_by_method(*, user, summary: CartSummary) -> dict[str, CheckoutTotals]:
    """The totals for each shipping method (the page shows the chosen one, and sends the
    one for each method back, so the order is refused if it changed meanwhile)."""
    return {
        code: checkout_totals(
            user=user, cart=summary.cart, cart_lines=summary.lines, shipping_method=code
        )
        for code in shipping_methods()
    }
