"""The community feed cached as rendered fragments, shared by visitors and members alike.

A version token per community is part of each fragment's key. Every service that changes
what a feed card shows (posts, pins, hides, likes, comments, polls) calls `feed_changed`,
so everyone sees the change on their next request; what no service here owns (an author's
display name, a level earned elsewhere) is at most `FEED_FRAGMENT_SECONDS` old.

There are two fragments per page of the feed: one for those who only read (visitors, and
signed-in people who have not joined), one for members, whose cards carry like buttons.
The members' fragment is the same for every member: where a card shows the member's own
state it holds a marker (`<!--fh:on:<post id>-->` and the like), which `liked_overlay`
fills in from one query for the posts on the page; its forms carry the CSRF marker that
`config.csrf.CsrfMarkers` replaces with the request's token. No marker can come from
what people write: titles are escaped and post bodies are sanitized HTML without comments."""

from __future__ import annotations

import hashlib
import re

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext

from communities.standing import MEMBER_STANDING, liked_among
from config.version_tokens import VersionToken

FEED_FRAGMENT_SECONDS = 60
# The community's own row as its page shows it (name, about, rules, cover, member count):
# retired by the member recount and the admin's save, which also retires which slug names
# which community (COMMUNITY_SLUGS), so a visitor's page needs no query (communities.views).
COMMUNITY_PAGE = VersionToken("communities:page-version")
COMMUNITY_SLUGS = VersionToken("communities:slugs")
_LIKE_MARKER = re.compile(r"<!--fh:(on|pressed|label):(\d+)-->")
_POST_MARKER = re.compile(r"<!--fh:on:(\d+)-->")


FEED_VERSION = VersionToken("communities:feed-version")


def feed_version(*, community_id: int) -> str:
    """The token that names this community's current fragments."""
    return FEED_VERSION.current(community_id)


def feed_changed(*, community_id: int) -> None:
    """Retire the community's fragments once the change is committed (a rolled-back
    change changes nothing); the next request renders and caches the feed anew."""
    FEED_VERSION.retire(community_id)


def community_changed(*, community_id: int, slug_or_visibility: bool = False) -> None:
    COMMUNITY_PAGE.retire(community_id)
    if slug_or_visibility:
        COMMUNITY_SLUGS.retire()


def feed_fragment(*, request, view, cursor: str | None) -> SafeString:
    """The rendered page of the feed this viewer sees, from the cache when it is there. The
    cursor must have been checked (`community_feed_cursor`)."""
    from communities.selectors import community_feed

    member = view.is_member
    key = ":".join(
        [
            "communities:feed",
            str(view.community.pk),
            feed_version(community_id=view.community.pk),
            "member" if member else "reader",
            get_language() or "",
            hashlib.sha256((cursor or "").encode()).hexdigest()[:16],
        ]
    )
    html = cache.get(key)
    if html is None:
        feed = community_feed(view=view, user=AnonymousUser(), cursor=cursor)
        html = get_template("communities/_feed.html").render(
            {
                "feed": feed,
                "community": view.community,
                "view": view,
                "request": request,
                "overlay": member,
            }
        )
        cache.set(key, html, FEED_FRAGMENT_SECONDS)
    if member and not getattr(request, "page_cache_render", False):  # else the page's overlay
        html = liked_overlay(html, user=request.user)
    return mark_safe(html)  # noqa: S308 - our own template's output


def liked_overlay(html: str, *, user, standing: str | None = None) -> str:
    """Fill in the member's like markers: which of the posts in `html` they like (read once
    per process and standing token, `communities.standing`)."""
    post_ids = [int(pk) for pk in _POST_MARKER.findall(html)]
    liked = liked_among(
        user=user, token=standing or MEMBER_STANDING.current(user.pk), post_ids=post_ids
    )

    # translated once a call, not once a marker (a page has three markers a post)
    parts = {
        True: {"on": " is-on", "pressed": "true", "label": gettext("Unlike")},
        False: {"on": "", "pressed": "false", "label": gettext("Like")},
    }

    def fill(match: re.Match) -> str:
        return parts[match.group(2) in liked][match.group(1)]

    return _LIKE_MARKER.sub(fill, html)
