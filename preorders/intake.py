"""The pre-order batch's intake: how a block of reservations is decided and written
(payments.commitments.intake runs the blocks: one transaction each, the shopper answered
after its commit).

Per block, under each batch's row lock (taken once, in id order): the form keys already used,
each customer's units in the batch, each capped option's units, and the waitlist offers of
the block's customers, read set-based; then each request decided in arrival order against
those numbers as they grow (the same rules and messages as `preorders.services`); then one
INSERT of the reservations, one of their events, one UPDATE of each batch's counters (its
CheckConstraint refuses anything over the cap), the offers claimed. Receipts are rendered
after the commit by a worker (`receipt_due`, swept if the broker was down), so a hot batch
does not render two templates per reservation inside the request.

A batch with a deposit is not taken here (`SLOW_PATH`): the deposit's card charge per
reservation is the slow part there, and `preorders.services` keeps its one-by-one path."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone

from accounts.models import User
from catalog.models import Variant
from payments.commitments.intake import (
    BlockWriter,
    block_start_sql,
    intake_after_commit,
    intake_execute_and_commit,
    intake_locked,
    intake_submit,
)
from payments.models import SavedCard
from preorders.models import (
    COUNTED_STATUSES,
    PreorderBatch,
    Reservation,
    ReservationStatus,
    WaitlistEntry,
    WaitlistStatus,
)

logger = logging.getLogger(__name__)

SLOW_PATH = object()  # the batch asks for a deposit: preorders.services writes it alone

# The reserve form's address keys and the reservation's columns for them.
SHIP_FIELDS = {
    "full_name": "ship_name",
    "line1": "ship_line1",
    "line2": "ship_line2",
    "city": "ship_city",
    "postal_code": "ship_postal_code",
    "country": "ship_country",
    "phone": "ship_phone",
}


@dataclass(frozen=True)
class ReservationRequest:
    batch_id: int
    user: User
    variant: Variant
    quantity: int
    saved_card: SavedCard
    address: dict[str, str]
    request_key: str


@functools.cache
def _ship_rules() -> list[tuple[str, str, bool, int]]:
    return [
        (key, name, field.blank, field.max_length)
        for key, name in SHIP_FIELDS.items()
        for field in [Reservation._meta.get_field(name)]
    ]


def _address(address: dict[str, str]) -> dict[str, str]:
    """The shipping columns, checked as full_clean would (required, lengths)."""
    values, errors = {}, {}
    for key, name, blank, max_length in _ship_rules():
        value = address.get(key) or ""
        if not isinstance(value, str):
            value = str(value)
        if not value and not blank:
            errors[name] = ["This field cannot be blank."]
        elif len(value) > max_length:
            errors[name] = [
                f"Ensure this value has at most {max_length} characters (it has {len(value)})."
            ]
        values[name] = value
    if errors:
        raise ValidationError(errors)
    return values


@dataclass(eq=False, slots=True)
class _Admission:
    """A request as the block takes it: its form key, and its row (the reservation's own
    columns and its event's note) already as JSON, made in the shopper's thread before it
    queues, so the block's leader only decides and joins them."""

    request: ReservationRequest
    key: str
    row: dict
    json: str


def reservation_intake(request: ReservationRequest) -> tuple[Reservation, bool] | object:
    """(the reservation, whether this call made it), or SLOW_PATH. Raises ReservationError
    with the shopper's message, or ValidationError for a bad address."""
    from preorders.services import ReservationError

    if request.saved_card.user_id != request.user.pk or request.saved_card.deleted_at:
        raise ReservationError("Choose one of your cards.")
    key = request.request_key[:64]
    row = {
        "batch_id": request.batch_id,
        "user_id": request.user.pk,
        "variant_id": request.variant.pk,
        "saved_card_id": request.saved_card.pk,
        "quantity": request.quantity,
        "request_key": key,
        **_address(request.address),  # before queueing: a bad form waits for nobody
        "note": f"Reserved {request.quantity} × {request.variant.option_label or 'One size'}",
    }
    outcome = intake_submit(writer=WRITER, request=_Admission(request, key, row, json.dumps(row)))
    if isinstance(outcome, _Made):
        return _built(outcome), outcome.admission.request is request
    return outcome


@dataclass(frozen=True, slots=True)
class _Made:
    """A reservation the block wrote: the admission that made it (the first of twins)."""

    admission: _Admission
    pk: int
    at: datetime


def _built(made: _Made) -> Reservation:
    """The reservation just written, as an instance (positional, as from the database), with
    the shopper, option and card it was made with: built in the shopper's thread."""
    admission = made.admission
    row = {name: admission.row[name] for name in _ROW_FIELDS}
    values = {**_constants(made.at), **row, "id": made.pk}
    reservation = Reservation.from_db("default", _ATTNAMES, [values[n] for n in _ATTNAMES])
    request = admission.request
    for name, value in (
        ("user", request.user),
        ("variant", request.variant),
        ("saved_card", request.saved_card),
    ):
        Reservation._meta.get_field(name).set_cached_value(reservation, value)
    return reservation


# The reservation's columns a request brings (in its JSON row); the others are the same for
# the whole block (`_constants`).
_ROW_FIELDS = (
    "batch_id",
    "user_id",
    "variant_id",
    "saved_card_id",
    "quantity",
    "request_key",
    *SHIP_FIELDS.values(),
)
_ATTNAMES = [f.attname for f in Reservation._meta.concrete_fields]


@functools.cache
def _fixed_defaults() -> dict:
    """The field defaults of those columns that are values (shared, so immutable ones only):
    read once, not per reservation built."""
    return {
        f.attname: f.get_default()
        for f in Reservation._meta.concrete_fields
        if not f.primary_key and f.attname not in _ROW_FIELDS and not callable(f.default)
    }


_CALLED_DEFAULTS = [
    f
    for f in Reservation._meta.concrete_fields
    if not f.primary_key and f.attname not in _ROW_FIELDS and callable(f.default)
]


def _constants(now: datetime) -> dict:
    """The columns every reservation of a block starts with: the field defaults, held, its
    receipt due, made now."""
    values = {**_fixed_defaults(), **{f.attname: f.get_default() for f in _CALLED_DEFAULTS}}
    values.update(
        status=ReservationStatus.HELD.value, receipt_due=True, created_at=now, updated_at=now
    )
    return values


@functools.cache
def _fixed_params() -> tuple[list, list]:
    """The constant columns' parameters as the database takes them, prepared once, and the
    columns prepared per block: the block's instant, and any default that is a function."""
    _, constant = _insert_sql()
    values = _constants(timezone.now())
    params = [f.get_db_prep_save(values[f.attname], connection) for f in constant]
    per_block = [
        (index, f)
        for index, f in enumerate(constant)
        if f.attname in ("created_at", "updated_at")
        or (callable(f.default) and f.default is not NOT_PROVIDED)
    ]
    return params, per_block


def _constant_params(now: datetime) -> list:
    params, per_block = _fixed_params()
    params = params[:]
    for index, field in per_block:
        value = now if field.attname in ("created_at", "updated_at") else field.get_default()
        params[index] = field.get_db_prep_save(value, connection)
    return params


# The block's reads after the batch lock, in one round trip: the form keys already used
# ('k'), each customer's units in the batch ('u'), each capped option's cap ('c'), and which
# of the options asked for are active, with their product ('v'): the request's option comes
# from the reserve POST's copy of the batch (preorders.batch_cache), so the row decides.
_READ_SQL = """
SELECT 'k', r.batch_id, r.user_id, r.request_key, r.id
  FROM preorders_reservation r
  JOIN unnest(%(users)s::bigint[], %(keys)s::varchar[]) AS f(user_id, request_key)
    ON r.user_id = f.user_id AND r.request_key = f.request_key
UNION ALL
SELECT 'u', batch_id, user_id, NULL, sum(quantity) FROM preorders_reservation
 WHERE batch_id = ANY(%(batches)s) AND user_id = ANY(%(users)s) AND status = ANY(%(counted)s)
 GROUP BY batch_id, user_id
UNION ALL
SELECT 'c', batch_id, variant_id, NULL, cap FROM preorders_variantcap
 WHERE batch_id = ANY(%(batches)s) AND variant_id = ANY(%(variants)s)
UNION ALL
SELECT 'v', NULL, id, NULL, product_id FROM catalog_variant
 WHERE id = ANY(%(variants)s) AND is_active
"""
# Units held of the capped options, when the block asks for one.
_OPTIONS_SQL = """
SELECT batch_id, variant_id, sum(quantity) FROM preorders_reservation
 WHERE batch_id = ANY(%(batches)s) AND variant_id = ANY(%(variants)s)
   AND status = ANY(%(counted)s)
 GROUP BY batch_id, variant_id
"""
_BATCH_NAMES = [f.attname for f in PreorderBatch._meta.concrete_fields]
_BATCH_COLUMNS = ", ".join(f"b.{f.column}" for f in PreorderBatch._meta.concrete_fields)
_LOCK_SQL = f"SELECT {_BATCH_COLUMNS} FROM preorders_preorderbatch b WHERE b.id = ANY(%s) ORDER BY b.id FOR UPDATE OF b"  # noqa: E501, S608 (names from the model)
# The same, with the block's commit not waiting for the WAL flush (`block_start_sql`): set
# in the statement itself, one round trip fewer.
_LOCK_ASYNC_SQL = _LOCK_SQL.replace(
    "WHERE", "CROSS JOIN set_config('synchronous_commit', 'off', true) AS c WHERE"
)


def _lock_and_read(batch_ids: list[int], params: dict) -> tuple[list[PreorderBatch], list]:
    """The batches locked (in id order), then the block's reads, as two statements: the
    reads' snapshot is taken once the locks are held, so they see what the last holder
    committed. (Sent one after the other: psycopg's pipeline mode costs more CPU than the
    round trip it saves, and the process's CPU is what a hot drop runs out of.)"""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        start = block_start_sql()
        if start not in (None, "SET LOCAL synchronous_commit = off"):
            cursor.execute(start)
        cursor.execute(_LOCK_ASYNC_SQL if start else _LOCK_SQL, [batch_ids], prepare=True)
        batches = [PreorderBatch.from_db("default", _BATCH_NAMES, row) for row in cursor.fetchall()]
        intake_locked()
        cursor.execute(_READ_SQL, params, prepare=True)
        return batches, cursor.fetchall()


@functools.cache
def _insert_sql() -> tuple[str, list]:
    """The block's one statement, and the constant columns it fills from parameters."""
    fields = {f.attname: f for f in Reservation._meta.concrete_fields if not f.primary_key}
    constant = [f for name, f in fields.items() if name not in _ROW_FIELDS]
    quote = connection.ops.quote_name
    row_types = ", ".join(
        f"{fields[name].column} {fields[name].db_type(connection)}" for name in _ROW_FIELDS
    )
    columns = ", ".join(quote(fields[name].column) for name in _ROW_FIELDS)
    columns += "".join(f", {quote(f.column)}" for f in constant)
    values = ", ".join(f"r.{fields[name].column}" for name in _ROW_FIELDS)
    values += "".join(f", %s::{f.db_type(connection)}" for f in constant)
    sql = f"""
WITH r AS (
  SELECT * FROM json_to_recordset(%s::json) AS r({row_types}, note text)
), ins AS (
  INSERT INTO preorders_reservation ({columns}) SELECT {values} FROM r
  ON CONFLICT (user_id, request_key) DO NOTHING
  RETURNING id, batch_id, user_id, request_key, quantity
), events AS (
  INSERT INTO preorders_preorderevent
    (batch_id, reservation_id, actor_id, from_status, to_status, note, created_at)
  SELECT ins.batch_id, ins.id, ins.user_id, '', %s, left(r.note, 300), %s
    FROM ins JOIN r ON r.user_id = ins.user_id AND r.request_key = ins.request_key
), counters AS (
  UPDATE preorders_preorderbatch AS b
     SET reserved_units = b.reserved_units + s.units, offered_units = b.offered_units - s.freed
    FROM (
      SELECT ins.batch_id, sum(ins.quantity) AS units, coalesce(sum(o.units), 0) AS freed
        FROM ins
        LEFT JOIN unnest(%s::bigint[], %s::varchar[], %s::integer[]) AS o(user_id, key, units)
          ON o.user_id = ins.user_id AND o.key = ins.request_key
       GROUP BY ins.batch_id
    ) AS s
   WHERE b.id = s.batch_id AND b.id = ANY(%s::bigint[])  -- an index lookup, not a scan
)
SELECT id, user_id, request_key FROM ins
"""  # noqa: S608 (names from the model)
    return sql, constant


class ReservationWriter:
    name = "preorder-reservations"

    def write_block(self, requests: Sequence[_Admission]) -> list:
        from preorders.services import ReservationError, _check_open, _check_room, _waitlist_offer

        now = timezone.now()
        batch_ids = sorted({a.request.batch_id for a in requests})
        user_ids = sorted({a.request.user.pk for a in requests})
        params = {
            "users": [a.request.user.pk for a in requests],
            "keys": [a.key for a in requests],
            "batches": batch_ids,
            "variants": sorted({a.request.variant.pk for a in requests}),
            "counted": list(COUNTED_STATUSES),
        }
        existing_ids: dict[tuple[int, str], int] = {}
        units: dict[tuple[int, int], int] = defaultdict(int)
        caps: dict[tuple[int, int], int] = {}
        active: dict[int, int] = {}  # active option -> its product
        locked, read = _lock_and_read(batch_ids, params)
        batches = {batch.pk: batch for batch in locked}
        for kind, batch_id, user_id, key, value in read:
            if kind == "k":
                existing_ids[user_id, key] = value
            elif kind == "u":
                units[batch_id, user_id] = value
            elif kind == "c":
                caps[batch_id, user_id] = value
            else:
                active[user_id] = value
        taken: dict[tuple[int, int], int] = defaultdict(int)
        if caps:
            with connection.cursor() as cursor:
                cursor.execute(_OPTIONS_SQL, {**params, "variants": sorted({v for _, v in caps})})
                for batch_id, variant_id, total in cursor.fetchall():
                    taken[batch_id, variant_id] = total
        existing = (
            {
                (r.user_id, r.request_key): r
                for r in Reservation.objects.filter(pk__in=existing_ids.values())
            }
            if existing_ids
            else {}
        )
        offers = {}
        if any(batch.offered_units for batch in batches.values()):
            offers = {
                (entry.batch_id, entry.user_id): entry
                for entry in WaitlistEntry.objects.select_for_update().filter(
                    batch_id__in=batch_ids,
                    user_id__in=user_ids,
                    status=WaitlistStatus.OFFERED,
                    offer_expires_at__gt=now,
                )
            }

        outcomes: list = []
        made: dict[tuple[int, str], _Admission] = {}
        refused: dict[tuple[int, str], Exception] = {}
        claimed: list[tuple[int, str, WaitlistEntry]] = []  # by the request taking it
        reoffer: set[int] = set()  # batches where an offer was only partly taken
        for admission in requests:
            request, key = admission.request, admission.key
            user = request.user
            batch = batches.get(request.batch_id)
            if (user.pk, key) in existing:
                outcomes.append((existing[user.pk, key], False))
                continue
            if (user.pk, key) in made:  # the twin of a request earlier in this block
                outcomes.append(made[user.pk, key])
                continue
            if (user.pk, key) in refused:
                outcomes.append(refused[user.pk, key])
                continue
            if batch is None:
                outcomes.append(ReservationError("This batch is no longer available."))
                continue
            if batch.deposit_per_unit > 0:
                outcomes.append(SLOW_PATH)
                continue
            try:
                offer = offers.get((batch.pk, user.pk))
                self._check(
                    request, batch, units, caps, taken, offer, active, _check_open, _check_room
                )
            except ValidationError as exc:
                refused[user.pk, key] = exc
                outcomes.append(exc)
                continue
            units[batch.pk, user.pk] += request.quantity
            taken[batch.pk, request.variant.pk] += request.quantity
            batch.reserved_units += request.quantity
            if offer is not None:
                batch.offered_units -= offer.quantity
                claimed.append((user.pk, key, offer))
                del offers[batch.pk, user.pk]
                if offer.quantity > request.quantity:
                    reoffer.add(batch.pk)
            made[user.pk, key] = admission
            outcomes.append(admission)
        if made:
            self._write(list(made.values()), batches, claimed, reoffer, outcomes, now)
            for batch_id in sorted(reoffer):
                batch = batches[batch_id]
                batch.refresh_from_db()
                _waitlist_offer(batch)  # the part of an offer not taken goes to the next
        return outcomes

    @staticmethod
    def _check(request, batch, units, caps, taken, offer, active, check_open, check_room) -> None:
        from preorders.services import ReservationError

        check_open(batch)
        quantity, variant = request.quantity, request.variant
        if quantity < 1:
            raise ReservationError("Reserve at least one unit.")
        already = units[batch.pk, request.user.pk]
        if already + quantity > batch.per_customer_limit:
            left = batch.per_customer_limit - already
            raise ReservationError(
                f"At most {batch.per_customer_limit} units per customer"
                + (f"; you can add {left} more." if left > 0 else "; you have reserved them all.")
            )
        if active.get(variant.pk) != batch.product_id:
            raise ReservationError("Choose one of this product's options.")
        cap = caps.get((batch.pk, variant.pk))
        if cap is not None:
            left = cap - taken[batch.pk, variant.pk]
            if quantity > left:
                raise ReservationError(
                    f"Only {left} left in {variant.option_label}."
                    if left > 0
                    else f"{variant.option_label} is fully reserved: choose another option."
                )
        check_room(batch, quantity, offer)

    def _write(self, rows: list[_Admission], batches, claimed, reoffer, outcomes, now) -> None:
        """One statement: the reservations (a twin sent to another batch's form at the same
        instant is skipped by its unique key), their events, and the batches' counters by
        what was really inserted (the batch's CheckConstraint refuses anything over the
        cap). Then the offers claimed, if any. Each admitted request's outcome becomes its
        row's id (`_Made`), or the first reservation when a twin won."""
        from preorders.batch_version import batches_retire_now
        from preorders.tasks import batch_close_if_due, reservation_receipts_send

        sql, constant = _insert_sql()
        raw = connection.connection
        with psycopg.Cursor(raw) as cursor:
            params = [
                "[" + ",".join(a.json for a in rows) + "]",
                *_constant_params(now),
                ReservationStatus.HELD.value,
                now,
                [user_id for user_id, _, _ in claimed],
                [key for _, key, _ in claimed],
                [offer.quantity for _, _, offer in claimed],
                sorted({a.request.batch_id for a in rows}),
            ]
            if claimed or reoffer:  # the offers are written after it, in the transaction
                cursor.execute(sql, params, prepare=True)
                written = cursor.fetchall()
            else:  # the last write of the block: with its COMMIT
                written = intake_execute_and_commit(cursor, sql, params)
            inserted = {(user_id, key): pk for pk, user_id, key in written}
        firsts = {}
        if len(inserted) < len(rows):  # their twins won: the first reservation is the answer
            missed = [a for a in rows if (a.request.user.pk, a.key) not in inserted]
            firsts = {
                (r.user_id, r.request_key): r
                for r in Reservation.objects.filter(
                    user_id__in=[a.request.user.pk for a in missed],
                    request_key__in=[a.key for a in missed],
                )
            }
        for index, outcome in enumerate(outcomes):  # a twin in the block gets its first's
            if isinstance(outcome, _Admission):
                pair = (outcome.request.user.pk, outcome.key)
                pk = inserted.get(pair)
                outcomes[index] = _Made(outcome, pk, now) if pk else (firsts[pair], False)
        taken = [o for u, k, o in claimed if (u, k) in inserted]
        if taken:  # their units were taken off offered_units by the statement above
            WaitlistEntry.objects.filter(pk__in=[o.pk for o in taken]).update(
                status=WaitlistStatus.CLAIMED
            )
        ids = list(inserted.values())
        if ids:
            intake_after_commit(lambda: _receipts_queue(ids, reservation_receipts_send))
            # The batch pages show the new counters on their next request: one Redis op.
            changed = {a.request.batch_id for a in rows if (a.request.user.pk, a.key) in inserted}
            intake_after_commit(lambda: batches_retire_now(changed))
        for batch_id in {
            a.request.batch_id for a in rows if (a.request.user.pk, a.key) in inserted
        }:
            batch = batches[batch_id]
            if batch.close_when_full and batch.cap is not None:
                intake_after_commit(lambda pk=batch_id: batch_close_if_due.delay(pk))


WRITER: BlockWriter = ReservationWriter()

# Receipts of committed blocks, handed to the broker as one task per RECEIPTS_EVERY seconds
# and process rather than one per block (thousands of blocks a second would mean as many
# publishes). A process that dies holding some leaves them `receipt_due`: the sweep sends them.
RECEIPTS_EVERY = (
    1.0  # a receipt a second later; a publish costs a hot process ~5% of its CPU at 0.2
)
_receipts_lock = threading.Lock()
_receipts_ids: list[int] = []
_receipts_flusher: threading.Thread | None = None


def _receipts_queue(ids: list[int], task) -> None:
    global _receipts_flusher
    if task.app.conf.task_always_eager:  # tests and `make run` without a worker: at once
        task.delay(ids)
        return
    with _receipts_lock:
        _receipts_ids.extend(ids)
        if _receipts_flusher is None or not _receipts_flusher.is_alive():
            _receipts_flusher = threading.Thread(
                target=_receipts_flush, args=(task,), name="receipts-flush", daemon=True
            )
            _receipts_flusher.start()


def _receipts_flush(task) -> None:
    global _receipts_flusher
    while True:
        time.sleep(RECEIPTS_EVERY)
        with _receipts_lock:
            ids = _receipts_ids[:]
            del _receipts_ids[:]
            if not ids:
                _receipts_flusher = None
                return
        try:
            task.delay(ids)
        except Exception:  # the broker is down: the sweep sends them from receipt_due
            logger.exception("receipts of %s reservations not queued", len(ids))


def receipts_flush_wait(timeout: float = 5.0) -> None:
    """Until this process's pending receipts are handed on (tests: a flush left running
    would run its task in the next test, against that test's state)."""
    flusher = _receipts_flusher
    if flusher is not None:
        flusher.join(timeout)


def reservations_receipts_sweep(*, older_than: timedelta | None = None) -> int:
    """Beat: receipts whose task was lost (the broker was down at the commit)."""
    from preorders.receipts import reservation_receipts_send

    since = timezone.now() - (timedelta(minutes=1) if older_than is None else older_than)
    ids = list(
        Reservation.objects.filter(receipt_due=True, created_at__lte=since)
        .order_by("pk")
        .values_list("pk", flat=True)[: getattr(settings, "PREORDER_RECEIPTS_SWEEP", 2_000)]
    )
    return reservation_receipts_send(reservation_ids=ids) if ids else 0
