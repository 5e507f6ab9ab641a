"""Points for buying, composed here because orders and communities (one layer) never import
each other: orders calls its listeners (orders/listeners.py) on commit, these award or take
back points through communities.honour's ledger. One award per brand part of an order,
sourced "order-part:<id>"; each refund of the part takes its share back once (for a
pre-order's order, from the points its confirmed reservation earned)."""

from __future__ import annotations

from communities.honour import purchase_points_award, purchase_points_take_back
from orders.models import Order, OrderPart, OrderRefund


def _award_source(part_id: int) -> str:
    return f"order-part:{part_id}"


def order_paid_award_points(*, order_id: int) -> None:
    order = Order.objects.get(pk=order_id)
    for part in OrderPart.objects.filter(order=order).select_related("brand").order_by("id"):
        purchase_points_award(
            brand_id=part.brand_id,
            user_id=order.user_id,
            amount=part.total,
            reason=f"Bought from {part.brand.name} (order {order.number})",
            source=_award_source(part.pk),
        )


def order_refund_take_back_points(*, refund_id: int) -> None:
    refund = OrderRefund.objects.select_related("part", "order").get(pk=refund_id)
    part = refund.part
    # A pre-order's order earned its points when the batch was confirmed (preorders.honour,
    # sourced by the reservation it was paid through): its refunds take those back.
    paid_through = refund.order.paid_through
    purchase_points_take_back(
        award_source=paid_through
        if paid_through.startswith("preorder-res:")
        else _award_source(part.pk),
        refund_key=str(refund.pk),
        refunded=part.amount_refunded,
        paid=part.total,
        reason=f"Refund on order {refund.order.number}",
    )
