"""The version token of each batch's cached page (preorders.views.batch_detail).

Everything the batch page shows of the batch's own rows (its columns: status, counters,
window, slug; its tiers) retires the batch's token once committed: saves and deletes of a
batch or a tier through the signals below (the state machine, the admin, the services'
saves), and every counter UPDATE that skips `save()` by calling `batch_changed` (services,
the book, the intake's blocks: one Redis op per block, after its commit). A page keyed by
the token is rendered anew on the next request."""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from config.version_tokens import VersionToken

BATCH_VERSION = VersionToken("preorders:batch-version")
# Which slug names which shown batch (and its product): retired by every batch save and
# delete (a slug, a status or a product changes only there), not by the counters' UPDATEs,
# so a busy batch's visitors still find it without a query.
BATCH_SLUGS = VersionToken("preorders:batch-slugs")


def _keys(batch_ids) -> list[str]:
    return [BATCH_VERSION._key(batch_id) for batch_id in sorted(set(batch_ids))]


def batches_retire_now(batch_ids) -> None:
    """One Redis op for all the batches (the intake's after-commit hook)."""
    keys = _keys(batch_ids)
    if keys:
        cache.delete_many(keys)


def batch_changed(*batch_ids: int) -> None:
    """Retire the batches' page tokens once the change is committed."""
    keys = _keys(batch_ids)
    if keys:
        transaction.on_commit(lambda: cache.delete_many(keys), robust=True)


def _batch_saved(sender, instance, **kwargs) -> None:
    batch_changed(instance.pk)
    BATCH_SLUGS.retire()


def _tier_saved(sender, instance, **kwargs) -> None:
    batch_changed(instance.batch_id)


def signals_connect() -> None:
    from preorders.models import PreorderBatch, PriceTier

    for name, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(_batch_saved, sender=PreorderBatch, dispatch_uid=f"batch-version-{name}")
        signal.connect(_tier_saved, sender=PriceTier, dispatch_uid=f"tier-version-{name}")
