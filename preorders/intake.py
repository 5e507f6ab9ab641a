"""The pre-order batch's intake: how a block of reservations is decided and written
(payments.commitments.intake runs the blocks: one transaction each, the shopper answered
after its commit).

The rules live in the database, in one function (`preorders_intake_block`, created by
migration 0004, which says what it returns), called once per block with the block's
requests as JSON and sent with the COMMIT in one round trip: under each batch's row lock
(taken once, in id order) it reads set-based the form keys already used, each customer's
units in the batch, the options asked for (active, of the batch's product) and the capped
ones' units, and the block's customers' waitlist offers; decides each request in arrival
order against those numbers as they grow (the same rules as `preorders.services`' checks,
whose messages the verdicts become here); then one statement inserts the reservations and
their events, claims the offers taken and moves each batch's counters (its CheckConstraint
refuses anything over the cap). Why in the server: deciding in Python held the batch lock
across three or four client round trips per block, each waiting for the GIL behind the
threads preparing the next block; now the lock is held only while the server works. The
rules are not kept twice: the one-by-one path (`preorders.services`: a deposit, a change, the
waitlist) has its own checks, as before, and both raise the same messages.

Python keeps what is not the decision: the address checked and the row made as JSON in the
shopper's thread before it queues (a bad form waits for nobody), the reservation instance
built from the row (no read back), the receipts and page tokens after the commit, and the
rest of a partly taken offer handed to the next in line (`_waitlist_offer`, which sends
mail): the function cannot do that before a COMMIT sent in the same round trip, so it
refuses (FH001) and the block is written again with the COMMIT sent afterwards.

Receipts are rendered after the commit by a worker (`receipt_due`, swept if the broker was
down), so a hot batch does not render two templates per reservation inside the request.

A batch with a deposit is not taken here (`SLOW_PATH`): the deposit's card charge per
reservation is the slow part there, and `preorders.services` keeps its one-by-one path."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
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
    intake_after_commit,
    intake_execute_and_commit,
    intake_in_engine_block,
    intake_submit,
)
from payments.models import SavedCard
from preorders.models import (
    PreorderBatch,
    Reservation,
    ReservationStatus,
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
    the shopper, option and card it was made with: built in the shopper's thread, from the
    columns' values as the function inserts them (`_template`)."""
    values, from_row, per_call = _template()
    values = values[:]
    row = made.admission.row
    for index, name in from_row:
        values[index] = row[name]
    for index, field in per_call:
        values[index] = field.get_default()
    values[_ID] = made.pk
    values[_CREATED] = values[_UPDATED] = made.at
    reservation = Reservation.from_db("default", _ATTNAMES, values)
    request = made.admission.request
    for name, value in (
        ("user", request.user),
        ("variant", request.variant),
        ("saved_card", request.saved_card),
    ):
        Reservation._meta.get_field(name).set_cached_value(reservation, value)
    return reservation


# The reservation's columns a request brings (in its JSON row); the function fills the others
# with the field defaults, held, its receipt due, made at the block's instant.
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
_ID, _CREATED, _UPDATED = map(_ATTNAMES.index, ("id", "created_at", "updated_at"))


@functools.cache
def _template() -> tuple[list, list[tuple[int, str]], list[tuple[int, object]]]:
    """A new reservation's values in column order, read once: the defaults that are values
    (None, '', 0.00: immutable, so shared), held, receipt due; where the request's own go;
    and the defaults that are functions, called per reservation."""
    values, from_row, per_call = [], [], []
    fixed = {"status": ReservationStatus.HELD.value, "receipt_due": True}
    for index, field in enumerate(Reservation._meta.concrete_fields):
        name = field.attname
        if name in _ROW_FIELDS:
            from_row.append((index, name))
        elif name in fixed:
            values.append(fixed[name])
            continue
        elif callable(field.default) and field.default is not NOT_PROVIDED:
            per_call.append((index, field))
        values.append(None if name in _ROW_FIELDS else field.get_default())
    return values, from_row, per_call


