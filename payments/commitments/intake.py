"""Intake at flash-sale speed: every commitment of a hot window (a pre-order batch taking
thousands of reservations a second) is admitted and written in blocks, one short transaction
per block, and each shopper is answered only once their block is committed.

How it works (group commit inside each web process):
- A request hands its commitment to `intake_submit` and waits. The first request to arrive
  while no block is being written becomes the block's leader: it takes every request that is
  waiting (up to BLOCK_MAX), and runs one transaction for all of them on its own connection:
  the feature's `BlockWriter` decides and writes the whole block in the database, in one
  statement (the pre-order's is a PL/pgSQL function: it locks the parent row, reads what it
  needs set-based, decides each request in arrival order, inserts the admitted ones and
  moves the counters) sent with its COMMIT in one round trip (`intake_execute_and_commit`).
  So the parent's row lock is taken once per block and held only while the server works:
  never across a round trip to a client, nor while a Python thread waits for the GIL behind
  threads preparing the next block (which cost the design before this one, deciding in
  Python between three or four round trips under the lock, 850/s from 16 threads and 590/s
  from 2 processes: the lock, held across client round trips, serialised the processes).
  Requests arriving meanwhile wait for the next block, whose leader is the first of them,
  woken once this block has committed. The commit's WAL flush is shared by the whole block.
- One block in flight per process (and parent): letting the next leader send its block at
  once, to queue for the lock in the database, measured slower (2 and 4 blocks in flight:
  smaller blocks, more CPU per commitment on a machine whose CPU is what runs out).
- The block commits without waiting for its WAL to reach the disk (`synchronous_commit =
  off` for that transaction alone), so its locks are free after the commit record is
  written, not after an fsync (1-2 ms here, which would otherwise cap every parent at a
  few hundred blocks a second across all processes). The leader then hands over to the next
  block and waits for the flush (`_durable`: a synchronous commit of its own, which flushes
  the WAL up to after the block's commit) before it answers anyone. A crash before that
  flush loses the block, and every later block that read it (their commits come later in
  the one WAL), and nobody was told. Meanwhile other connections see the block's rows
  before they are on disk: a later block's answers go out after its own flush, which
  covers them; a page read in those milliseconds may show a row that such a crash takes
  back, and no fan is promised a reservation by a page, only by the intake's answer.
- A request made inside a transaction (a test, a service calling another) is written alone
  in that transaction: its caller decides when it commits. Same code, a block of one.
- A block that the database refuses (a constraint, the last line of defence, or bad data in
  one request) is written again one request per transaction, so one bad request never
  fails the others.

Why this design (the issue measured three):
- A Redis Lua admission counter feeding a writer process (2,800-3,500/s in a prototype)
  keeps a second copy of the truth (counters, used keys) that must be rebuilt after a Redis
  crash, and a writer whose crash leaves admitted-but-unwritten requests to tell apart from
  written ones. Its speed comes from writing in blocks, which this design does too; here
  PostgreSQL alone decides, so a crash of Redis changes nothing (it is not on the path) and
  a crash of a web process loses only requests nobody was answered for: the answer is sent
  after COMMIT returned, the block is one transaction (all of it or none), and a retry of
  the same form finds its reservation by the (customer, form key) unique constraint.
- A counter split over 32 rows (1,000-1,250/s in pgbench) still pays one transaction, one
  lock and one WAL flush per reservation, and spreads the cap over rows that must be summed.
- One short transaction per reservation without full_clean (5x the old 65/s) still holds
  the batch row lock across each commit's flush.

Database constraints stay behind it all: the batch's (reserved + offered <= cap) check, the
(customer, form key) unique constraint, quantities >= 1, the foreign keys (checked at the
COMMIT: a block refused there is written again one request at a time, like any other)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from django.db import IntegrityError, connection, transaction

logger = logging.getLogger(__name__)

# The most requests one block writes (a block is whatever waited while the previous one was
# written: at 16 concurrent clients, about 16).
BLOCK_MAX = 1_000

Request = TypeVar("Request")


class BlockWriter(Protocol[Request]):
    """A feature's intake: decide and write a block of requests, its last statement through
    `intake_execute_and_commit` (`intake_in_engine_block` says whether a COMMIT goes with
    it, and whether that commit may skip the WAL flush)."""

    name: str  # one combiner per name and process

    def write_block(self, requests: Sequence[Request]) -> list[Any]:
        """Inside the engine's transaction: admit or refuse each request, in order, and write
        the admitted ones. One entry per request: the result to return to it, or the
        exception to raise in it (a ValidationError for a refusal)."""


@dataclass(eq=False)
class _Pending(Generic[Request]):
    request: Request
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    outcome: Any = None
    done: bool = False


class _Combiner:
    """Requests waiting to be written, and who writes the next block."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: list[_Pending] = []
        self.leading = False


_combiners: dict[str, _Combiner] = {}
_combiners_lock = threading.Lock()


def _combiner(name: str) -> _Combiner:
    with _combiners_lock:
        return _combiners.setdefault(name, _Combiner())


