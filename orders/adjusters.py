"""Price adjusters: how apps above orders (vouchers, later other offers) change checkout
totals without orders importing them. Each registers one adjuster here in its
AppConfig.ready(); checkout asks them explicitly (orders.pricing.checkout_totals and
orders.services.order_place). An explicit registry, called explicitly; not Django signals.
The same pattern as payments/listeners.py and orders/listeners.py.

Combination rule: one discount code per order (Cart.discount_code), so at most one
adjustment; the first adjuster that knows the code prices it.

An adjuster has three methods:
- `quote(*, basket) -> Adjustment | None`: read-only; None when the code is not its own;
  raises CodeRefused(reason) when it is its own but does not apply (expired, minimum not
  reached, already used, not for these products). Called for every page that shows totals.
- `claim(*, basket, adjustment, order) -> None`: inside order_place's transaction, after
  the order's lines and parts are written: take the use (conditional UPDATE, constraints)
  or raise CodeRefused, which rolls the whole order back.
- `known(*, code) -> bool`: whether the code exists at all (for the generic answer and
  the guessing limit of orders.services.cart_code_apply).
Giving a use back when an order is cancelled or refunded goes through
orders.listeners.order_voided_register.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class CodeRefused(Exception):
    """The code is known but does not apply to this basket; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PricedLine:
    variant_id: int
    product_id: int
    category_id: int | None
    category_path: str
    brand_id: int
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Basket:
    """What checkout is about to charge, before adjustments."""

    user_id: int | None
    email: str
    cart_id: int | None
    code: str
    lines: tuple[PricedLine, ...]
    subtotal: Decimal
    shipping_method: str
    shipping: Decimal
    # The shipping split over the brands' parts (orders.fulfilment.amount_split).
    shipping_shares: dict[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Adjustment:
    source: str  # "voucher:12"
    code: str
    label: str  # what the shopper reads: "SPRING10: 10% off Nimbus"
    line_discounts: dict[int, Decimal]  # variant id -> amount off that line
    shipping_discounts: dict[int, Decimal]  # brand id -> amount off its shipping share

    @property
    def lines_total(self) -> Decimal:
        return sum(self.line_discounts.values(), Decimal("0.00"))

    @property
    def shipping_total(self) -> Decimal:
        return sum(self.shipping_discounts.values(), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.lines_total + self.shipping_total


class PriceAdjuster(Protocol):
    def quote(self, *, basket: Basket) -> Adjustment | None: ...

    def claim(self, *, basket: Basket, adjustment: Adjustment, order) -> None: ...

    def known(self, *, code: str) -> bool: ...


_adjusters: list[PriceAdjuster] = []


def price_adjuster_register(adjuster: PriceAdjuster) -> None:
    if adjuster not in _adjusters:
        _adjusters.append(adjuster)


def price_adjusters() -> list[PriceAdjuster]:
    return list(_adjusters)


def code_normalise(code: str) -> str:
    return "".join(code.split()).upper()[:40]


def adjustment_quote(*, basket: Basket) -> tuple[Adjustment | None, PriceAdjuster | None]:
    """The adjustment of the basket's code and who made it; CodeRefused when it does not
    apply; (None, None) with no code or a code nobody knows."""
    if not basket.code:
        return None, None
    for adjuster in _adjusters:
        adjustment = adjuster.quote(basket=basket)
        if adjustment is not None:
            return _bounded(basket, adjustment), adjuster
    return None, None


def code_known(code: str) -> bool:
    return any(adjuster.known(code=code) for adjuster in _adjusters)


def _bounded(basket: Basket, adjustment: Adjustment) -> Adjustment:
    """Never more off a line than the line, nor off a brand's shipping than its share: a
    total can never go below zero, whatever an adjuster computes."""
    lines = {line.variant_id: line.line_total for line in basket.lines}
    return Adjustment(
        source=adjustment.source,
        code=adjustment.code,
        label=adjustment.label,
        line_discounts={
            variant_id: min(max(amount, Decimal("0.00")), lines[variant_id])
            for variant_id, amount in adjustment.line_discounts.items()
            if variant_id in lines and amount > 0
        },
        shipping_discounts={
            brand_id: min(max(amount, Decimal("0.00")), basket.shipping_shares.get(brand_id, 0))
            for brand_id, amount in adjustment.shipping_discounts.items()
            if amount > 0 and basket.shipping_shares.get(brand_id)
        },
    )
