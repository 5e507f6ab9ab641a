"""Shipping methods and prices. From settings (SHIPPING_*), read at call time."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings


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
