"""The settlement engine that pre-order batches and crowdfunding campaigns (and later group
buys) share: at the close, charge every held commitment off-session, or release them all.

A feature app describes its commitments with a `CommitmentBook` and registers it; the engine
does the rest: chunk tasks over id ranges, pacing toward the provider, exactly-once charges,
resuming after a crash.

Exactly once, even when a worker is killed at any instant:
- Each commitment is worked on under a session-level advisory lock on its id (`lock_key`).
  Postgres drops the lock when the worker's connection dies, so a re-delivered chunk
  (acks_late) can take over, and two live workers never call the provider for the same
  commitment.
- Before the provider is called the commitment is committed as `charging`; its Payment
  (unique idempotency key) is written once, with the outcome, in the transaction that moves
  the commitment on, so the two never disagree. A commitment found `charging` was being
  charged by a worker that died: the engine asks the provider for the charge made with that
  key (`charge_find`) and records it; it charges only if the provider never saw it.
- The provider also gets the key, as a second line of defence (real Stripe honours it).

Resuming within seconds, not an hour: a killed chunk's message waits in the broker until its
visibility timeout, so the beat sweep (`settlement_reconcile`, every 20 s) does not wait for
it. A commitment `charging` whose advisory lock nobody holds is orphaned: its worker is gone
(a live one holds the lock from before it moves the commitment to `charging` until after it
records the outcome). No quiet period is needed to tell; the sweep re-enqueues chunks over
the orphans at once, and whichever copy of a chunk runs second finds nothing left to do."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal, Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import User
from payments.models import Payment, PaymentStatus
from payments.money import to_minor_units
from payments.pacing import ProviderPacer
from payments.providers.base import ChargeOutcome, ChargeRequest, ChargeResult
from payments.providers.registry import provider_get
from payments.services import DECLINE_MESSAGE, customer_ref_for
from rowsql.arrays import array_cursor

logger = logging.getLogger(__name__)

Mode = Literal["charge", "release"]

_OUTCOME_STATUS = {
    ChargeOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
    ChargeOutcome.NEEDS_ACTION: PaymentStatus.REQUIRES_ACTION,
    ChargeOutcome.DECLINED: PaymentStatus.FAILED,
    ChargeOutcome.ERROR: PaymentStatus.PENDING,
}


@dataclass(frozen=True)
class Commitment:
    """One charge the engine is to make: what, to whom, with which card and key."""

    id: int
    user_id: int
    saved_card_id: int
    amount: Decimal
    currency: str
    reference: str
    idempotency_key: str
    resumed: bool = False  # found `charging`: a worker died after committing to charge it


@dataclass(frozen=True)
class PaymentRow:
    """The columns of a commitment's Payment that the settlement reads and writes (a chunk
    has thousands: tuples, not model instances)."""

    pk: int
    idempotency_key: str
    status: str
    amount: Decimal
    currency: str
    provider_ref: str
    client_secret: str
    failure_message: str
    saved_card_id: int | None
    failure_code: str = ""


@dataclass(frozen=True)
class ChargeRecord:
    commitment: Commitment
    payment: PaymentRow  # as recorded with the charge's outcome
    outcome: ChargeOutcome


class CommitmentBook(Protocol):
    """What a feature app tells the engine about its commitments (Reservation, Pledge)."""

    kind: str  # "preorder", "pledge": the name chunk tasks carry
    lock_namespace: int  # 1..LOCK_NAMESPACE_MAX, unique per book: the top bits of lock keys
    model: type[models.Model]
    parent_field: str  # "batch_id"
    open_statuses: tuple[str, str]  # (held, charging)

    def mode(self, *, parent_id: int) -> Mode | None:
        """What the parent needs now: charge (settling), release (cancelling) or nothing."""

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        """Move the held ones among `ids` to charging (committed) and return every one of
        `ids` that is now charging, those left charging by a dead worker marked `resumed`."""

    def charging_record(self, *, parent_id: int, records: Sequence[ChargeRecord]) -> None:
        """Inside the engine's transaction: move each commitment by its charge's outcome
        (succeeded, failed, or back to held after a provider error)."""

    def release(self, *, parent_id: int, ids: Sequence[int], pacer: ProviderPacer) -> None:
        """Release the held ones among `ids` (refunding deposits, paced)."""

    def finish_if_done(self, *, parent_id: int) -> bool:
        """When no commitment is left open, move the parent to its final state."""

    def id_bounds(self, *, parent_id: int) -> tuple[int, int] | None:
        """The smallest and largest id of the parent's open commitments."""

    def active_parent_ids(self) -> list[int]:
        """Parents settling or cancelling now."""

    def stalled_parent_ids(self, *, quiet_for: timedelta) -> list[int]:
        """Parents settling or cancelling in which nothing moved for `quiet_for`."""


