"""A product's reviews as the product page lists them, cached as rendered fragments under a
version token per product. Every change to a product's reviews goes through
`reviews.services.product_rating_refresh`, which retires the token on commit, so a review
written, edited, deleted, hidden or restored shows on the next request; a reviewer's
display name is at most `REVIEWS_FRAGMENT_SECONDS` old.

Signed-in people share one fragment that holds markers where it differs between them
(`reviews_overlay`): the "Your review" badge and the report form, which nobody gets for
their own review. Its forms carry the CSRF marker of config.csrf. No marker can come from
a review: titles and bodies are escaped."""

from __future__ import annotations

import re

from config.version_tokens import VersionToken

REVIEWS_FRAGMENT_SECONDS = 300
_OWN = re.compile(r"<!--fh:own:(\d+)-->")
_REPORT = re.compile(r"<!--fh:report:(\d+)-->(.*?)<!--fh:/report-->", re.DOTALL)


REVIEWS_VERSION = VersionToken("reviews:version")


def reviews_version(*, product_id: int) -> str:
    return REVIEWS_VERSION.current(product_id)


def reviews_changed(*, product_id: int) -> None:
    REVIEWS_VERSION.retire(product_id)


# One per fan for their own marks on product pages (their review, their wishlist): retired
# by their review's and their wishlist's writes, so a product page names a fan's marks
# without a query (storefront.views). Hiding a review retires the product's REVIEWS_VERSION.
FAN_MARKS = VersionToken("reviews:fan-marks")


def fan_marks_changed(*, user_id: int) -> None:
    FAN_MARKS.retire(user_id)


def reviews_overlay(html: str, *, own_review_id: int | None, badge: str) -> str:
    """The signed-in viewer's own review gets `badge` and loses its report form."""
    own = str(own_review_id) if own_review_id else None
    html = _OWN.sub(lambda m: badge if m.group(1) == own else "", html)
    return _REPORT.sub(lambda m: "" if m.group(1) == own else m.group(2), html)
