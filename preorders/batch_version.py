"""The version tokens of what the batch pages and the reserve POST keep of a batch.

- BATCH_VERSION, per batch: everything its page shows of its own rows (its columns, the live
  counters among them, its tiers and option caps). Retired once committed by every save or
  delete of a batch, a tier or a cap (the models' `save`/`delete`) and by every counter
  UPDATE that skips `save()`, which calls `batch_changed` (the services, the book, and the
  intake once per block: one Redis op).
- BATCH_STATIC, for all batches at once: their columns but the live counters, their tiers
  and caps, and so which slug names which batch. The reserve POST's per-process copies
  (preorders.batch_cache) and the pages' slug map are kept under it; a counter's move does
  not retire it, so a busy batch is found without a query. Retired by the same saves and
  deletes (not a save of the counters alone) and by the batches' bulk `update()` of any
  other column.
A page or copy named by a token is read anew on the next request after the change."""

from __future__ import annotations

from collections.abc import Iterable

from config.version_tokens import VersionToken

BATCH_VERSION = VersionToken("preorders:batch-version")
BATCH_STATIC = VersionToken("preorders:batch-static")

# The batch's counters, moved by every reservation under its row lock: read from that row.
LIVE_COUNTERS = frozenset({"reserved_units", "offered_units"})


def batches_retire_now(batch_ids: Iterable[int]) -> None:
    """One Redis op for all the batches (the intake's after-commit hook)."""
    BATCH_VERSION.retire_many(batch_ids, on_commit=False)


def batch_changed(*batch_ids: int) -> None:
    """Retire the batches' page tokens once the change is committed."""
    BATCH_VERSION.retire_many(batch_ids)


def batch_static_changed() -> None:
    """Every process reads its batches again once the change is committed (and at once: the
    writer's own transaction reads what it wrote)."""
    BATCH_STATIC.retire(now=True)


def batch_row_written(batch_id: int | None, update_fields: Iterable[str] | None = None) -> None:
    """A save or delete of a batch, or of one of its tiers or caps."""
    if batch_id is not None:
        batch_changed(batch_id)
    if update_fields is None or set(update_fields) - LIVE_COUNTERS:
        batch_static_changed()
