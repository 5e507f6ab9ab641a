"""Reads for communities, with the visibility rule in one place: the content of a private or
invite-only community exists only for its active members (everyone else gets a 404, guessed
post ids included)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from catalog.search_words import corrections
from communities.honour import BADGES, level_for, level_progress
from communities.models import (
    Comment,
    Community,
    CommunityKind,
    MemberBadge,
    Membership,
    MembershipStatus,
    Post,
    Reaction,
    Visibility,
)

FEED_PAGE = 20
CURSOR_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is True), a bigint


class BadCursor(ValueError):
    """A feed cursor no page of ours made (an impossible date, a tampered id)."""

    def __init__(self) -> None:
        super().__init__("This page link is damaged or out of date: start from the first page.")


def community_feed_cursor(cursor: str) -> tuple[datetime, int]:
    """`<ISO datetime>|<post id>`, as `community_feed` makes it; BadCursor otherwise."""
    when, _, last_id = cursor.partition("|")
    try:
        moment = parse_datetime(when)  # ValueError for 2026-02-30: well-formed, impossible
        if moment is None or not CURSOR_ID.fullmatch(last_id):
            raise BadCursor
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # OverflowError at the calendar's edges
    except (ValueError, OverflowError) as exc:
        raise BadCursor from exc
    return moment, int(last_id)


@dataclass
class CommunityView:
    community: Community
    membership: Membership | None

    @property
    def is_member(self) -> bool:
        return self.membership is not None and self.membership.is_active

    @property
    def can_moderate(self) -> bool:
        return self.membership is not None and self.membership.can_moderate

    @property
    def can_read(self) -> bool:
        return self.community.is_public or self.is_member


def forgiving_match(q: str, fields: list[str]) -> Q:
    """Every word of `q` in one of `fields`, each mistyped word standing for the words it
    may have meant (catalog.search_words: one typo from 5 letters, two from 9)."""
    condition = Q()
    for options in corrections(q.lower().split()[:8]):
        either = Q()
        for option in options:
            for field in fields:
                either |= Q(**{f"{field}__icontains": option})
        condition &= either
    return condition


def community_directory(*, q: str = "", kind: str = "") -> QuerySet[Community]:
    communities = Community.objects.select_related("brand")
    if q.strip():
        communities = communities.filter(forgiving_match(q, ["name", "description"]))
    if kind in CommunityKind.values:
        communities = communities.filter(kind=kind)
    return communities.order_by("-member_count", "name")


def communities_of(*, user: User) -> QuerySet[Community]:
    return Community.objects.filter(
        memberships__user=user, memberships__status=MembershipStatus.ACTIVE
    )


def community_id_for(*, slug: str) -> tuple[int, bool] | None:
    """(id, public?) of the community at `slug`: what a visitor's cached page needs."""
    row = Community.objects.filter(slug=slug).values_list("pk", "visibility").first()
    return row and (row[0], row[1] == Visibility.PUBLIC)


def community_for(*, slug: str, user: User, readable: bool = False) -> CommunityView:
    """The community and the viewer's membership. `readable=True`: a 404 unless the viewer
    may read its content (public, or an active member)."""
    membership = None
    if user.is_authenticated:  # a member's page: one query for both
        membership = (
            Membership.objects.select_related("community__brand")
            .filter(community__slug=slug, user=user)
            .first()
        )
    if membership is not None:
        community = membership.community
    else:
        community = Community.objects.select_related("brand").filter(slug=slug).first()
        if community is None:
            raise Http404("No such community")
    view = CommunityView(community, membership)
    if readable and not view.can_read:
        raise Http404("No such community")
    return view


def _visible_posts(community: Community, user: User) -> QuerySet[Post]:
    posts = Post.objects.filter(
        community=community, hidden_at__isnull=True, deleted_at__isnull=True
    ).select_related("author", "community", "poll")
    if user.is_authenticated:
        posts = posts.annotate(
            liked=Exists(Reaction.objects.filter(post=OuterRef("pk"), user=user))
        )
    return posts


@dataclass
class FeedPage:
    pinned: list[Post]
    posts: list[Post]
    next_cursor: str | None