# Advisory-lock keys: pg_try_advisory_lock's single-bigint form, the book's namespace in the
# top bits and the commitment's id in the low LOCK_ID_BITS. With namespaces unique per book
# (checked at registration) and ids in [1, 2**LOCK_ID_BITS) (checked before every lock; an
# id beyond raises instead of aliasing), two commitments never share a key: the map
# (namespace, id) -> key is injective on that domain, and the sign bit stays 0. 2**48 is
# 281 trillion ids, far beyond any bigserial we will reach. The single-bigint keys live apart
# from the two-int4 form's (pg_locks.objsubid 1 vs 2), so other users of that form cannot
# collide with ours either.
LOCK_ID_BITS = 48
LOCK_NAMESPACE_MAX = 2 ** (63 - LOCK_ID_BITS) - 1
_LOCK_KEY_SQL = f"((%s::bigint << {LOCK_ID_BITS}) | c.id)"


def lock_key(*, namespace: int, commitment_id: int) -> int:
    """The advisory-lock key of one commitment (the SQL below computes the same)."""
    _check_lockable(namespace=namespace, ids=[commitment_id])
    return (namespace << LOCK_ID_BITS) | commitment_id


def _check_lockable(*, namespace: int, ids: Sequence[int]) -> None:
    if not 1 <= namespace <= LOCK_NAMESPACE_MAX:
        raise ValueError(f"lock namespace {namespace} is outside 1..{LOCK_NAMESPACE_MAX}")
    if ids and not (min(ids) >= 1 and max(ids) < 2**LOCK_ID_BITS):
        raise ValueError(f"commitment ids must be in [1, 2**{LOCK_ID_BITS}) to be locked")


_books: dict[str, CommitmentBook] = {}


def settlement_book_register(book: CommitmentBook) -> None:
    """Register a feature's book. Refuses a namespace out of range or already taken by
    another book, since their lock keys would collide."""
    _check_lockable(namespace=book.lock_namespace, ids=[])
    for other in _books.values():
        if other.kind != book.kind and other.lock_namespace == book.lock_namespace:
            raise ValueError(
                f"books {other.kind!r} and {book.kind!r} share lock namespace {book.lock_namespace}"
            )
    _books[book.kind] = book


def settlement_book(kind: str) -> CommitmentBook:
    return _books[kind]


def settlement_books() -> list[CommitmentBook]:
    return list(_books.values())


def settlement_start(*, kind: str, parent_id: int) -> int:
    """Enqueue chunk tasks over the parent's open commitments, on commit of the caller's
    transaction (the close). Returns the number of chunks. Safe to call again: chunks are
    idempotent, so a re-start only finishes what is left."""
    from payments.tasks import settlement_chunk

    book = _books[kind]
    bounds = book.id_bounds(parent_id=parent_id)
    if bounds is None:
        transaction.on_commit(lambda: _finish(kind, parent_id))
        return 0
    first, last = bounds
    size = settings.SETTLEMENT_CHUNK_SIZE
    chunks = 0
    for start in range(first, last + 1, size):
        settlement_chunk.delay_on_commit(kind, parent_id, start, min(start + size - 1, last))
        chunks += 1
    # Fresh statistics for the chunks' statements: the commitments came in since the last
    # autovacuum, and a planner expecting one row per chunk picks nested loops over them.
    # After the chunks are queued (callbacks run in order): the workers start meanwhile
    # (seconds on a big table), their statements written to plan well on stale ones too.
    transaction.on_commit(lambda: _analyze(book), robust=True)
    return chunks


