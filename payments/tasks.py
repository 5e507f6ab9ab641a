"""Settlement tasks: thin, idempotent, safe to run twice (acks_late)."""

from django.db import transaction

from config.celery import house_task
from payments.services import payments_recover_in_flight, refunds_retry_due
from payments.settlement import (
    settlement_book,
    settlement_reconcile,
    settlement_run_chunk,
)


@house_task(acks_late=True)
def settlement_chunk(kind: str, parent_id: int, first_id: int, last_id: int) -> None:
    retry_later = settlement_run_chunk(
        kind=kind, parent_id=parent_id, first_id=first_id, last_id=last_id
    )
    if retry_later:  # the provider was unavailable for some: try those again in a minute
        transaction.on_commit(
            lambda: settlement_chunk.apply_async((kind, parent_id, first_id, last_id), countdown=60)
        )


@house_task(acks_late=True)
def settlement_finish(kind: str, parent_id: int) -> None:
    settlement_book(kind).finish_if_done(parent_id=parent_id)


@house_task(acks_late=True)
def settlement_reconcile_due() -> None:
    settlement_reconcile()


@house_task()
def payments_recover_due() -> None:
    """Charges whose request died after the provider call, and refunds to retry."""
    payments_recover_in_flight()
    refunds_retry_due()
