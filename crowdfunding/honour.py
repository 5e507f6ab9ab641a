"""Honour for backers who made a campaign happen: points and the backer badge in the
campaign's community, through communities.honour, once per pledge (the ledger's source is
unique, a badge is granted once). Only members earn: backing joins nobody to a community."""

from __future__ import annotations

from communities.honour import badge_grant, points_award
from communities.models import Membership, MembershipStatus
from crowdfunding.models import Pledge

POINTS_FOR_PLEDGE = 20


def pledges_honour_award(*, pledges: list[Pledge]) -> int:
    """Pledges come with their campaign; those of one chunk share it."""
    awarded = 0
    by_community: dict[int, list[Pledge]] = {}
    for pledge in pledges:
        by_community.setdefault(pledge.campaign.community_id, []).append(pledge)
    for community_id, group in by_community.items():
        community = group[0].campaign.community
        members = set(
            Membership.objects.filter(
                community_id=community_id,
                status=MembershipStatus.ACTIVE,
                user_id__in={p.user_id for p in group},
            ).values_list("user_id", flat=True)
        )
        for pledge in group:
            if pledge.user_id not in members:
                continue
            awarded += points_award(
                community=community,
                user_id=pledge.user_id,
                points=POINTS_FOR_PLEDGE,
                reason=f"Backed {pledge.campaign.title}",
                source=f"pledge:{pledge.pk}",
            )
            badge_grant(community=community, user_id=pledge.user_id, code="backer")
    return awarded
