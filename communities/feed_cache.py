"""The community feed as visitors (signed out) see it, cached as rendered fragments.

A version token per community is part of each fragment's key. Every service that changes
what a feed card shows (posts, pins, hides, likes, comments, polls) calls `feed_changed`,
so visitors see the change on their next request; what no service here owns (an author's
display name, a level earned elsewhere) is at most `FEED_FRAGMENT_SECONDS` old.
Members are never served a cached feed: their cards carry like buttons and forms."""

import uuid

from django.core.cache import cache
from django.db import transaction

FEED_FRAGMENT_SECONDS = 60


def _version_key(community_id: int) -> str:
    return f"communities:feed-version:{community_id}"


def feed_version(*, community_id: int) -> str:
    """The token that names this community's current visitor fragments."""
    return cache.get_or_set(_version_key(community_id), lambda: uuid.uuid4().hex, timeout=None)


def feed_changed(*, community_id: int) -> None:
    """Retire the community's visitor fragments once the change is committed (a rolled-back
    change changes nothing); the next visitor's request renders and caches the feed anew."""
    transaction.on_commit(lambda: cache.delete(_version_key(community_id)))
