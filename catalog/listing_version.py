"""One version token for everything a product listing shows (cards, totals, ranking).

Every catalogue write that changes what a card or a search shows calls `listing_changed`:
product, brand and category saves, status changes, the price/stock summary when it moves,
ratings, images and their thumbnails, the search index. Pages cached by it (the product
listing and search, config.page_cache) are then read anew on the next request."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction

_KEY = "catalog:listing-version"


def listing_version() -> str:
    return cache.get_or_set(_KEY, lambda: uuid.uuid4().hex, timeout=None)


def listing_changed() -> None:
    """Retire the listings once the change commits (a rolled-back change changes nothing)."""
    transaction.on_commit(lambda: cache.delete(_KEY), robust=True)