def _analyze(book: CommitmentBook) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(book.model._meta.db_table)}")


def _finish(kind: str, parent_id: int) -> None:
    from payments.tasks import settlement_finish

    settlement_finish.delay(kind, parent_id)


def settlement_reconcile(*, quiet_for: timedelta | None = None) -> list[tuple[str, int]]:
    """Beat sweep (every 20 s), the safety net. Two cases, and the parents restarted:

    - Orphans: commitments `charging` that no live worker holds the lock of (the worker died
      between committing to charge and recording). Chunks over them are enqueued at once.
    - Stalled: a parent in which nothing moved for `quiet_for` and none of whose open
      commitments is locked by a live worker (a chunk message lost, a worker killed while
      releasing). Its whole settlement is restarted, at most once per `quiet_for`.

    Chunks are idempotent, so a restart only does what is left, and a duplicate finds nothing."""
    if quiet_for is None:
        quiet_for = timedelta(seconds=settings.SETTLEMENT_RECONCILE_QUIET_SECONDS)
    restarted: list[tuple[str, int]] = []
    for book in _books.values():
        for parent_id in book.active_parent_ids():
            orphans = settlement_orphans(book=book, parent_id=parent_id)
            if orphans:
                _resume(book, parent_id, orphans)
                restarted.append((book.kind, parent_id))
        for parent_id in book.stalled_parent_ids(quiet_for=quiet_for):
            if (book.kind, parent_id) in restarted or _any_locked(book, parent_id):
                continue
            # Chunks queued behind a long backlog look stalled too: restart once per period.
            key = f"settlement:restart:{book.kind}:{parent_id}"
            if not cache.add(key, 1, timeout=max(1, int(quiet_for.total_seconds()))):
                continue
            with transaction.atomic():
                settlement_start(kind=book.kind, parent_id=parent_id)
            restarted.append((book.kind, parent_id))
    if restarted:
        logger.warning("settlement resumed for %s", restarted)
    return restarted


# The advisory-lock keys held right now in this database, by any session.
_HELD_KEYS_SQL = """
SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks AS l
WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def settlement_orphans(*, book: CommitmentBook, parent_id: int) -> list[int]:
    """The parent's commitments left `charging` by a worker that is gone: nobody holds their
    lock. One that a live worker finishes while we look may show up too (its row read
    before, the lock list after its unlock): a chunk over it then finds it done."""
    table = book.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH held AS MATERIALIZED ({_HELD_KEYS_SQL})"  # noqa: S608 (names from code)
            f" SELECT c.id FROM {table} AS c WHERE c.{book.parent_field} = %s AND c.status = %s"
            f" AND {_LOCK_KEY_SQL} NOT IN (SELECT * FROM held) ORDER BY c.id",
            [parent_id, book.open_statuses[1], book.lock_namespace],
        )
        return [row[0] for row in cursor.fetchall()]


def _any_locked(book: CommitmentBook, parent_id: int) -> bool:
    """Is a live worker on one of the parent's open commitments (a slow provider call)?"""
    table = book.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH held AS MATERIALIZED ({_HELD_KEYS_SQL})"  # noqa: S608 (names from code)
            f" SELECT EXISTS (SELECT 1 FROM {table} AS c WHERE c.{book.parent_field} = %s"
            f" AND c.status = ANY(%s) AND {_LOCK_KEY_SQL} IN (SELECT * FROM held))",
            [parent_id, list(book.open_statuses), book.lock_namespace],
        )
        return cursor.fetchone()[0]


