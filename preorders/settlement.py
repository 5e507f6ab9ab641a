"""The pre-order batch's charging for the shared settlement engine (payments.settlement): how
a chunk of reservations starts charging and how its outcomes move them, set-based. The
book's decisions and words are preorders.book; the lifecycle is payments.commitments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from formatting.formats import money
from notifications.services import after_commit_robust
from payments.providers.base import ChargeOutcome
from payments.settlement import ChargeRecord, Commitment
from preorders.book import PreorderBook
from preorders.models import (
    PreorderBatch,
    PreorderEvent,
    Reservation,
    ReservationStatus,
)
from preorders.services import (
    payment_failed_email,
    reservations_make_orders,
)
from preorders.tasks import reservation_receipts_send
from rowsql.update import rows_update

RECORD_COLUMNS = (
    "id",
    "batch_id",
    "status",
    "quantity",
    "unit_price",
    "amount_charged",
    "deposit_paid",
    "failure_message",
    "grace_until",
    "reminded_at",
    "order_id",
    "updated_at",
    *(f"ship_{name}" for name in ("name", "line1", "line2", "city", "postal_code", "country")),
    "ship_phone",
    "user__email",
    "variant__sku",
    "variant__options",
    "variant__product__name",
    "variant__product__brand_id",
)


class ReservationBook(PreorderBook):
    """The book's set-based charging (a chunk of thousands in a few statements); the rest of
    the book is preorders.book."""

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        batch = PreorderBatch.objects.get(pk=parent_id)
        started = timezone.now()
        # What is owed: the ladder price for every unit, less the deposit kept.
        Reservation.objects.filter(pk__in=ids, status=ReservationStatus.HELD).update(
            status=ReservationStatus.CHARGING,
            charging_at=started,
            unit_price=batch.final_unit_price,
            amount_charged=F("quantity") * batch.final_unit_price
            - (F("deposit_paid") - F("deposit_refunded")),
            updated_at=started,
        )
        rows = Reservation.objects.filter(
            pk__in=ids, status=ReservationStatus.CHARGING
        ).values_list("pk", "user_id", "saved_card_id", "amount_charged", "charging_at")
        return [
            Commitment(
                id=pk,
                user_id=user_id,
                saved_card_id=card_id,
                amount=amount,
                currency=batch.currency,
                reference=f"preorder-res:{pk}",
                idempotency_key=f"preorder-res-{pk}",
                resumed=charging_at < started,
            )
            for pk, user_id, card_id, amount, charging_at in rows
        ]

    def charging_record(self, *, parent_id: int, records: Sequence[ChargeRecord]) -> None:
        by_id = {record.commitment.id: record for record in records}
        batch = PreorderBatch.objects.select_related("product").get(pk=parent_id)
        reservations = list(
            # Only the reservations' rows are locked, not the users or variants joined; and
            # only the columns the orders and emails need (a product's are long texts).
            Reservation.objects.select_for_update(of=("self",))
            .filter(pk__in=by_id, status=ReservationStatus.CHARGING)
            .select_related("variant__product", "user")
            .only(*RECORD_COLUMNS)
            .order_by("pk")
        )
        for reservation in reservations:
            reservation.batch = batch
        now = timezone.now()
        grace = now + timedelta(days=settings.PREORDER_GRACE_DAYS)
        paid, failed, retry, events = [], [], [], []
        for reservation in reservations:
            reservation.updated_at = now
            record = by_id[reservation.pk]
            before = ReservationStatus.HELD  # charging is the engine's, not shown as a step
            if record.outcome == ChargeOutcome.SUCCEEDED:
                reservation.status = ReservationStatus.CHARGED
                note = f"Charged {money(record.payment.amount, record.payment.currency)}"
                paid.append(reservation)
            elif record.outcome == ChargeOutcome.ERROR:
                reservation.status = ReservationStatus.HELD
                retry.append(reservation)
                continue
            else:
                reservation.status = ReservationStatus.PAYMENT_FAILED
                reservation.failure_message = record.payment.failure_message or (
                    "Your bank asks you to confirm this payment."
                )
                reservation.grace_until, reservation.reminded_at = grace, now
                note = f"Charge failed: {reservation.failure_message}"
                failed.append(reservation)
            events.append(
                PreorderEvent(
                    batch_id=parent_id,
                    reservation=reservation,
                    from_status=before,
                    to_status=reservation.status,
                    note=note[:300],
                )
            )
        rows_update(
            model=Reservation,
            fields=[
                "status",
                "failure_message",
                "grace_until",
                "reminded_at",
                "updated_at",
                "receipt_due",
            ],
            rows=[
                (
                    r.pk,
                    r.status,
                    r.failure_message,
                    r.grace_until,
                    r.reminded_at,
                    now,
                    r.status == ReservationStatus.CHARGED,
                )
                for r in reservations
            ],
        )
        PreorderEvent.objects.bulk_create(events)
        reservations_make_orders(reservations=paid)
        if paid:  # rendered by a worker after the commit (swept if the task is lost)
            paid_ids = [r.pk for r in paid]
            after_commit_robust(lambda: reservation_receipts_send.delay(paid_ids))
        for reservation in failed:
            payment_failed_email(reservation=reservation)
