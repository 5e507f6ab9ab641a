"""The orders CSV for a worker's export job (catalog.exports): one row per order of the
selection, with the brand's part of it (its lines' money, its fulfilment), never the whole
order's money, which holds other brands' goods."""

from __future__ import annotations

from collections.abc import Iterator

from catalog.exports import csv_safe
from catalog.models import Brand
from orders.models import OrderPart

ORDER_CSV_HEADER = [
    "number",
    "customer",
    "order_status",
    "part_status",
    "currency",
    "subtotal",
    "shipping",
    "discount",
    "total",
    "refunded",
    "tracking_number",
    "ship_name",
    "ship_city",
    "ship_country",
    "created_at",
    "paid_at",
    "shipped_at",
]


def _when(value) -> str:
    return value.isoformat() if value else ""


def order_parts_csv_rows(*, parts) -> Iterator[list]:
    """The header, then a row per part of the (already scoped) queryset, read in chunks."""
    yield ORDER_CSV_HEADER
    for part in parts.select_related("order").order_by("order_id").iterator(chunk_size=2000):
        order = part.order
        yield csv_safe(
            [
                order.number,
                order.email,
                order.status,
                part.status,
                order.currency,
                part.subtotal,
                part.shipping_share,
                part.discount,
                part.total,
                part.amount_refunded,
                part.tracking_number,
                order.ship_name,
                order.ship_city,
                order.ship_country,
                _when(order.created_at),
                _when(order.paid_at),
                _when(part.shipped_at),
            ]
        )


def orders_export(*, brand: Brand, params: dict) -> tuple[int, Iterator[list]]:
    """The selected orders' parts of `brand` (another brand's order has none: no row)."""
    parts = OrderPart.objects.filter(order_id__in=params.get("ids", []), brand=brand)
    return parts.count(), order_parts_csv_rows(parts=parts)