def _resume(book: CommitmentBook, parent_id: int, ids: Sequence[int]) -> None:
    """Chunk tasks over `ids` (sorted), each spanning at most a chunk's width of ids."""
    from payments.tasks import settlement_chunk

    size = settings.SETTLEMENT_CHUNK_SIZE
    with transaction.atomic():
        first = last = ids[0]
        for pk in ids[1:]:
            if pk - first >= size:
                settlement_chunk.delay_on_commit(book.kind, parent_id, first, last)
                first = pk
            last = pk
        settlement_chunk.delay_on_commit(book.kind, parent_id, first, last)


# --- one chunk --------------------------------------------------------------------------------


def _lock_ids(book: CommitmentBook, parent_id: int, first_id: int, last_id: int) -> list[int]:
    """The open commitments of the range that no other live worker is holding, each now
    under a session advisory lock of ours (released in `_unlock_ids`, or by Postgres when
    this process dies)."""
    table = book.model._meta.db_table
    with array_cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE {book.parent_field} = %s AND id BETWEEN %s AND %s"  # noqa: S608 (names from code, not input)
            " AND status = ANY(%s) ORDER BY id",
            [parent_id, first_id, last_id, list(book.open_statuses)],
        )
        candidates = [row[0] for row in cursor.fetchall()]
        if not candidates:
            return []
        _check_lockable(namespace=book.lock_namespace, ids=candidates)
        cursor.execute(
            "SELECT c.id FROM unnest(%s::bigint[]) AS c(id)"  # noqa: S608 (a constant)
            f" WHERE pg_try_advisory_lock({_LOCK_KEY_SQL}) ORDER BY c.id",
            [candidates, book.lock_namespace],
        )
        return [row[0] for row in cursor.fetchall()]


def _unlock_ids(book: CommitmentBook, ids: Sequence[int]) -> None:
    if not ids:
        return
    with array_cursor() as cursor:
        cursor.execute(
            f"SELECT count(pg_advisory_unlock({_LOCK_KEY_SQL}))"  # noqa: S608 (a constant)
            " FROM unnest(%s::bigint[]) AS c(id)",
            [book.lock_namespace, list(ids)],
        )


def settlement_run_chunk(*, kind: str, parent_id: int, first_id: int, last_id: int) -> bool:
    """Settle the commitments of one id range. Returns True when some are left to retry
    later (the provider was unavailable)."""
    book = _books[kind]
    mode = book.mode(parent_id=parent_id)
    if mode is None:
        return False
    ids = _lock_ids(book, parent_id, first_id, last_id)
    retry_later = False
    try:
        if ids:
            provider = provider_get()
            pacer = ProviderPacer(provider.name)
            if mode == "release":
                book.release(parent_id=parent_id, ids=ids, pacer=pacer)
            else:
                retry_later = _charge_all(book, parent_id, ids, pacer)
    finally:
        _unlock_ids(book, ids)
    if not retry_later:
        book.finish_if_done(parent_id=parent_id)
    return retry_later


_PAYMENT_COLUMNS = (
    "id, idempotency_key, status, amount, currency, provider_ref, client_secret,"
    " failure_message, saved_card_id"
)


def _payments_recorded(commitments: Sequence[Commitment]) -> dict[str, PaymentRow]:
    """The Payments already made for commitments a dead worker left charging (a pending one
    after a provider error, or one recorded by an older release that wrote it first). Fresh
    commitments have none worth reading: a held one's is at most pending."""
    keys = [c.idempotency_key for c in commitments if c.resumed]
    if not keys:
        return {}
    table = connection.ops.quote_name(Payment._meta.db_table)
    with array_cursor() as cursor:
        cursor.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM {table}"  # noqa: S608 (names from code)
            " WHERE idempotency_key = ANY(%s::varchar[])",
            [keys],
        )
        return {row[1]: PaymentRow(*row) for row in cursor.fetchall()}


