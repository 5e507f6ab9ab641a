"""The sense of honour: points, levels and badges. Other apps award points through
`points_award` (the pre-order and crowdfunding issues call it for a confirmed pre-order or a
successful campaign); the rules for badges live here, applied when points move."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from communities.models import (
    Community,
    CommunityKind,
    MemberBadge,
    Membership,
    MembershipStatus,
    PointsEntry,
)
from notifications.models import NotificationKind
from notifications.services import notification_send

# Points a member needs for each level: Lv1 from 0, Lv2 from 10, ...
LEVEL_THRESHOLDS = [0, 10, 50, 150, 400, 1000, 2500]
POINTS_FOR_POST = 5
POINTS_FOR_LIKE_RECEIVED = 1
FOUNDING_MEMBERS = 100


@dataclass(frozen=True)
class Badge:
    code: str
    name: str
    description: str


BADGES = {
    badge.code: badge
    for badge in [
        Badge("founding_member", "Founding member", "One of the first 100 members."),
        Badge("first_post", "First post", "Started a conversation."),
        Badge("liked_10", "10 likes", "Received 10 likes."),
        Badge("liked_50", "50 likes", "Received 50 likes."),
        Badge("early_bird", "Early bird", "Reserved in the first hour of a pre-order batch."),
        Badge("backer", "Backer", "Backed a successful campaign."),
        Badge("customer", "Customer", "Bought from the brand."),
    ]
}


def level_for(points: int) -> int:
    return sum(1 for threshold in LEVEL_THRESHOLDS if points >= threshold)


def badge_grant(*, community: Community, user_id: int, code: str) -> bool:
    """Grant once; returns True when newly granted (and tells the member)."""
    try:
        with transaction.atomic():
            MemberBadge.objects.create(community=community, user_id=user_id, code=code)
    except IntegrityError:
        return False
    notification_send(
        recipient_id=user_id,
        kind=NotificationKind.BADGE,
        title=f"You earned the “{BADGES[code].name}” badge in {community.name}",
        url=community.get_absolute_url(),
    )
    return True


@transaction.atomic
def points_award(
    *, community: Community, user_id: int, points: int, reason: str, source: str
) -> bool:
    """Append to the ledger once per `source`; returns False when it was already paid."""
    try:
        with transaction.atomic():
            PointsEntry.objects.create(
                community=community,
                user_id=user_id,
                points=points,
                reason=reason[:120],
                source=source[:120],
            )
    except IntegrityError:
        return False
    Membership.objects.filter(community=community, user_id=user_id).update(
        points=F("points") + points
    )
    cache.delete(leaderboard_cache_key(community.pk))
    return True


def level_progress(points: int) -> dict:
    """Where `points` stand between this level and the next, for a progress bar."""
    level = level_for(points)
    if level >= len(LEVEL_THRESHOLDS):
        return {"level": level, "next_level": None, "to_next": 0, "percent": 100}
    low, high = LEVEL_THRESHOLDS[level - 1], LEVEL_THRESHOLDS[level]
    return {
        "level": level,
        "next_level": level + 1,
        "to_next": high - points,
        "percent": int(100 * (max(points, low) - low) / (high - low)),
    }


# --- points for buying -------------------------------------------------------------------
# Paid orders, confirmed pre-orders and pledges earn points in the brand's fan club:
# settings.HONOUR_SPEND_PER_POINT of money (store currency) per point, whole points only.
# Only members earn (buying does not join anyone to a community). A refund takes back its
# share through the same ledger, once per refund.


def brand_community(*, brand_id: int) -> Community | None:
    """The brand's own fan club (its biggest, if it runs several)."""
    return (
        Community.objects.filter(brand_id=brand_id, kind=CommunityKind.BRAND)
        .order_by("-member_count", "pk")
        .first()
    )


