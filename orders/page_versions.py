"""Version tokens for a fan's private pages (config.page_cache): their cart and their orders.

One token per fan for what `/cart/` shows of their own cart (its lines, quantities, code):
every cart write goes through `orders.services._cart_changed`, which retires it on commit
with the header's count. What the lines show of the catalogue (prices, stock, names,
images) is named by the products' own tokens (catalog.listing_version).

One token per fan for what `/orders/` shows: `Order.save()` and `delete()` retire it (a
checkout, a payment's result, shipping, a refund, a cancellation, the admin: every change
of an order row through the ORM), and the set-based writers for the orders they write in
bulk (`orders_create_paid`; a pre-order chunk's record and `reservations_make_orders`, which
write them with PAID_ORDERS_STEPS), one round trip for the whole chunk's fans.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest

from catalog.listing_version import LISTING_VERSION
from config.version_tokens import VersionToken, current_tokens_and, mirrored_key

CART_VERSION = VersionToken("orders:cart-version")
ORDERS_VERSION = VersionToken("orders:orders-version")


def cart_count_key(user_id: int) -> str:
    """The header's count of the fan's cart items (orders.context_processors), kept by each
    process until it changes: a signed-in page reads it with no round trip."""
    return mirrored_key(f"orders:cart-count:{user_id}")


def tokens_and_cart_count(request: HttpRequest, *tokens: tuple[VersionToken, object]) -> list[str]:
    """The tokens' values, and the header's count of the signed-in fan's cart in the same
    round trip (kept on the request for orders.context_processors: no round trip more)."""
    key = cart_count_key(request.user.pk)
    values, found = current_tokens_and(tokens, also=[key])
    if key in found:
        request.cart_count_read = found[key]
    return values


def cart_page_versions(request: HttpRequest) -> tuple[str, str]:
    """(the fan's cart token, the catalogue's listing version), and the header's count."""
    cart, listing = tokens_and_cart_count(
        request, (CART_VERSION, request.user.pk), (LISTING_VERSION, "")
    )
    return cart, listing


def orders_version(request: HttpRequest) -> str:
    """The fan's orders token, and the header's count."""
    return tokens_and_cart_count(request, (ORDERS_VERSION, request.user.pk))[0]


def orders_changed(*, user_ids: Iterable[int]) -> None:
    """The fans' orders pages are read anew once this commits (one DEL for all of them)."""
    ORDERS_VERSION.retire_many(user_id for user_id in user_ids if user_id is not None)