def _charge_all(
    book: CommitmentBook, parent_id: int, ids: Sequence[int], pacer: ProviderPacer
) -> bool:
    provider = provider_get()
    with transaction.atomic():
        commitments = book.charging_begin(parent_id=parent_id, ids=ids)
    payments = _payments_recorded(commitments)
    with array_cursor() as cursor:
        cursor.execute(
            "SELECT id, user_id, provider_ref FROM payments_savedcard WHERE id = ANY(%s)",
            [list({c.saved_card_id for c in commitments})],
        )
        cards = {pk: (user_id, ref) for pk, user_id, ref in cursor.fetchall()}
        cursor.execute(
            "SELECT user_id, customer_ref FROM payments_paymentcustomer"
            " WHERE provider = %s AND user_id = ANY(%s)",
            [provider.name, list({c.user_id for c in commitments})],
        )
        customers = dict(cursor.fetchall())
    retry_later = False
    every = settings.SETTLEMENT_RECORD_EVERY
    for start in range(0, len(commitments), every):
        block = commitments[start : start + every]
        results: dict[int, ChargeResult] = {}
        to_charge: list[tuple[Commitment, ChargeRequest]] = []
        for commitment in block:
            payment = payments.get(commitment.idempotency_key)
            if payment is not None and payment.status != PaymentStatus.PENDING:
                results[commitment.id] = _result_of(payment)  # recorded, its commitment not yet
                continue
            card_user_id, card_ref = cards[commitment.saved_card_id]
            customer_ref = customers.get(commitment.user_id) or _customer_ref(
                card_user_id, provider.name
            )
            provider_key = f"{commitment.idempotency_key}:card-{commitment.saved_card_id}"
            if commitment.resumed:
                found = provider.charge_find(
                    idempotency_key=provider_key, customer_ref=customer_ref
                )
                if found is not None:
                    results[commitment.id] = found
                    continue
            to_charge.append(
                (
                    commitment,
                    ChargeRequest(
                        amount_minor=to_minor_units(commitment.amount, commitment.currency),
                        currency=commitment.currency.lower(),
                        customer_ref=customer_ref,
                        card_ref=card_ref,
                        idempotency_key=provider_key,
                        metadata={"reference": commitment.reference},
                    ),
                )
            )
        answers = provider.charge_many(
            requests=[request for _, request in to_charge], pace=pacer.take
        )
        for (commitment, _), result in zip(to_charge, answers, strict=True):
            results[commitment.id] = result
        retry_later |= any(r.outcome == ChargeOutcome.ERROR for r in results.values())
        _record(
            book,
            parent_id,
            provider.name,
            [(c, payments.get(c.idempotency_key), results[c.id]) for c in block],
        )
    return retry_later


def _customer_ref(user_id: int, provider_name: str) -> str:
    """The provider's customer of a card's owner who has none on record yet (rare: cards are
    saved through one)."""
    return customer_ref_for(user=User.objects.get(pk=user_id), provider_name=provider_name)


def _result_of(payment: PaymentRow) -> ChargeResult:
    outcome = {
        PaymentStatus.SUCCEEDED: ChargeOutcome.SUCCEEDED,
        PaymentStatus.PARTIALLY_REFUNDED: ChargeOutcome.SUCCEEDED,
        PaymentStatus.REFUNDED: ChargeOutcome.SUCCEEDED,
        PaymentStatus.REQUIRES_ACTION: ChargeOutcome.NEEDS_ACTION,
        PaymentStatus.FAILED: ChargeOutcome.DECLINED,
    }[payment.status]
    return ChargeResult(outcome, provider_ref=payment.provider_ref, message=payment.failure_message)


