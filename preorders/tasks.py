"""Pre-order tasks: take ids, call one service, safe to run twice."""

from django.db import transaction

from config.celery import house_task
from preorders.models import PreorderBatch


@house_task(acks_late=True)
def batches_close_due_task() -> None:
    """Beat, every minute: open and close due batches, and give back units whose deposit
    was not paid in time (before the close, so they count for nobody)."""
    from preorders.services import (
        batches_close_due,
        batches_open_due,
        reservations_deposit_expire,
    )

    batches_open_due()
    reservations_deposit_expire()
    batches_close_due()


@house_task(acks_late=True)
def batch_close_if_due(batch_id: int) -> None:
    from preorders.services import batch_close

    batch = PreorderBatch.objects.filter(pk=batch_id).first()
    if batch is not None:
        batch_close(batch=batch)


@house_task(acks_late=True)
def preorder_sweeps() -> None:
    from preorders.intake import reservations_receipts_sweep
    from preorders.services import reservations_grace_sweep, waitlist_offers_expire

    reservations_grace_sweep()
    waitlist_offers_expire()
    reservations_receipts_sweep()


@house_task(acks_late=True)
def reservation_receipts_send(reservation_ids: list[int]) -> None:
    """After an intake block's commit: its reservations' receipts (each sent once)."""
    from preorders.receipts import reservation_receipts_send as send

    send(reservation_ids=reservation_ids)


@house_task(acks_late=True)
def batch_honour_award(batch_id: int) -> None:
    from preorders.honour import batch_honour_award as award

    with transaction.atomic():
        award(batch_id=batch_id)