def spend_points(amount: Decimal) -> int:
    per = Decimal(str(settings.HONOUR_SPEND_PER_POINT))
    return int(amount // per) if amount > 0 else 0


def purchase_points_award(
    *, brand_id: int, user_id: int, amount: Decimal, reason: str, source: str
) -> int:
    """Points for `amount` spent with the brand, once per `source`; returns the points
    awarded (0 when not a member, too little, or already paid)."""
    community = brand_community(brand_id=brand_id)
    points = spend_points(amount)
    if community is None or points <= 0:
        return 0
    member = Membership.objects.filter(
        community=community, user_id=user_id, status=MembershipStatus.ACTIVE
    ).exists()
    if not member:
        return 0
    if not points_award(
        community=community, user_id=user_id, points=points, reason=reason, source=source
    ):
        return 0
    badge_grant(community=community, user_id=user_id, code="customer")
    return points


@transaction.atomic
def purchase_points_take_back(
    *,
    award_source: str,
    refund_key: str,
    refunded: Decimal,
    paid: Decimal,
    reason: str,
) -> int:
    """Take back the share of the points `award_source` paid that `refunded` (all refunds so
    far) is of `paid`, less what earlier refunds took back: a full refund takes them all, a
    partial one its proportion, once per `refund_key`. Returns the points taken."""
    award = PointsEntry.objects.filter(source=award_source).first()
    if award is None or award.points <= 0 or paid <= 0:
        return 0
    # Refunds of one purchase take back one at a time (the award's row lock), so their
    # shares add up to the award exactly.
    PointsEntry.objects.select_for_update().filter(pk=award.pk).first()
    share = min(Decimal(1), refunded / paid)
    due = int((award.points * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    taken = -(
        PointsEntry.objects.filter(source__startswith=f"{award_source}:refund:").aggregate(
            total=Sum("points")
        )["total"]
        or 0
    )
    points = due - taken
    if points <= 0:
        return 0
    ok = points_award(
        community=award.community,
        user_id=award.user_id,
        points=-points,
        reason=reason,
        source=f"{award_source}:refund:{refund_key}",
    )
    return points if ok else 0


def on_member_joined(*, membership: Membership) -> None:
    earlier = Membership.objects.filter(
        community=membership.community,
        status=MembershipStatus.ACTIVE,
        joined_at__lte=membership.joined_at,
    ).count()
    if earlier <= FOUNDING_MEMBERS:
        badge_grant(
            community=membership.community, user_id=membership.user_id, code="founding_member"
        )


def on_post_created(*, post) -> None:
    points_award(
        community=post.community,
        user_id=post.author_id,
        points=POINTS_FOR_POST,
        reason="Posted",
        source=f"post:{post.pk}",
    )
    badge_grant(community=post.community, user_id=post.author_id, code="first_post")


def on_like_received(*, post, liker_id: int, total_likes_received: int) -> None:
    points_award(
        community=post.community,
        user_id=post.author_id,
        points=POINTS_FOR_LIKE_RECEIVED,
        reason="Received a like",
        source=f"like:{post.pk}:{liker_id}",
    )
    for threshold, code in ((10, "liked_10"), (50, "liked_50")):
        if total_likes_received >= threshold:
            badge_grant(community=post.community, user_id=post.author_id, code=code)


def leaderboard_cache_key(community_id: int) -> str:
    return f"communities:leaderboard:{community_id}"


def leaderboard(*, community: Community, limit: int = 20) -> dict[str, list[dict]]:
    """All time (from the members' totals) and this month (from the ledger), cached until
    points move."""
    key = leaderboard_cache_key(community.pk)
    cached = cache.get(key)
    if cached is not None:
        return cached
    all_time = [
        {"name": m.user.public_name, "points": m.points, "level": level_for(m.points)}
        for m in Membership.objects.filter(
            community=community, status=MembershipStatus.ACTIVE, points__gt=0
        )
        .select_related("user")
        .order_by("-points", "joined_at")[:limit]
    ]
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    monthly = (
        PointsEntry.objects.filter(
            community=community,
            created_at__gte=month_start,
            # Members in good standing only, like the all-time board: a ban takes them off.
            user__memberships__community=community,
            user__memberships__status=MembershipStatus.ACTIVE,
        )
        .values("user_id", "user__display_name")
        .annotate(total=Sum("points"))
        .order_by("-total")[:limit]
    )
    this_month = [
        {
            # As User.public_name: never a part of the email address, which is private.
            "name": row["user__display_name"] or f"Member #{row['user_id']}",
            "points": row["total"],
        }
        for row in monthly
    ]
    board = {"all_time": all_time, "this_month": this_month}
    cache.set(key, board, timeout=600)
    return board
