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
from orders.page_versions import orders_changed
from orders.services import PAID_ORDERS_STEPS, order_numbers_draw, orders_ids_draw
from payments.providers.base import ChargeOutcome
from payments.settlement import ChargeRecord, Commitment
from preorders.book import PreorderBook
from preorders.models import PreorderBatch, Reservation, ReservationStatus
from preorders.services import (
    RESERVATION_ORDERS_SOURCE,
    payment_failed_email,
    reservation_orders_params,
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
# failed, with the fix-payment window; back to held after a provider error), the event of
# each move out of held (`charging` is the engine's step, not shown: the event reads
# held -> outcome), and the paid orders of the charged ones, made from the rows it moves
# (preorders.services.RESERVATION_ORDERS_SOURCE): one statement, nothing read back but each
# row's new status. Rows no longer charging (a twin chunk recorded them) are left as they
# are, and a charged row that had an order already keeps it. One write per row: each UPDATE
# of a reservation adds an entry to every one of its indexes. The status is compared with a
# sub-select's value, not a constant: the statistics (from the close, when every row was
# held) say no row is charging, and a planner expecting one row scans the table and joins
# it to each chunk's thousands in a nested loop; with a value it cannot look up it probes
# the primary key once per row of the chunk.
_RECORD_SQL = f"""
WITH given AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::varchar[], %(messages)s::varchar[],
    %(notes)s::varchar[], %(orders)s::bigint[], %(numbers)s::varchar[])
    AS given(id, status, failure_message, note, order_id, number)
), moved AS (
  UPDATE preorders_reservation AS r SET status = given.status,
    order_id = coalesce(r.order_id, given.order_id),
    failure_message = CASE WHEN given.status = %(failed)s THEN given.failure_message
      ELSE r.failure_message END,
    grace_until = CASE WHEN given.status = %(failed)s THEN %(grace)s ELSE r.grace_until END,
    reminded_at = CASE WHEN given.status = %(failed)s THEN %(now)s ELSE r.reminded_at END,
    receipt_due = (given.status = %(charged)s),
    updated_at = %(now)s
  FROM given WHERE r.id = given.id AND r.status = (SELECT %(charging)s::varchar)
  RETURNING r.id, r.status, r.order_id, r.order_id = given.order_id AS order_drawn,
    given.note AS event_note, given.number, r.user_id, r.variant_id, r.unit_price, r.quantity,
    r.deposit_paid, r.ship_name, r.ship_line1, r.ship_line2, r.ship_city, r.ship_postal_code,
    r.ship_country, r.ship_phone
), events AS (
  INSERT INTO preorders_preorderevent (batch_id, reservation_id, from_status, to_status, note,
    created_at)
  SELECT %(batch)s, id, %(held)s, status, event_note, %(now)s FROM moved WHERE status <> %(held)s
), charged AS (
  SELECT * FROM moved WHERE status = %(charged)s AND order_drawn
), {RESERVATION_ORDERS_SOURCE}, {PAID_ORDERS_STEPS}
SELECT id, status, user_id, order_drawn FROM moved ORDER BY id
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
        drawn = iter(zip(orders_ids_draw(succeeded), order_numbers_draw(succeeded), strict=True))
        columns: tuple[list, ...] = ([], [], [], [], [], [])
        notes: dict[tuple, str] = {}  # a chunk's amounts repeat: each formatted once
        for record in records:
            payment, order_id, number = record.payment, None, None
            if record.outcome == ChargeOutcome.SUCCEEDED:
                status, message = ReservationStatus.CHARGED, ""
                order_id, number = next(drawn)
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
            row = (record.commitment.id, status.value, message, note[:300], order_id, number)
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        now = timezone.now()
        with array_cursor() as cursor:
            cursor.execute(
                _RECORD_SQL,
                {
                    **reservation_orders_params(batch=batch),
                    "ids": columns[0],
                    "statuses": columns[1],
                    "messages": columns[2],
                    "notes": columns[3],
                    "orders": columns[4],
                    "numbers": columns[5],
                    "batch": parent_id,
                    "now": now,
                    "grace": now + timedelta(days=settings.PREORDER_GRACE_DAYS),
                    "held": ReservationStatus.HELD.value,
                    "charging": ReservationStatus.CHARGING.value,
                    "charged": ReservationStatus.CHARGED.value,
                    "failed": ReservationStatus.PAYMENT_FAILED.value,
                },
            )
            moved = cursor.fetchall()  # id, status, user id, order drawn here?
        orders_changed(  # their orders pages, once this commits
            user_ids={row[2] for row in moved if row[1] == ReservationStatus.CHARGED and row[3]}
        )
        paid = [row[0] for row in moved if row[1] == ReservationStatus.CHARGED]
        failed = [row[0] for row in moved if row[1] == ReservationStatus.PAYMENT_FAILED]
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
