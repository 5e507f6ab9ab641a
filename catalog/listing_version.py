"""Version tokens for the catalogue's cached pages (config.page_cache).

One token for everything a product listing shows (cards, totals, ranking): every catalogue
write that changes what a card or a search shows calls `listing_changed`: product, brand and
category saves, status changes, the price/stock summary when it moves, ratings, images and
their thumbnails, the search index.

One token per product for what its own page shows besides its reviews (which have theirs,
reviews.review_cache): `product_changed` on every variant, stock, price, image, rating or
product save; each goes through `catalog.services.product_refresh_summary` or calls it
itself. Pages keyed by them are read anew on the next request."""

from __future__ import annotations

from config.version_tokens import VersionToken

LISTING_VERSION = VersionToken("catalog:listing-version")
PRODUCT_VERSION = VersionToken("catalog:product-version")


def listing_version() -> str:
    return LISTING_VERSION.current()


def listing_changed() -> None:
    LISTING_VERSION.retire()


def product_version(*, product_id: int) -> str:
    return PRODUCT_VERSION.current(product_id)


def product_changed(*, product_id: int) -> None:
    PRODUCT_VERSION.retire(product_id)
