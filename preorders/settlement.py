"""The pre-order batch's charging for the shared settlement engine (payments.settlement): how
a chunk of reservations starts charging and how its outcomes move them, set-based: a few
statements for a chunk of thousands, whatever its size. The book's decisions and words are
preorders.book; the lifecycle is payments.commitments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from formatting.formats import money
from notifications.services import after_commit_robust
from payments.providers.base import ChargeOutcome
from payments.settlement import ChargeRecord, Commitment
from preorders.book import PreorderBook
from preorders.models import PreorderBatch, Reservation, ReservationStatus
from preorders.services import payment_failed_email, reservations_orders_create
from preorders.tasks import reservation_receipts_send

# Held -> charging at the ladder price (what is owed: every unit, less the deposit kept);
# with those a dead worker left charging (`resumed`), read in the same statement (its
# snapshot does not see the rows it moves).
_BEGIN_SQL = """
WITH moved AS (
  UPDATE preorders_reservation SET status = %(charging)s, charging_at = %(now)s,
    unit_price = %(price)s,
    amount_charged = quantity * %(price)s - (deposit_paid - deposit_refunded),
    updated_at = %(now)s
  WHERE id = ANY(%(ids)s::bigint[]) AND status = %(held)s
  RETURNING id, user_id, saved_card_id, amount_charged
)
SELECT id, user_id, saved_card_id, amount_charged, false FROM moved
UNION ALL
SELECT id, user_id, saved_card_id, amount_charged, true FROM preorders_reservation
WHERE id = ANY(%(ids)s::bigint[]) AND status = %(charging)s
ORDER BY 1
"""

# Each charging reservation by its outcome (charged, with its order; payment failed, with
# the fix-payment window; back to held after a provider error), and the event of each move
# out of held (`charging` is the engine's step, not shown: the event reads held -> outcome).
# Rows that are no longer charging (a twin chunk recorded them) are left as they are. One
# UPDATE per row: every column of a reservation is indexed by one index or another, so each
# UPDATE writes a new entry in all of them.
_RECORD_SQL = """
WITH v AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::varchar[], %(messages)s::varchar[],
    %(notes)s::varchar[], %(orders)s::bigint[]) AS v(id, status, failure_message, note, order_id)
), moved AS (
  UPDATE preorders_reservation AS r SET status = v.status,
    order_id = coalesce(v.order_id, r.order_id),
    failure_message = CASE WHEN v.status = %(failed)s THEN v.failure_message
      ELSE r.failure_message END,
    grace_until = CASE WHEN v.status = %(failed)s THEN %(grace)s ELSE r.grace_until END,
    reminded_at = CASE WHEN v.status = %(failed)s THEN %(now)s ELSE r.reminded_at END,
    receipt_due = (v.status = %(charged)s),
    updated_at = %(now)s
  FROM v WHERE r.id = v.id AND r.status = %(charging)s
  RETURNING r.id, r.status, v.note
), events AS (
  INSERT INTO preorders_preorderevent (batch_id, reservation_id, from_status, to_status, note,
    created_at)
  SELECT %(batch)s, id, %(held)s, status, note, %(now)s FROM moved WHERE status <> %(held)s
)
SELECT id, status FROM moved
"""


class ReservationBook(PreorderBook):
    """The book's set-based charging; the rest of the book is preorders.book."""

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        batch = PreorderBatch.objects.get(pk=parent_id)
        with connection.cursor() as cursor:
            cursor.execute(
                _BEGIN_SQL,
                {
                    "ids": list(ids),
                    "price": batch.final_unit_price,
                    "now": timezone.now(),
                    "held": ReservationStatus.HELD.value,
                    "charging": ReservationStatus.CHARGING.value,
                },
            )
            rows = cursor.fetchall()
        return [
            Commitment(
                id=pk,
                user_id=user_id,
                saved_card_id=card_id,
                amount=amount,
                currency=batch.currency,
                reference=self.reference(pk),
                idempotency_key=self.charge_key(pk),
                resumed=resumed,
            )
            for pk, user_id, card_id, amount, resumed in rows
        ]

    def charging_record(self, *, parent_id: int, records: Sequence[ChargeRecord]) -> None:
        batch = PreorderBatch.objects.get(pk=parent_id)
        # The orders first (their reservations locked, still charging), so that each row is
        # written once: its outcome and its order together.
        orders = reservations_orders_create(
            batch=batch,
            reservation_ids=[
                r.commitment.id for r in records if r.outcome == ChargeOutcome.SUCCEEDED
            ],
            status=ReservationStatus.CHARGING,
        )
        columns: tuple[list, list, list, list, list] = ([], [], [], [], [])
        notes: dict[tuple, str] = {}  # a chunk's amounts repeat: each formatted once
        for record in records:
            payment = record.payment
            if record.outcome == ChargeOutcome.SUCCEEDED:
                status, message = ReservationStatus.CHARGED, ""
                amount = (payment.amount, payment.currency)
                if amount not in notes:
                    notes[amount] = f"Charged {money(*amount)}"
                note = notes[amount]
            elif record.outcome == ChargeOutcome.ERROR:
                status, message, note = ReservationStatus.HELD, "", ""
            else:
                status = ReservationStatus.PAYMENT_FAILED
                message = (
                    payment.failure_message or "Your bank asks you to confirm this payment."
                )[:300]
                note = f"Charge failed: {message}"
            pk = record.commitment.id
            row = (pk, status.value, message, note[:300], orders.get(pk))
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                _RECORD_SQL,
                {
                    "ids": columns[0],
                    "statuses": columns[1],
                    "messages": columns[2],
                    "notes": columns[3],
                    "orders": columns[4],
                    "batch": parent_id,
                    "now": now,
                    "grace": now + timedelta(days=settings.PREORDER_GRACE_DAYS),
                    "held": ReservationStatus.HELD.value,
                    "charging": ReservationStatus.CHARGING.value,
                    "charged": ReservationStatus.CHARGED.value,
                    "failed": ReservationStatus.PAYMENT_FAILED.value,
                },
            )
            moved = cursor.fetchall()
        paid = sorted(pk for pk, status in moved if status == ReservationStatus.CHARGED)
        failed = sorted(pk for pk, status in moved if status == ReservationStatus.PAYMENT_FAILED)
        if paid:  # rendered by a worker after the commit (swept if the task is lost)
            after_commit_robust(lambda: reservation_receipts_send.delay(paid))
        if failed:  # each with the link to pay again
            batch = PreorderBatch.objects.select_related("product").get(pk=parent_id)
            reservations = Reservation.objects.filter(pk__in=failed)
            for reservation in reservations.select_related("user", "variant__product").order_by(
                "pk"
            ):
                reservation.batch = batch
                payment_failed_email(reservation=reservation)
