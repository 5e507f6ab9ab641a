"""The placements' funnel: what their scans led to, for the operator.

A fan of a placement (PlacementFan) is an account behind one of its scans; what they did
after their first scan of it counts for it: community joins (the brand's communities),
orders (the brand's parts of paid orders, less refunds), and the steps other apps register
(pre-order reservations, through storefront). Several placements of a brand scanned by one
fan each count that fan's later orders (no last-touch split)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from communities.models import Membership
from marketing.models import Placement, PlacementFan, Scan, VoucherClaim, VoucherUse
from orders.models import OrderPart, OrderStatus

ORDER_COUNTED = [OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED]

# Steps of other apps: key -> (label, counter(placement) -> int).
_steps: dict[str, tuple[str, Callable[[Placement], int]]] = {}


def funnel_step_register(key: str, label: str, counter: Callable[[Placement], int]) -> None:
    _steps[key] = (label, counter)


@dataclass(frozen=True)
class Funnel:
    scans: int
    unique_visitors: int
    signed_in_scans: int
    fans: int
    sign_ups: int
    community_joins: int
    vouchers_claimed: int
    vouchers_used: int
    orders: int
    revenue: Decimal
    extra: dict[str, tuple[str, int]]


def placement_orders(placement: Placement):
    return OrderPart.objects.filter(
        brand_id=placement.brand_id,
        status__in=ORDER_COUNTED,
        order__user__placement_visits__placement=placement,
        order__created_at__gte=F("order__user__placement_visits__first_scan_at"),
    )


def placement_funnel(placement: Placement) -> Funnel:
    scans = Scan.objects.filter(placement=placement).aggregate(
        scans=Count("pk"),
        visitors=Count("visitor_key", distinct=True),
        signed_in=Count("pk", filter=Q(signed_in=True)),
    )
    fans = PlacementFan.objects.filter(placement=placement).aggregate(
        fans=Count("pk"), sign_ups=Count("pk", filter=Q(signed_up=True))
    )
    joins = (
        Membership.objects.filter(
            community__brand_id=placement.brand_id,
            user__placement_visits__placement=placement,
            joined_at__gte=F("user__placement_visits__first_scan_at"),
        )
        .values("user_id")
        .distinct()
        .count()
    )
    orders = placement_orders(placement).aggregate(
        orders=Count("order_id", distinct=True),
        revenue=Sum(F("total") - F("amount_refunded")),
    )
    return Funnel(
        scans=scans["scans"],
        unique_visitors=scans["visitors"],
        signed_in_scans=scans["signed_in"],
        fans=fans["fans"],
        sign_ups=fans["sign_ups"],
        community_joins=joins,
        vouchers_claimed=VoucherClaim.objects.filter(placement=placement).count(),
        vouchers_used=VoucherUse.objects.filter(
            released_at=None, code__claim__placement=placement
        ).count(),
        orders=orders["orders"],
        revenue=orders["revenue"] or Decimal("0.00"),
        extra={key: (label, counter(placement)) for key, (label, counter) in _steps.items()},
    )


@dataclass(frozen=True)
class FunnelDay:
    day: date
    scans: int
    unique_visitors: int
    sign_ups: int
    orders: int


def placement_funnel_by_day(placement: Placement, *, days: int = 30) -> list[FunnelDay]:
    """The last `days` days that had anything, newest first (four queries)."""
    since = timezone.localdate() - timedelta(days=days - 1)
    scans = {
        row["day"]: row
        for row in Scan.objects.filter(placement=placement, day__gte=since)
        .values("day")
        .annotate(scans=Count("pk"), visitors=Count("visitor_key", distinct=True))
    }
    sign_ups = dict(
        PlacementFan.objects.filter(
            placement=placement, signed_up=True, first_scan_at__date__gte=since
        )
        .annotate(day=TruncDate("first_scan_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    orders = dict(
        placement_orders(placement)
        .filter(order__created_at__date__gte=since)
        .annotate(day=TruncDate("order__created_at"))
        .values("day")
        .annotate(n=Count("order_id", distinct=True))
        .values_list("day", "n")
    )
    days_seen = sorted(set(scans) | set(sign_ups) | set(orders), reverse=True)
    return [
        FunnelDay(
            day=day,
            scans=scans.get(day, {}).get("scans", 0),
            unique_visitors=scans.get(day, {}).get("visitors", 0),
            sign_ups=sign_ups.get(day, 0),
            orders=orders.get(day, 0),
        )
        for day in days_seen
    ]
