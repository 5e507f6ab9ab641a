"""A member's public profile (/u/<handle>/) and the members a composer may @mention.

The visibility rule of communities.selectors holds here too: a private or invite-only
community, its level, badges and posts show only to viewers who are its active members.
Orders, email addresses and anything else private never appear."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import User
from communities.honour import BADGES, level_progress
from communities.models import MemberBadge, Membership, MembershipStatus, Post, Visibility
from communities.selectors import CommunityView

PROFILE_POSTS = 10
MENTION_RESULTS = 8
# Autocomplete asks on every keystroke; this is generous for typing, not for scraping.
MENTION_LOOKUPS_PER_MINUTE = 120


@dataclass
class MemberProfile:
    member: User
    communities: list[dict]
    posts: list[Post]


def _readable(viewer: User, field: str = "community") -> Q:
    """Rows of communities whose content `viewer` may read: public ones, and the viewer's."""
    readable = Q(**{f"{field}__visibility": Visibility.PUBLIC})
    if viewer.is_authenticated:
        mine = Membership.objects.filter(user=viewer, status=MembershipStatus.ACTIVE)
        readable |= Q(**{f"{field}_id__in": mine.values("community_id")})
    return readable


def member_profile(*, handle: str, viewer: User) -> MemberProfile:
    member = User.objects.filter(handle=handle.lower(), is_active=True).first()
    if member is None:
        raise Http404("No such member")
    memberships = list(
        Membership.objects.filter(_readable(viewer), user=member, status=MembershipStatus.ACTIVE)
        .select_related("community", "community__brand")
        .order_by("-points", "community__name")
    )
    badges: dict[int, list[str]] = {}
    for community_id, code in MemberBadge.objects.filter(
        user=member, community_id__in=[m.community_id for m in memberships]
    ).values_list("community_id", "code"):
        if code in BADGES:
            badges.setdefault(community_id, []).append(BADGES[code].name)
    rows = [
        {
            "community": m.community,
            "points": m.points,
            "role": m.get_role_display() if m.role != "member" else "",
            "badges": badges.get(m.community_id, []),
            **level_progress(m.points),
        }
        for m in memberships
    ]
    posts = list(
        Post.objects.filter(
            _readable(viewer),
            author=member,
            hidden_at__isnull=True,
            deleted_at__isnull=True,
            # Only where the member still belongs: a ban takes the community off the profile,
            # and its posts with it.
            community__memberships__user=member,
            community__memberships__status=MembershipStatus.ACTIVE,
        )
        .select_related("community")
        .order_by("-created_at", "-id")[:PROFILE_POSTS]
    )
    return MemberProfile(member=member, communities=rows, posts=posts)


def mention_lookup_allowed(*, user: User) -> bool:
    """A fixed one-minute window per member, counted in the cache."""
    key = f"communities:mention-lookup:{user.pk}"
    cache.add(key, 0, timeout=60)
    try:
        return cache.incr(key) <= MENTION_LOOKUPS_PER_MINUTE
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=60)
        return True


def mention_candidates(*, view: CommunityView, prefix: str) -> QuerySet[User]:
    """Active members of the community whose handle or display name starts with `prefix`:
    only for a viewer who is an active member (callers check `view.is_member`)."""
    if not view.is_member:
        raise Http404("No such community")
    prefix = prefix.strip().lstrip("@")[:30]
    members = User.objects.filter(
        is_active=True,
        memberships__community=view.community,
        memberships__status=MembershipStatus.ACTIVE,
    )
    if prefix:
        members = members.filter(
            Q(handle__startswith=prefix.lower()) | Q(display_name__istartswith=prefix)
        )
    return members.exclude(pk=view.membership.user_id).order_by("handle")[:MENTION_RESULTS]