# The block's one statement (preorders/migrations/0004_intake_block_function.py has the
# function and what it returns): sent with the COMMIT in an engine block.
_BLOCK_SQL = "SELECT * FROM preorders_intake_block(%s::json, %s, %s, %s)"
# Raised by the function when an offer was partly taken and a COMMIT follows in the same
# round trip: the rest of the offer must go to the waitlist before the commit.
_CALLER_FINISHES = "FH001"


def _decided(payload: str, now: datetime) -> list[tuple]:
    """The function's rows for the block. In an engine block, sent with the COMMIT (one round
    trip, the batch lock held only inside the server); when the function needs the caller
    before the commit (the rest of an offer to hand on), the block is rolled back and sent
    again without it. Errors as Django's (an IntegrityError: the engine writes the block
    again one request at a time)."""
    engine = intake_in_engine_block()
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        try:
            return intake_execute_and_commit(cursor, _BLOCK_SQL, [payload, now, engine, engine])
        except psycopg.Error as exc:
            if exc.sqlstate != _CALLER_FINISHES:
                raise
        raw.rollback()  # the engine's transaction: the next statement begins it again
        cursor.execute(_BLOCK_SQL, [payload, now, engine, False], prepare=True)
        return cursor.fetchall()


class ReservationWriter:
    name = "preorder-reservations"

    def write_block(self, requests: Sequence[_Admission]) -> list:
        """The block decided and written by one call of `preorders_intake_block` (the rules
        live there); here its verdicts become each request's outcome, and what follows the
        commit is queued."""
        from preorders.batch_version import batches_retire_now
        from preorders.services import _waitlist_offer
        from preorders.tasks import batch_close_if_due, reservation_receipts_send

        now = timezone.now()
        rows = _decided("[" + ",".join(a.json for a in requests) + "]", now)
        outcomes: list = [None] * len(requests)
        existing: dict[int, int] = {}  # request index -> the form's earlier reservation
        made: list[int] = []
        changed: set[int] = set()
        for index, verdict, ref, num1, num2, moment in rows:
            if index is None:  # about a batch
                if verdict == "close":
                    intake_after_commit(lambda pk=ref: batch_close_if_due.delay(pk))
                else:  # the rest of a partly taken offer goes to the next in line
                    batch = PreorderBatch.objects.get(pk=ref)
                    _waitlist_offer(batch)
            elif verdict == "made":
                first = requests[num1]
                outcomes[index] = _Made(first, ref, now)
                if num1 == index:
                    made.append(ref)
                    changed.add(first.request.batch_id)
            elif verdict == "existing":
                existing[index] = ref
            elif verdict == "slow":
                outcomes[index] = SLOW_PATH
            else:
                outcomes[index] = _refusal(verdict, num1, num2, moment, requests[index])
        if existing:  # forms sent before: their reservations, as they are
            found = Reservation.objects.in_bulk(set(existing.values()))
            for index, pk in existing.items():
                outcomes[index] = (found[pk], False)
        if made:
            intake_after_commit(lambda: _receipts_queue(made, reservation_receipts_send))
            # The batch pages show the new counters on their next request: one Redis op.
            intake_after_commit(lambda: batches_retire_now(changed))
        return outcomes


def _refusal(verdict: str, num1, num2, moment, admission: _Admission) -> ValidationError:
    """The function's verdict as the shopper's message (the same as preorders.services')."""
    from preorders import services

    label = admission.request.variant.option_label
    return {
        "gone": lambda: services.ReservationError("This batch is no longer available."),
        "not_open": lambda: services.refused_not_open(moment),
        "closed": services.refused_closed,
        "too_few": services.refused_too_few,
        "limit": lambda: services.refused_over_limit(num1, num2),
        "not_an_option": services.refused_not_an_option,
        "option_short": lambda: services.refused_option_short(label, num1),
        "batch_short": lambda: services.refused_batch_short(num1),
    }[verdict]()


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
