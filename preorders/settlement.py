"""The pre-order batch's charging for the shared settlement engine (payments.settlement): how
a chunk of reservations starts charging and how its outcomes move them, set-based: a few
statements for a chunk of thousands, whatever its size. The book's decisions and words are
preorders.book; the lifecycle is payments.commitments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from formatting.formats import money
from notifications.services import after_commit_robust
from orders.services import orders_create_paid, orders_ids_draw
from payments.providers.base import ChargeOutcome
from payments.settlement import ChargeRecord, Commitment
from preorders.book import PreorderBook
from preorders.models import PreorderBatch, Reservation, ReservationStatus
from preorders.services import (
    ORDER_SOURCE_COLUMNS,
    SHIPPING_METHOD,
    payment_failed_email,
    reservation_order_specs,
)
from preorders.tasks import reservation_receipts_send
from rowsql.arrays import array_cursor

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

# Each charging reservation by its outcome (charged, with the order drawn for it; payment
# failed, with the fix-payment window; back to held after a provider error), and the event
# of each move out of held (`charging` is the engine's step, not shown: the event reads
# held -> outcome). Rows no longer charging (a twin chunk recorded them) are left as they
# are. One write per row: each UPDATE of a reservation adds an entry to every one of its
# indexes. The charged ones come back with what their orders need. The status is compared
# with a sub-select's value, not a constant: the statistics (from the close, when every row
# was held) say no row is charging, and a planner expecting one row scans the table and
# joins it to each chunk's thousands in a nested loop; with a value it cannot look up it
# probes the primary key once per row of the chunk.
_RETURNED = ", ".join(f"r.{name.strip()}" for name in ORDER_SOURCE_COLUMNS.split(","))
_RECORD_SQL = f"""
WITH v AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::varchar[], %(messages)s::varchar[],
    %(notes)s::varchar[], %(orders)s::bigint[]) AS v(id, status, failure_message, note, order_id)
), moved AS (
  UPDATE preorders_reservation AS r SET status = v.status,
    order_id = coalesce(r.order_id, v.order_id),
    failure_message = CASE WHEN v.status = %(failed)s THEN v.failure_message
      ELSE r.failure_message END,
    grace_until = CASE WHEN v.status = %(failed)s THEN %(grace)s ELSE r.grace_until END,
    reminded_at = CASE WHEN v.status = %(failed)s THEN %(now)s ELSE r.reminded_at END,
    receipt_due = (v.status = %(charged)s),
    updated_at = %(now)s
  FROM v WHERE r.id = v.id AND r.status = (SELECT %(charging)s::varchar)
  RETURNING r.status, r.order_id, r.order_id = v.order_id AS order_drawn, v.note, {_RETURNED}
), events AS (
  INSERT INTO preorders_preorderevent (batch_id, reservation_id, from_status, to_status, note,
    created_at)
  SELECT %(batch)s, id, %(held)s, status, note, %(now)s FROM moved WHERE status <> %(held)s
)
SELECT status, order_id, order_drawn, {ORDER_SOURCE_COLUMNS} FROM moved ORDER BY id
"""  # noqa: S608 (names from code)


class ReservationBook(PreorderBook):
    """The book's set-based charging; the rest of the book is preorders.book."""

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        batch = PreorderBatch.objects.get(pk=parent_id)
        with array_cursor() as cursor:
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
        succeeded = sum(record.outcome == ChargeOutcome.SUCCEEDED for record in records)
        drawn = iter(orders_ids_draw(succeeded))
        columns: tuple[list, list, list, list, list] = ([], [], [], [], [])
        notes: dict[tuple, str] = {}  # a chunk's amounts repeat: each formatted once
        for record in records:
            payment, order_id = record.payment, None
            if record.outcome == ChargeOutcome.SUCCEEDED:
                status, message, order_id = ReservationStatus.CHARGED, "", next(drawn)
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
            row = (record.commitment.id, status.value, message, note[:300], order_id)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        now = timezone.now()
        with array_cursor() as cursor:
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
        # Rows: status, order id, drawn here?, then ORDER_SOURCE_COLUMNS (the id first). The
        # orders the charged rows now point at (one that had an order already keeps it).
        ordered = [row for row in moved if row[0] == ReservationStatus.CHARGED and row[2]]
        orders_create_paid(
            specs=reservation_order_specs(batch=batch, rows=[row[3:] for row in ordered]),
            shipping_method=SHIPPING_METHOD,
            ids=[row[1] for row in ordered],
        )
        paid = [row[3] for row in moved if row[0] == ReservationStatus.CHARGED]
        failed = [row[3] for row in moved if row[0] == ReservationStatus.PAYMENT_FAILED]
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
