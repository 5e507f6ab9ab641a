"""Version tokens for a fan's private pages (config.page_cache): their cart and their orders.

One token per fan for what `/cart/` shows of their own cart (its lines, quantities, code):
every cart write goes through `orders.services._cart_changed`, which retires it on commit
with the header's count. What the lines show of the catalogue (prices, stock, names,
images) is named by the products' own tokens (catalog.listing_version).

One token per fan for what `/orders/` shows: `Order.save()` and `delete()` retire it (a
checkout, a payment's result, shipping, a refund, a cancellation, the admin: every change
of an order row through the ORM), and `orders_create_paid` for the orders it writes in
bulk, one round trip for the whole chunk's fans.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction

from catalog.listing_version import LISTING_VERSION
from config.version_tokens import VersionToken

CART_VERSION = VersionToken("orders:cart-version")
ORDERS_VERSION = VersionToken("orders:orders-version")


def cart_version_key(user_id: int) -> str:
    return CART_VERSION._key(user_id)


def cart_count_key(user_id: int) -> str:
    """The header's count of the fan's cart items (orders.context_processors)."""
    return f"orders:cart-count:{user_id}"


def cart_page_reads(*, user_id: int) -> tuple[str, str, int | None]:
    """(the fan's cart token, the catalogue's listing version, the header's count or None
    when it is not counted yet), in one round trip when the tokens exist."""
    keys = [cart_version_key(user_id), LISTING_VERSION._key(""), cart_count_key(user_id)]
    found = cache.get_many(keys)
    cart = found.get(keys[0]) or CART_VERSION.current(user_id)
    listing = found.get(keys[1]) or LISTING_VERSION.current()
    return cart, listing, found.get(keys[2])


def orders_version(*, user_id: int) -> str:
    return ORDERS_VERSION.current(user_id)


def orders_changed(*, user_ids: Iterable[int]) -> None:
    """The fans' orders pages are read anew once this commits (one DEL for all of them)."""
    keys = [ORDERS_VERSION._key(user_id) for user_id in set(user_ids) if user_id is not None]
    if keys:
        transaction.on_commit(lambda: cache.delete_many(keys), robust=True)
