"""One view of each fan, for a brand's team: the customers list (members of the brand's
communities, buyers, pre-orderers, backers) and a page per fan. A fixed number of queries
per page. A fan who is none of these to the operator's brands does not exist here (404), so
the pages reveal nobody else's customers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from catalog.models import Brand
from communities.honour import BADGES, level_progress
from communities.models import MemberBadge, Membership, MembershipStatus, Post, Report
from console.models import CustomerNote
from crowdfunding.models import Pledge
from orders.models import OrderPart
from preorders.models import Reservation

MONEY = DecimalField(max_digits=14, decimal_places=2)
PAGE_SIZE = 50


def _per_user(queryset: QuerySet, user_field: str, aggregate, output):
    """A correlated subquery: `aggregate` over `queryset`'s rows of the outer user."""
    rows = (
        queryset.filter(**{user_field: OuterRef("pk")})
        .order_by()
        .values(user_field)
        .annotate(value=aggregate)
        .values("value")[:1]
    )
    return Coalesce(Subquery(rows, output_field=output), Value(0, output_field=output))


def _latest(queryset: QuerySet, user_field: str, field: str):
    rows = (
        queryset.filter(**{user_field: OuterRef("pk")})
        .order_by()
        .values(user_field)
        .annotate(value=Max(field))
        .values("value")[:1]
    )
    return Subquery(rows)


def customers_of(*, brand_ids: list[int]) -> QuerySet[User]:
    """Every fan who is a member of one of the brands' communities, bought from them,
    reserved in their batches or backed their campaigns, with those figures annotated:
    `is_member`, `order_count`, `lifetime_value` (charged less refunded),
    `reservation_count`, `pledge_count`, `last_activity`."""
    parts = OrderPart.objects.filter(brand_id__in=brand_ids, order__paid_at__isnull=False)
    memberships = Membership.objects.filter(
        community__brand_id__in=brand_ids, status=MembershipStatus.ACTIVE
    )
    reservations = Reservation.objects.filter(batch__product__brand_id__in=brand_ids)
    pledges = Pledge.objects.filter(campaign__brand_id__in=brand_ids)
    posts = Post.objects.filter(community__brand_id__in=brand_ids)
    return (
        User.objects.filter(is_active=True)
        .annotate(
            is_member=Exists(memberships.filter(user=OuterRef("pk"))),
            order_count=_per_user(parts, "order__user", Count("pk"), IntegerField()),
            lifetime_value=_per_user(
                parts, "order__user", Sum(F("total") - F("amount_refunded")), MONEY
            ),
            reservation_count=_per_user(reservations, "user", Count("pk"), IntegerField()),
            pledge_count=_per_user(pledges, "user", Count("pk"), IntegerField()),
            # Postgres's GREATEST skips NULLs: the latest of whatever the fan did.
            last_activity=Greatest(
                _latest(parts, "order__user", "order__paid_at"),
                _latest(memberships, "user", "joined_at"),
                _latest(posts, "author", "created_at"),
                _latest(reservations, "user", "created_at"),
                _latest(pledges, "user", "created_at"),
            ),
        )
        .filter(
            Q(is_member=True)
            | Q(order_count__gt=0)
            | Q(reservation_count__gt=0)
            | Q(pledge_count__gt=0)
        )
    )


@dataclass(frozen=True)
class CustomerFilters:
    q: str = ""
    members: bool = False
    buyers: bool = False
    backers: bool = False
    preorders: bool = False
    min_value: Decimal | None = None
    active_days: int | None = None
    order: str = "recent"  # or "value"


