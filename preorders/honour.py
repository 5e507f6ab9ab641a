"""Honour for the fans who made a batch happen: points for every member whose pre-order was
paid, and the early-bird badge for those who reserved in the batch's first hour. Through
communities.honour, in the brand's fan club."""

from __future__ import annotations

from datetime import timedelta

from communities.honour import badge_grant, points_award
from communities.models import Community, CommunityKind, Membership, MembershipStatus
from preorders.models import PreorderBatch, Reservation, ReservationStatus

POINTS_FOR_PREORDER = 20
EARLY_BIRD_WINDOW = timedelta(hours=1)


def brand_community(*, brand_id: int) -> Community | None:
    return (
        Community.objects.filter(brand_id=brand_id, kind=CommunityKind.BRAND)
        .order_by("-member_count", "pk")
        .first()
    )


def batch_honour_award(*, batch_id: int) -> int:
    """Once per reservation (the ledger's source is unique), so safe to run twice."""
    batch = PreorderBatch.objects.select_related("product").get(pk=batch_id)
    community = brand_community(brand_id=batch.product.brand_id)
    if community is None:
        return 0
    members = set(
        Membership.objects.filter(community=community, status=MembershipStatus.ACTIVE).values_list(
            "user_id", flat=True
        )
    )
    awarded = 0
    paid = Reservation.objects.filter(batch=batch, status=ReservationStatus.CHARGED).values_list(
        "pk", "user_id", "created_at"
    )
    for pk, user_id, created_at in paid.iterator():
        if user_id not in members:
            continue
        awarded += points_award(
            community=community,
            user_id=user_id,
            points=POINTS_FOR_PREORDER,
            reason=f"Pre-ordered {batch.product.name}",
            source=f"preorder-res:{pk}",
        )
        if created_at < batch.opens_at + EARLY_BIRD_WINDOW:
            badge_grant(community=community, user_id=user_id, code="early_bird")
    return awarded


def reservation_honour_award(*, reservation: Reservation) -> bool:
    """The same honour for one reservation paid later, in its fix-payment window (after a
    declined charge or 3-D Secure at the close); once, by the ledger's source."""
    batch = reservation.batch
    community = brand_community(brand_id=batch.product.brand_id)
    if (
        community is None
        or not Membership.objects.filter(
            community=community, user_id=reservation.user_id, status=MembershipStatus.ACTIVE
        ).exists()
    ):
        return False
    awarded = points_award(
        community=community,
        user_id=reservation.user_id,
        points=POINTS_FOR_PREORDER,
        reason=f"Pre-ordered {batch.product.name}",
        source=f"preorder-res:{reservation.pk}",
    )
    if reservation.created_at < batch.opens_at + EARLY_BIRD_WINDOW:
        badge_grant(community=community, user_id=reservation.user_id, code="early_bird")
    return awarded
