"""The reserve POST's copy of a batch: its row, product and active options, kept per process
under version tokens instead of read twice per reservation (a hot drop posts thousands a
second to one batch).

Only what the form needs is taken from the copy (which options exist, the limit as the
field's hint, the product's name for the answer): the intake decides every request on the
batch row it locks (status, window, limit, cap, deposit) and on the options as they are
then (`preorders.intake`), so a copy older than a change can refuse or show a stale hint,
never admit. It is not older for long: any change of a batch's own columns (its live
counters aside), of a tier or an option cap retires BATCH_STATIC once committed
(preorders.batch_version), and any change of the product or its options
retires the product's token (catalog.listing_version), so the next request reads anew."""

from __future__ import annotations

import pickle
from collections.abc import Callable

from catalog.listing_version import PRODUCT_VERSION
from config.version_tokens import current_tokens
from preorders.batch_version import BATCH_STATIC

_LOCAL_SIZE = 512
# slug -> (tokens it was read under, product id, pickled batch)
_local: dict[str, tuple[tuple[str, ...], int, bytes]] = {}
# slug -> product id, kept across retirements: the product's token is read before the row
_products: dict[str, int] = {}


def _tokens(product_id: int | None) -> tuple[str, ...]:
    if product_id is None:
        return (BATCH_STATIC.current(),)
    return tuple(current_tokens((BATCH_STATIC, ""), (PRODUCT_VERSION, product_id)))


def batch_static(*, slug: str, read: Callable[[], object | None]):
    """The batch `read` returns (None: there is none, not kept), a fresh copy each request
    (the caller may change it). The tokens are read before the row, so a copy is never
    kept under a token newer than what it shows."""
    entry = _local.get(slug)
    product_id = entry[1] if entry else _products.get(slug)
    tokens = _tokens(product_id)
    if entry is not None and entry[0] == tokens:
        return pickle.loads(entry[2])  # noqa: S301 (pickled here, below)
    batch = read()
    if batch is None:
        return None
    if len(_local) >= _LOCAL_SIZE or len(_products) >= _LOCAL_SIZE:
        _local.clear()
        _products.clear()
    _products[slug] = batch.product_id
    # Kept only when its product's token was read before it (else from the next request on).
    if batch.product_id == product_id:
        _local[slug] = (tokens, product_id, pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
    return batch
