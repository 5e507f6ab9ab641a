"""Reads for the operators' dashboard (the admin index). Each figure is computed for a set
of brands from a fixed number of queries, whatever the amount of data: the sums and counts
are done by Postgres, grouped by day in the store's time zone; only the small grouped rows
are bucketed here (weeks, cohorts).

Revenue is counted when money is charged: an order part on its order's payment day (a
pre-order batch's orders are made when the batch's cards are charged), except a pre-order's
deposit, counted on the day the deposit was charged (its order counts only what the deposit
did not cover); net of refunds on the day each refund was made, a deposit's refunds too.
The shares (community members, first-time buyers) are of the money charged in the window,
before refunds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import CharField, Count, F, Min, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate
from django.utils import timezone

from catalog.models import Brand, ProductViewDay, Variant
from communities.models import Membership, MembershipStatus, Post, Reaction, Report
from crowdfunding.models import Campaign, CampaignStatus
from orders.fulfilment import REFUND_KEY_PREFIX
from orders.models import CartLine, Order, OrderPart, OrderRefund, OrderStatus, RefundState
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from preorders.book import PreorderBook
from preorders.models import BatchStatus, PreorderBatch, Reservation
from reviews.models import ReviewReport

ZERO = Decimal("0.00")
LOW_STOCK = 5
DAYS = 14
WEEKS = 8
FUNNEL_DAYS = 30
DASHBOARD_QUERIES = 21
# Payments that took money (a refund since does not undo the charge: it counts on its day).
CHARGED = [PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED]


def store_zone() -> ZoneInfo:
    return ZoneInfo(settings.STORE_TIME_ZONE)


def store_today() -> date:
    return timezone.now().astimezone(store_zone()).date()


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # Monday


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=store_zone())


@dataclass
class Bar:
    """One bar of a chart drawn as inline SVG (no script, nothing from a CDN): `height` is
    0..100 of the largest bar; `x`, `y` place it in a viewBox of 100 units per bar."""

    label: str
    value: Decimal | int
    height: float = 0.0
    x: int = 0
    y: float = 0.0

    @property
    def negative(self) -> bool:
        return self.value < 0


def _bars(pairs: list[tuple[str, Decimal | int]]) -> list[Bar]:
    top = max((max(value, 0) for _, value in pairs), default=0) or 1
    bars = []
    for index, (label, value) in enumerate(pairs):
        height = round(float(max(value, 0)) * 100 / float(top), 1)
        bars.append(Bar(label, value, height, x=index * 100 + 10, y=round(102 - height, 1)))
    return bars


@dataclass
class Dashboard:
    today: date
    revenue_by_day: list[Bar]
    revenue_by_week: list[Bar]
    revenue_total: Decimal
    refunds_total: Decimal
    open_batches: list[PreorderBatch]
    live_campaigns: list[Campaign]
    to_ship: int
    oldest_to_ship: datetime | None
    reports_waiting: int
    low_stock: list[Variant]
    funnel: list[Bar]
    growth: list[Bar]
    cohorts: list[dict]
    member_share: float | None
    first_time_share: float | None
    zone: str = "UTC"


def dashboard_for(*, brand_ids: list[int], today: date | None = None) -> Dashboard:
    """The dashboard of `brand_ids`, as of `today` (the store's today by default): at most
    DASHBOARD_QUERIES queries, whatever the data (fewer when a list to look up is empty)."""
    zone = store_zone()
    today = today or store_today()
    first_week = _week_start(today) - timedelta(weeks=WEEKS - 1)
    since = _start_of(first_week)
    until = _start_of(today + timedelta(days=1))
    parts = OrderPart.objects.filter(brand_id__in=brand_ids)

    # 1-4. Money charged per day, refunds per day (store time zone), over the weeks shown.
    # A pre-order's order holds its deposit, charged earlier: the order's day counts the
    # rest (one order per reservation, so the join does not repeat parts).
    kept_deposit = F("order__reservation__deposit_paid") - F("order__reservation__deposit_refunded")
    charged = dict(
        parts.filter(order__paid_at__gte=since, order__paid_at__lt=until)
        .annotate(day=TruncDate("order__paid_at", tzinfo=zone))
        .values_list("day")
        .annotate(total=Sum("total") - Coalesce(Sum(kept_deposit), ZERO))
        .values_list("day", "total")
    )
    deposit_references = (
        Reservation.objects.filter(batch__product__brand_id__in=brand_ids)
        .annotate(
            reference=Concat(Value(f"{PreorderBook.deposit_prefix}:"), Cast("pk", CharField()))
        )
        .values("reference")
    )
    deposits = dict(
        Payment.objects.filter(
            reference__in=deposit_references,
            status__in=CHARGED,
            created_at__gte=since,
            created_at__lt=until,
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    # Deposit refunds made by an order's refund are that refund's (counted below, once).
    deposit_refunds = dict(
        Refund.objects.filter(
            payment__reference__in=deposit_references, created_at__gte=since, created_at__lt=until
        )
        .exclude(status=RefundStatus.ABANDONED)
        .exclude(idempotency_key__startswith=REFUND_KEY_PREFIX)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    refunded = dict(
        OrderRefund.objects.filter(
            part__brand_id__in=brand_ids, created_at__gte=since, created_at__lt=until
        )
        .exclude(status=RefundState.ABANDONED)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    for day, total in deposit_refunds.items():
        refunded[day] = refunded.get(day, ZERO) + total
    net = defaultdict(lambda: ZERO)
    for day, total in [*charged.items(), *deposits.items()]:
        net[day] += total
    for day, total in refunded.items():
        net[day] -= total
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    by_day = _bars([(day.strftime("%d %b"), net[day]) for day in days])
    weeks = [first_week + timedelta(weeks=n) for n in range(WEEKS)]
    week_net = defaultdict(lambda: ZERO)
    for day, total in net.items():
        week_net[_week_start(day)] += total
    by_week = _bars([(week.strftime("%d %b"), week_net[week]) for week in weeks])

    # 5. Open batches, with progress and time left.
    batches = list(
        PreorderBatch.objects.filter(product__brand_id__in=brand_ids, status=BatchStatus.OPEN)
        .select_related("product")
        .order_by("closes_at")[:10]
    )
    now = timezone.now()
    for batch in batches:
        batch.progress = min(100, round(batch.reserved_units * 100 / max(batch.min_quantity, 1)))
        batch.time_left = max(batch.closes_at - now, timedelta(0))

    # 5b. Live campaigns, with progress toward the goal and time left.
    campaigns = list(
        Campaign.objects.filter(brand_id__in=brand_ids, status=CampaignStatus.LIVE).order_by(
            "deadline"
        )[:10]
    )
    for campaign in campaigns:
        campaign.time_left = max(campaign.deadline - now, timedelta(0))

    # 6. Parts paid and waiting to ship.
    waiting = parts.filter(status=OrderStatus.PAID).aggregate(
        count=Count("id"), oldest=Min("order__paid_at")
    )
    # 7-8. Reports waiting for moderation (posts and comments, reviews).
    reports = (
        Report.objects.filter(community__brand_id__in=brand_ids, resolved_at__isnull=True).count()
        + ReviewReport.objects.filter(
            review__product__brand_id__in=brand_ids, resolved_at__isnull=True
        ).count()
    )
    # 9. Low stock.
    low = list(
        Variant.objects.filter(
            product__brand_id__in=brand_ids,
            track_inventory=True,
            is_active=True,
            stock__lte=LOW_STOCK,
        )
        .select_related("product")
        .order_by("stock", "sku")[:10]
    )

    # 10-13. The funnel over the last FUNNEL_DAYS days: product page views (counted in Redis,
    # folded in by catalog.product_views), carts, checkouts (orders placed), paid orders.
    funnel_since = _start_of(today - timedelta(days=FUNNEL_DAYS - 1))
    carts = (
        CartLine.objects.filter(
            variant__product__brand_id__in=brand_ids,
            added_at__gte=funnel_since,
            added_at__lt=until,
        )
        .values("cart_id")
        .distinct()
        .count()
    )
    brand_orders = Order.objects.filter(parts__brand_id__in=brand_ids)
    checkouts = (
        brand_orders.filter(created_at__gte=funnel_since, created_at__lt=until)
        .values("pk")
        .distinct()
        .count()
    )
    paid = (
        brand_orders.filter(paid_at__gte=funnel_since, paid_at__lt=until)
        .values("pk")
        .distinct()
        .count()
    )
    # A paid order's lines leave the cart: carts started = carts still holding the brand's
    # goods added in the window + orders paid in the window (each came from a cart).
    views = (
        ProductViewDay.objects.filter(
            product__brand_id__in=brand_ids,
            day__gte=today - timedelta(days=FUNNEL_DAYS - 1),
            day__lte=today,
        ).aggregate(total=Sum("views"))["total"]
        or 0
    )
    funnel = _bars(
        [
            ("product views", views),
            ("carts", carts + paid),
            ("checkouts", checkouts),
            ("paid orders", paid),
        ]
    )

    # 14. Members who joined the brand's communities in the weeks shown (growth, cohorts).
    joins = list(
        Membership.objects.filter(
            community__brand_id__in=brand_ids,
            joined_at__gte=since,
            joined_at__lt=until,
        )
        .annotate(day=TruncDate("joined_at", tzinfo=zone))
        .values_list("user_id", "day")
    )
    joined_week: dict[int, date] = {}
    for user_id, day in joins:  # a fan in two of the brand's communities: the first join
        week = _week_start(day)
        joined_week[user_id] = min(week, joined_week.get(user_id, week))
    growth = _bars(
        [
            (week.strftime("%d %b"), sum(1 for w in joined_week.values() if w == week))
            for week in weeks
        ]
    )

    # 15-17. What each joiner did, by week: posted, liked, bought from the brand.
    joiners = list(joined_week)
    active: dict[int, set[date]] = defaultdict(set)
    activity = [
        Post.objects.filter(
            community__brand_id__in=brand_ids, author_id__in=joiners, created_at__gte=since
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("author_id", "day")
        .distinct(),
        Reaction.objects.filter(
            post__community__brand_id__in=brand_ids, user_id__in=joiners, created_at__gte=since
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values_list("user_id", "day")
        .distinct(),
        parts.filter(order__user_id__in=joiners, order__paid_at__gte=since)
        .annotate(day=TruncDate("order__paid_at", tzinfo=zone))
        .values_list("order__user_id", "day")
        .distinct(),
    ]
    for rows in activity:
        for user_id, day in rows:
            active[user_id].add(_week_start(day))
    cohorts = []
    for index, week in enumerate(weeks):
        cohort = [user for user, joined in joined_week.items() if joined == week]
        cells = []
        for offset in range(WEEKS - index):
            target = week + timedelta(weeks=offset)
            count = sum(1 for user in cohort if target in active[user])
            share = round(count * 100 / len(cohort)) if cohort else None
            cells.append({"count": count, "share": share})
        cohorts.append({"week": week, "size": len(cohort), "cells": cells})

    # 18-20. Shares of the money charged in the weeks shown: from members of the brand's
    # communities, and from first-time buyers of the brand (their first paid order).
    sales = list(
        parts.filter(order__paid_at__gte=since, order__paid_at__lt=until).values_list(
            "order__user_id", "order__paid_at", "total"
        )
    )
    buyers = {user for user, _, _ in sales}
    members = set(
        Membership.objects.filter(
            community__brand_id__in=brand_ids,
            user_id__in=buyers,
            status=MembershipStatus.ACTIVE,
        )
        .values_list("user_id", flat=True)
        .distinct()
    )
    firsts = dict(
        parts.filter(order__user_id__in=buyers, order__paid_at__isnull=False)
        .values_list("order__user_id")
        .annotate(first=Min("order__paid_at"))
        .values_list("order__user_id", "first")
    )
    gross = sum((total for *_, total in sales), ZERO)
    from_members = sum((total for user, _, total in sales if user in members), ZERO)
    from_firsts = sum(
        (total for user, paid_at, total in sales if firsts.get(user) == paid_at), ZERO
    )

    return Dashboard(
        today=today,
        revenue_by_day=by_day,
        revenue_by_week=by_week,
        revenue_total=sum(week_net.values(), ZERO),
        refunds_total=sum(refunded.values(), ZERO),
        open_batches=batches,
        live_campaigns=campaigns,
        to_ship=waiting["count"],
        oldest_to_ship=waiting["oldest"],
        reports_waiting=reports,
        low_stock=low,
        funnel=funnel,
        growth=growth,
        cohorts=cohorts,
        member_share=round(float(from_members * 100 / gross), 1) if gross else None,
        first_time_share=round(float(from_firsts * 100 / gross), 1) if gross else None,
        zone=settings.STORE_TIME_ZONE,
    )


def dashboard_brand_ids(*, user) -> list[int]:
    """The brands whose figures the user sees: their own; every brand for a superuser."""
    brands = Brand.objects.all() if user.is_superuser else Brand.objects.filter(operators=user)
    return list(brands.order_by("pk").values_list("pk", flat=True))