def customers_list(*, brand_ids: list[int], filters: CustomerFilters) -> QuerySet[User]:
    customers = customers_of(brand_ids=brand_ids)
    if filters.q:
        customers = customers.filter(
            Q(display_name__icontains=filters.q)
            | Q(handle__icontains=filters.q.lstrip("@"))
            | Q(email__icontains=filters.q)
        )
    if filters.members:
        customers = customers.filter(is_member=True)
    if filters.buyers:
        customers = customers.filter(order_count__gt=0)
    if filters.backers:
        customers = customers.filter(pledge_count__gt=0)
    if filters.preorders:
        customers = customers.filter(reservation_count__gt=0)
    if filters.min_value is not None:
        customers = customers.filter(lifetime_value__gte=filters.min_value)
    if filters.active_days is not None:
        since = timezone.now() - timedelta(days=filters.active_days)
        customers = customers.filter(last_activity__gte=since)
    if filters.order == "value":
        return customers.order_by("-lifetime_value", "-last_activity", "pk")
    return customers.order_by(F("last_activity").desc(nulls_last=True), "pk")


@dataclass
class CustomerProfile:
    customer: User
    parts: list[OrderPart]
    reservations: list[Reservation]
    pledges: list[Pledge]
    memberships: list[Membership]
    badges: list[tuple[MemberBadge, object]]
    posts: list[Post]
    reports: list[Report]
    notes: list[CustomerNote]


def customer_profile(*, brand_ids: list[int], user_id: int) -> CustomerProfile | None:
    """Everything a fan did with the brands, in 9 queries; None if they are not a customer
    of these brands."""
    customer = customers_of(brand_ids=brand_ids).filter(pk=user_id).first()
    if customer is None:
        return None
    memberships = list(
        Membership.objects.filter(community__brand_id__in=brand_ids, user=customer)
        .select_related("community")
        .order_by("community__name")
    )
    for membership in memberships:
        membership.progress = level_progress(membership.points)
    badges = [
        (badge, BADGES.get(badge.code))
        for badge in MemberBadge.objects.filter(
            community__brand_id__in=brand_ids, user=customer
        ).select_related("community")
    ]
    return CustomerProfile(
        customer=customer,
        parts=list(
            OrderPart.objects.filter(brand_id__in=brand_ids, order__user=customer)
            .select_related("order", "brand")
            .order_by("-order__created_at")[:50]
        ),
        reservations=list(
            Reservation.objects.filter(batch__product__brand_id__in=brand_ids, user=customer)
            .select_related("batch", "variant")
            .order_by("-created_at")[:50]
        ),
        pledges=list(
            Pledge.objects.filter(campaign__brand_id__in=brand_ids, user=customer)
            .select_related("campaign", "tier")
            .order_by("-created_at")[:50]
        ),
        memberships=memberships,
        badges=badges,
        posts=list(
            Post.objects.filter(community__brand_id__in=brand_ids, author=customer)
            .select_related("community")
            .order_by("-created_at")[:20]
        ),
        reports=list(
            Report.objects.filter(community__brand_id__in=brand_ids)
            .filter(Q(reporter=customer) | Q(post__author=customer) | Q(comment__author=customer))
            .select_related("community", "reporter", "post")
            .order_by("-created_at")[:20]
        ),
        notes=list(
            CustomerNote.objects.filter(brand_id__in=brand_ids, customer=customer)
            .select_related("author", "brand")
            .order_by("-created_at")
        ),
    )


@transaction.atomic
def customer_note_add(*, brand_id: int, customer: User, author: User, body: str) -> CustomerNote:
    """A team member's note on a fan of their brand."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None or not (author.is_superuser or brand.operators.filter(pk=author.pk).exists()):
        raise PermissionDenied("Notes go on your own brand's customers.")
    if not customers_of(brand_ids=[brand.pk]).filter(pk=customer.pk).exists():
        raise PermissionDenied("Not a customer of this brand.")
    note = CustomerNote(brand=brand, customer=customer, author=author, body=body.strip())
    if not note.body:
        raise ValidationError({"body": "Write the note."})
    note.full_clean()
    note.save()
    audit_record(
        actor=author,
        action="customer.note",
        obj=note,
        brand_id=brand.pk,
        after={"customer": customer.email, "body": note.body},
    )
    return note