# Each commitment's Payment, written once with its charge's outcome (a provider error leaves
# it pending): one INSERT for a block. The key is unique, so a Payment already there (left
# pending by a provider error, or by a dead worker of an older release) takes the outcome
# instead; one recorded already is left as it is. Written after the charge, not pending
# before it: exactly-once rests on the commitment committed `charging` under its advisory
# lock (and the provider's own record of the key, asked on a resume), never on this row,
# and a second write of every Payment (a new version of the row and of its six indexes)
# was a tenth of a chunk's writes.
_PAYMENTS_SQL = """
INSERT INTO {table} AS t (provider, user_id, reference, amount, currency, status,
  saved_card_id, provider_ref, client_secret, idempotency_key, failure_code, failure_message,
  amount_refunded, amount_refund_pending, provider_key, provider_request, created_at,
  updated_at)
SELECT %(provider)s, v.user_id, v.reference, v.amount, v.currency, v.status, v.saved_card_id,
  v.provider_ref, v.client_secret, v.idempotency_key, v.failure_code, v.failure_message, 0, 0,
  '', '{{}}'::jsonb, %(now)s, %(now)s
FROM unnest(%(users)s::bigint[], %(references)s::varchar[], %(amounts)s::numeric[],
  %(currencies)s::varchar[], %(statuses)s::varchar[], %(cards)s::bigint[],
  %(refs)s::varchar[], %(secrets)s::varchar[], %(keys)s::varchar[], %(codes)s::varchar[],
  %(messages)s::varchar[])
  AS v(user_id, reference, amount, currency, status, saved_card_id, provider_ref,
    client_secret, idempotency_key, failure_code, failure_message)
ON CONFLICT (idempotency_key) DO UPDATE SET status = excluded.status,
  amount = excluded.amount, saved_card_id = excluded.saved_card_id,
  provider_ref = excluded.provider_ref, client_secret = excluded.client_secret,
  failure_code = excluded.failure_code, failure_message = excluded.failure_message,
  updated_at = excluded.updated_at
WHERE t.status = %(pending)s
RETURNING t.idempotency_key, t.id
"""


def _record(
    book: CommitmentBook,
    parent_id: int,
    provider_name: str,
    outcomes: Iterable[tuple[Commitment, PaymentRow | None, ChargeResult]],
) -> None:
    """The payments with their outcomes (one INSERT) and the commitments' moves (the
    book's), in one transaction."""
    outcomes = list(outcomes)
    if not outcomes:
        return
    kept: dict[int, PaymentRow] = {}  # by commitment id: recorded before, as they are
    new: list[tuple] = []  # PaymentRow's fields but the pk, for those written now
    for commitment, payment, result in outcomes:
        if payment is not None and payment.status != PaymentStatus.PENDING:
            kept[commitment.id] = payment
            continue
        failed = result.outcome in (ChargeOutcome.DECLINED, ChargeOutcome.ERROR)
        new.append(
            (
                commitment.idempotency_key,
                _OUTCOME_STATUS[result.outcome],
                commitment.amount,
                commitment.currency,
                result.provider_ref or (payment.provider_ref if payment else ""),
                result.client_secret or (payment.client_secret if payment else ""),
                (result.message or DECLINE_MESSAGE)[:300] if failed else "",
                commitment.saved_card_id,
                result.code[:60] if failed else "",
                commitment.user_id,
                commitment.reference,
            )
        )
    table = connection.ops.quote_name(Payment._meta.db_table)
    with transaction.atomic():
        ids: dict[str, int] = {}
        if new:
            keys, statuses, amounts, currencies, refs, secrets, messages, cards, codes = (
                list(column) for column in zip(*(row[:9] for row in new), strict=True)
            )
            with array_cursor() as cursor:
                cursor.execute(
                    _PAYMENTS_SQL.format(table=table),
                    {
                        "users": [row[9] for row in new],
                        "references": [row[10] for row in new],
                        "amounts": amounts,
                        "currencies": currencies,
                        "statuses": statuses,
                        "cards": cards,
                        "refs": refs,
                        "secrets": secrets,
                        "keys": keys,
                        "codes": codes,
                        "messages": messages,
                        "provider": provider_name,
                        "pending": PaymentStatus.PENDING.value,
                        "now": timezone.now(),
                    },
                )
                ids = dict(cursor.fetchall())
        # By key; pk 0: recorded by another run meanwhile (its commitment moved too).
        made = {row[0]: PaymentRow(ids.get(row[0], 0), *row[:9]) for row in new}
        records = [
            ChargeRecord(
                commitment=commitment,
                payment=kept.get(commitment.id) or made[commitment.idempotency_key],
                outcome=result.outcome,
            )
            for commitment, _, result in outcomes
        ]
        book.charging_record(parent_id=parent_id, records=records)