def community_feed(*, view: CommunityView, user: User, cursor: str | None = None) -> FeedPage:
    """Pinned posts first (on the first page), then newest first, by a (created_at, id)
    cursor: pages stay stable while new posts arrive, and cost the same deep in the feed."""
    if not view.can_read:
        raise Http404("No such community")
    posts = _visible_posts(view.community, user)
    pinned = [] if cursor else list(posts.filter(is_pinned=True).order_by("-created_at"))
    rest = posts.filter(is_pinned=False).order_by("-created_at", "-id")
    if cursor:
        moment, last_id = community_feed_cursor(cursor)
        rest = rest.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=last_id))
    page = list(rest[: FEED_PAGE + 1])
    next_cursor = None
    if len(page) > FEED_PAGE:
        page = page[:FEED_PAGE]
        next_cursor = f"{page[-1].created_at.isoformat()}|{page[-1].pk}"
    with_author_levels(view.community, pinned + page)
    return FeedPage(pinned, page, next_cursor)


def with_author_levels(community: Community, items: list) -> None:
    """Set `author_level` on posts or comments: one query for all their authors."""
    levels = {
        user_id: level_for(points)
        for user_id, points in Membership.objects.filter(
            community=community, user_id__in={item.author_id for item in items}
        ).values_list("user_id", "points")
    }
    for item in items:
        item.author_level = levels.get(item.author_id, 1)


POSTS_FOUND = 30


def community_posts_search(*, view: CommunityView, q: str) -> list[Post]:
    """The newest visible posts of the community with every word of `q` in their title or
    text, typos forgiven as in the shop's search."""
    if not view.can_read:
        raise Http404("No such community")
    if not q.strip():
        return []
    posts = _visible_posts(view.community, AnonymousUser()).filter(
        forgiving_match(q, ["title", "body"])
    )
    return list(posts.order_by("-created_at", "-id")[:POSTS_FOUND])


def post_for(*, view: CommunityView, user: User, pk: int) -> Post:
    if not view.can_read:
        raise Http404("No such post")
    post = _visible_posts(view.community, user).filter(pk=pk).first()
    if post is None:
        raise Http404("No such post")
    return post


def post_comments(*, post: Post) -> list[Comment]:
    """Top-level comments with their replies (one level), in two queries, plus one for the
    authors' levels."""
    visible = Q(hidden_at__isnull=True, deleted_at__isnull=True)
    comments = list(
        Comment.objects.filter(visible, post=post, parent__isnull=True)
        .select_related("author")
        .prefetch_related(
            Prefetch(
                "replies",
                queryset=Comment.objects.filter(visible)
                .select_related("author")
                .order_by("created_at", "id"),
            )
        )
        .order_by("created_at", "id")
    )
    everyone = [post, *comments, *(reply for c in comments for reply in c.replies.all())]
    with_author_levels(post.community, everyone)
    return comments


def member_badges(*, view: CommunityView) -> list[str]:
    """The viewer's badges here, as names."""
    if not view.is_member:
        return []
    codes = MemberBadge.objects.filter(
        community=view.community, user_id=view.membership.user_id
    ).values_list("code", flat=True)
    return [BADGES[code].name for code in codes if code in BADGES]


def pending_requests(*, view: CommunityView) -> QuerySet[Membership]:
    if not view.can_moderate:
        return Membership.objects.none()
    return Membership.objects.filter(
        community=view.community, status=MembershipStatus.PENDING
    ).select_related("user")


def communities_featured(limit: int = 6) -> QuerySet[Community]:
    """For the home page: the biggest public communities."""
    return Community.objects.filter(visibility="public").order_by("-member_count", "name")[:limit]


def posts_by(*, author: User) -> QuerySet[Post]:
    """The author's own posts, newest first, with their community; those they deleted are
    left out (those a moderator hid stay, with `hidden_at`, so the author knows)."""
    return (
        Post.objects.filter(author=author, deleted_at__isnull=True)
        .select_related("community")
        .order_by("-created_at", "-id")
    )


def honour_of(*, user: User) -> list[dict]:
    """Per community: level, points and badge names, in two queries."""
    memberships = list(
        Membership.objects.filter(user=user, status=MembershipStatus.ACTIVE)
        .select_related("community")
        .order_by("-points")
    )
    badges: dict[int, list[str]] = {}
    for community_id, code in MemberBadge.objects.filter(user=user).values_list(
        "community_id", "code"
    ):
        if code in BADGES:
            badges.setdefault(community_id, []).append(BADGES[code].name)
    return [
        {
            "community": m.community,
            "points": m.points,
            "badges": badges.get(m.community_id, []),
            **level_progress(m.points),  # level, next_level, to_next, percent
        }
        for m in memberships
    ]