def intake_submit(*, writer: BlockWriter, request: Any) -> Any:
    """Admit and write one request; returns its result once it is committed (or, inside a
    transaction, written in it). Raises the request's refusal, or the database's error."""
    if connection.in_atomic_block:
        return _settle(_write(writer, [request])[0])
    combiner = _combiner(writer.name)
    pending = _Pending(request)
    with combiner.lock:
        combiner.waiting.append(pending)
        if not combiner.leading:
            combiner.leading = pending.lead = True
    if not pending.lead:
        pending.wake.wait()
    if not pending.done:  # this request leads the next block
        _lead(writer, combiner)
    return _settle(pending.outcome)


def _lead(writer: BlockWriter, combiner: _Combiner) -> None:
    with combiner.lock:
        block = combiner.waiting[:BLOCK_MAX]
        del combiner.waiting[:BLOCK_MAX]
    _hooks.pending = []
    try:
        outcomes = _committed(writer, [p.request for p in block])
        hooks = _hooks.pending
    except BaseException as exc:  # noqa: BLE001 - handed to every request of the block
        outcomes, hooks = [exc] * len(block), []
    finally:
        _hooks.pending = None
    # The first of those who came meanwhile leads the next block: this one's locks are free
    # (its commit did not wait for the WAL flush), and its flush below overlaps the next.
    with combiner.lock:
        if combiner.waiting:
            combiner.waiting[0].lead = True
            combiner.waiting[0].wake.set()
        else:
            combiner.leading = False
    try:
        _durable()
    except BaseException as exc:  # noqa: BLE001 - unknown whether it is durable: nobody is told
        outcomes = [o if isinstance(o, BaseException) else exc for o in outcomes]
        hooks = []
    for pending, outcome in zip(block, outcomes, strict=True):
        pending.outcome, pending.done = outcome, True
        pending.wake.set()
    for hook in hooks:  # after the shoppers are answered: a slow broker delays nobody
        try:
            hook()
        except Exception:
            logger.exception("after an intake block of %s", writer.name)


def _committed(writer: BlockWriter, requests: list[Any]) -> list[Any]:
    """The block in one transaction; when the database refuses it, each request alone."""
    try:
        with transaction.atomic():
            return _write(writer, requests)
    except IntegrityError as exc:
        if len(requests) == 1:
            raise
        logger.warning("intake block of %s refused (%s): one by one", len(requests), exc)
    outcomes = []
    _hooks.pending = []  # those of the refused block were rolled back with it
    for request in requests:
        hooks = len(_hooks.pending)
        try:
            with transaction.atomic():
                outcomes.extend(_write(writer, [request]))
        except IntegrityError as exc:
            del _hooks.pending[hooks:]
            outcomes.append(exc)
    return outcomes


def _durable() -> None:
    """Return once everything this connection committed is on disk: a transaction of its
    own that writes a WAL record and commits synchronously flushes the WAL up to its commit,
    which comes after the blocks' commits (one WAL, written in order). Several processes'
    flushes at the same instant are one fsync (PostgreSQL's group commit)."""
    connection.ensure_connection()  # the raw cursor, prepared: Django's wrapper costs more
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute("SELECT pg_logical_emit_message(true, 'fanhub-intake', '')", prepare=True)


def _write(writer: BlockWriter, requests: list[Any]) -> list[Any]:
    outcomes = writer.write_block(requests)
    if len(outcomes) != len(requests):
        raise RuntimeError(f"{writer.name}: {len(outcomes)} outcomes for {len(requests)}")
    return outcomes


def _settle(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


class _Hooks(threading.local):
    pending: list[Callable[[], object]] | None = None


_hooks = _Hooks()


def intake_in_engine_block() -> bool:
    """Whether the writer runs in an engine block: its COMMIT need not wait for the WAL flush
    (the engine flushes before it answers anyone), and `intake_execute_and_commit` sends it
    with the block's last statement. False when the request is written in a caller's
    transaction: its commit is the caller's."""
    return _hooks.pending is not None


def intake_execute_and_commit(cursor: Any, sql: str, params: Any) -> list[tuple]:
    """The block's last statement (prepared: planned once a connection), and its rows. In an
    engine block, sent with the BEGIN before it and the COMMIT after it in one round trip
    (pipeline mode), so the locks are not held while a client reads the statement's answer;
    the transaction is then over (Django's COMMIT at the end of the block finds nothing to
    do), so nothing may follow it but reads, or a transaction of the writer's own after a
    rollback. Raises psycopg's errors (the caller turns them into Django's)."""
    if _hooks.pending is None:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()
    raw = cursor.connection
    with raw.pipeline():
        cursor.execute(sql, params, prepare=True)
        psycopg.Cursor(raw).execute("COMMIT")
    return cursor.fetchall()


def intake_after_commit(func: Callable[[], object]) -> None:
    """Work for after the block's commit (enqueue receipts), run once its shoppers are
    answered; never turns a committed block into an error for them: a failure is logged
    and a sweep redoes it. Inside a caller's transaction: on that one's commit."""
    if _hooks.pending is not None:
        _hooks.pending.append(func)
    else:
        transaction.on_commit(func, robust=True)
