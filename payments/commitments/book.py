"""The commitments engine: one lifecycle for every conditional sale (pre-order batches,
crowdfunding campaigns, group-buy teams). How a feature plugs in:

1. Models. The commitment (Reservation, Pledge) inherits
   `payments.commitments.models.CommitmentFields` (user, status, saved card, request key,
   deposit totals, amount charged, the fix-payment window) and adds a foreign key to its
   parent (PreorderBatch, Campaign) and what the shopper chose. Its event log inherits
   `StateEvent`. The parent's status uses `ParentStatus` values (draft ... confirmed,
   cancelled), or the feature's own with the same roles (see `CommitmentBook.statuses`).

2. State machines. Declare one `payments.commitments.machine.StateMachine` for the parent
   and one for the commitment (their tables are `PARENT_TRANSITIONS` and
   `COMMITMENT_TRANSITIONS` unless the feature narrows them), each with its event model.
   Every move goes through `machine.transition`; the admin's buttons read
   `machine.allowed_actions(obj)`.

3. The book. Subclass `CommitmentBook` below and set the class attributes (kind, models,
   machines, reference prefixes, email template folder). Override only the decisions:
   `threshold_met` (is the minimum reached at the close?), `amount_expression` (what each
   commitment owes, as SQL over its row), `charged_become` (what charged commitments
   become: pre-orders make paid orders), `on_close`/`on_finish`/`on_release` (what else
   happens then: fix the final price, award points, give units back) and the texts
   (`text(name, ...)`: subjects and notices). Register it once, in AppConfig.ready():
   `commitment_book_register(MyBook())`. The registry derives the book's advisory-lock
   namespace from its kind, refuses a kind registered twice or a namespace already taken,
   registers the book with the settlement (payments.settlement) and routes the payment
   listener for its two reference prefixes (charges and deposits) to the engine.

4. Then the engine does the rest (payments.commitments.lifecycle, .deposits, .pages):
   close and cancel, the settlement's chunks, deposits and their refunds, the fix-payment
   window with its reminders and release, pay again and 3-D Secure, finish, and the emails
   (templates `<email_templates>/payment_failed.{txt,html}`), with one template set for
   the payment pages (templates/payments/).

A fake book in tests/commitments_fake/ runs the whole lifecycle
(tests/test_commitments_contract.py): the smallest example of a feature on the engine."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Max, Min, Q
from django.urls import reverse
from django.utils import timezone

from payments.commitments.machine import StateMachine
from payments.commitments.models import CommitmentStatus, ParentStatus
from payments.pacing import ProviderPacer
from payments.settlement import (
    LOCK_NAMESPACE_MAX,
    ChargeRecord,
    Commitment,
    Mode,
    settlement_book_register,
)


class CommitmentBook:
    """A feature's description of its commitments; see the module docstring. The methods
    that are not decisions or texts are the engine's, shared by every book."""

    kind: str = ""  # "preorder", "pledge": names chunk tasks, derives the lock namespace
    lock_namespace: int = 0  # set by commitment_book_register from the kind
    model: type[models.Model]  # the commitment
    parent_model: type[models.Model]
    parent_field: str = ""  # "batch_id": the commitment's column naming its parent
    commitments_name: str = ""  # "reservations": the parent's reverse accessor
    open_statuses: tuple[str, str] = (CommitmentStatus.HELD.value, CommitmentStatus.CHARGING.value)
    machine: StateMachine  # the commitment's
    parent_machine: StateMachine
    # Payment references "<charge_prefix>:<id>" and idempotency keys "<charge_prefix>-<id>".
    charge_prefix: str = ""
    deposit_prefix: str = ""
    metadata_name: str = "commitment"  # names the commitment's id in the provider's metadata
    email_templates: str = ""  # "preorders/email": where payment_failed.{txt,html} live
    notification_kind: str = ""
    parent_related: tuple[str, ...] = ()  # select_related when the parent is locked
    related_for_lock: tuple[str, ...] = ()  # ... when a commitment is locked
    related_for_pay: tuple[str, ...] = ("saved_card", "user")
    error: type[Exception] = ValidationError  # what the shopper is told, with the message
    # The feature's words (see `text`): format strings over commitment, parent and context.
    texts: dict[str, str] = {
        "payment_failed_subject": "Your commitment needs a payment",
        "reminder_subject": "Reminder: complete your payment",
        "released_title": "Your commitment was released",
        "released_body": "The payment was not completed in time.",
        "released_at_cancel_note": "Cancelled; nobody is charged",
        "grace_released_note": "Not paid within the grace period",
        "grace_refund_reason": "Released",
        "cannot_cancel": "This can no longer be cancelled.",
        "closed": "This is closed: commitments are no longer taken.",
        "no_payment_needed": "This does not need a payment.",
        "window_over": "The time to pay for this has run out.",
        "deposit_excess_reason": "Deposit paid for what is no longer held",
        "paid_again_message": "Thank you! Your payment went through.",
        "deposit_excess_note": "Deposit of {excess} paid after it was no longer needed; {done}",
    }
    # The shopper's pages of a commitment (URL names taking its pk): pay again, 3-D Secure.
    urls: dict[str, str] = {}
    # The parent's states by role, for a feature whose names differ (a campaign's
    # "successful" is a batch's "confirmed").
    statuses: dict[str, str] = {
        "draft": ParentStatus.DRAFT,
        "scheduled": ParentStatus.SCHEDULED,
        "fulfilled": ParentStatus.FULFILLED,
        "open": ParentStatus.OPEN,
        "settling": ParentStatus.SETTLING,
        "cancelling": ParentStatus.CANCELLING,
        "succeeded": ParentStatus.CONFIRMED,
        "failed": ParentStatus.CANCELLED,
    }

    # --- references and keys (the engine's)

    def reference(self, commitment_id: int) -> str:
        return f"{self.charge_prefix}:{commitment_id}"

    def charge_key(self, commitment_id: int) -> str:
        return f"{self.charge_prefix}-{commitment_id}"

    def deposit_reference(self, commitment_id: int) -> str:
        return f"{self.deposit_prefix}:{commitment_id}"

    def deposit_key(self, commitment_id: int) -> str:
        return f"{self.deposit_prefix}-{commitment_id}"

    def parent_of(self, commitment: models.Model) -> models.Model:
        return getattr(commitment, self.parent_field.removesuffix("_id"))

    def currency_of(self, parent: models.Model) -> str:
        return parent.currency

    # --- decisions (the feature's)

    def threshold_met(self, parent: models.Model) -> bool:
        """At the close: is the minimum reached, so that everyone is charged?"""
        raise NotImplementedError

    def amount_expression(self, parent: models.Model):
        """What each commitment owes at the close, as an expression over its row (for the
        set-based charging): e.g. quantity x the final price, less the deposit kept."""
        raise NotImplementedError

    def deposit_required(self, commitment: models.Model) -> Any:
        """The deposit the commitment needs now (0: none)."""
        return 0

    def deposit_short(self, commitment, *, parent, cover, actor, expired: bool) -> int:
        """Its deposit was refused (`expired` False: what is waiting for the bank still
        counts) or not paid in time: give back what `cover` does not pay for (both rows
        locked). Returns what was given back (0: it is covered)."""
        return 0

    def deposit_refundable(self, parent: models.Model) -> bool:
        """Is a commitment's deposit refunded when it is cancelled or released (a failed or
        cancelled parent always refunds)?"""
        return True

    def on_cancel(self, parent: models.Model) -> None:
        """The operator cancelled an open parent (its lock held): tidy up (a waitlist)."""

    def on_commit(self, commitment: models.Model) -> None:
        """A commitment was made (the parent's lock held): counters, a receipt."""

    def on_close(self, parent: models.Model, *, succeeded: bool) -> str:
        """Inside the close, under the parent's lock, before its move: fix what the close
        decides (a final price) and tidy up (a waitlist). Returns the event's note."""
        return ""

    def charged_become(self, parent: models.Model, commitments: list[models.Model]) -> None:
        """Inside the transaction that records them charged: what they become (orders)."""

    def on_paid_again(self, commitment: models.Model, payment) -> None:
        """A commitment paid in the fix-payment window: its receipt, points and the like."""

    def on_release(self, commitment: models.Model, *, counted: bool) -> None:
        """A commitment released or cancelled (its lock held): give back what it counted
        for (`counted`: it was still counted toward the parent)."""

    def on_finish(self, parent: models.Model, *, succeeded: bool) -> tuple[str, str]:
        """The parent reached its final state: what else happens (points, a badge). Returns
        the notice's (title, body) for everyone who committed."""
        return "", ""

    def finish_note(self, parent: models.Model, *, succeeded: bool) -> str:
        return "Settled" if succeeded else "All commitments released"

    def is_due(self, parent: models.Model) -> bool:
        """Is an open parent due to close (its window over, or full)?"""
        return parent.closes_at <= timezone.now()

    def due_parents(self):
        """The open parents due to close (a queryset: the beat's sweep)."""
        return self.parent_model.objects.filter(
            status=self.statuses["open"], closes_at__lte=timezone.now()
        )

    def check_ready(self, parent: models.Model) -> None:
        """Raise ValidationError (listing everything) unless it may take commitments."""

    def on_refund(self, commitment: models.Model, payment) -> None:
        """A refund reached one of its payments (its order's refund, say): keep books."""

    def text(self, name: str, commitment: models.Model | None = None, **context) -> str:
        """The feature's words, from `texts` (names listed there)."""
        if commitment is not None:
            context.setdefault("parent", self.parent_of(commitment))
        return self.texts[name].format(commitment=commitment, **context)

    def email_context(self, commitment: models.Model) -> dict:
        return {"commitment": commitment, "parent": self.parent_of(commitment)}

    def pay_url(self, commitment: models.Model) -> str:
        return reverse(self.urls["pay"], args=[commitment.pk])

    def authenticate_url(self, commitment: models.Model) -> str:
        return reverse(self.urls["authenticate"], args=[commitment.pk])

    # --- receipts (the feature's words; nothing by default)

    def charged_receipts(self, commitments: list[models.Model], payments: dict) -> None:
        """One receipt per charged commitment (in bulk for a chunk)."""

    def deposit_paid_receipt(self, commitment: models.Model, payment, *, first: bool) -> None:
        """A deposit arrived (`first`: the one that completes committing)."""

    def deposit_refunded_receipt(self, commitment: models.Model, *, refunded, pending, reason):
        """A deposit refund was asked for: what came back and what is still pending."""

    # --- what the settlement asks (payments.settlement.CommitmentBook): the engine's

    def mode(self, *, parent_id: int) -> Mode | None:
        status = (
            self.parent_model.objects.filter(pk=parent_id)
            .values_list(self.parent_machine.status_field, flat=True)
            .first()
        )
        return {self.statuses["settling"]: "charge", self.statuses["cancelling"]: "release"}.get(
            status
        )

    def id_bounds(self, *, parent_id: int) -> tuple[int, int] | None:
        bounds = self.model.objects.filter(
            **{self.parent_field: parent_id, "status__in": self.open_statuses}
        ).aggregate(first=Min("id"), last=Max("id"))
        if bounds["first"] is None:
            return None
        return bounds["first"], bounds["last"]

    def charging_begin(self, *, parent_id: int, ids: Sequence[int]) -> list[Commitment]:
        """Generic: held -> charging with `amount_expression`; a book may do it faster."""
        parent = self.parent_model.objects.get(pk=parent_id)
        started = timezone.now()
        self.model.objects.filter(pk__in=ids, status=CommitmentStatus.HELD).update(
            status=CommitmentStatus.CHARGING,
            charging_at=started,
            amount_charged=self.amount_expression(parent),
            updated_at=started,
        )
        rows = self.model.objects.filter(pk__in=ids, status=CommitmentStatus.CHARGING).values_list(
            "pk", "user_id", "saved_card_id", "amount_charged", "charging_at"
        )
        return [
            Commitment(
                id=pk,
                user_id=user_id,
                saved_card_id=card_id,
                amount=amount,
                currency=self.currency_of(parent),
                reference=self.reference(pk),
                idempotency_key=self.charge_key(pk),
                resumed=charging_at < started,
            )
            for pk, user_id, card_id, amount, charging_at in rows
        ]

    def charging_record(self, *, parent_id: int, records: Sequence[ChargeRecord]) -> None:
        from payments.commitments.lifecycle import commitments_record_charges

        commitments_record_charges(book=self, parent_id=parent_id, records=records)

    def release(self, *, parent_id: int, ids: Sequence[int], pacer: ProviderPacer) -> None:
        from payments.commitments.lifecycle import commitments_release_at_cancel

        commitments_release_at_cancel(book=self, parent_id=parent_id, ids=ids, pacer=pacer)

    def finish_if_done(self, *, parent_id: int) -> bool:
        from payments.commitments.lifecycle import parent_finish_if_done

        return parent_finish_if_done(book=self, parent_id=parent_id)

    def active_parent_ids(self) -> list[int]:
        return list(
            self.parent_model.objects.filter(
                status__in=[self.statuses["settling"], self.statuses["cancelling"]]
            ).values_list("pk", flat=True)
        )

    def stalled_parent_ids(self, *, quiet_for: timedelta) -> list[int]:
        quiet_since = timezone.now() - quiet_for
        return list(
            self.parent_model.objects.filter(
                status__in=[self.statuses["settling"], self.statuses["cancelling"]],
                closed_at__lte=quiet_since,
            )
            .annotate(last_move=Max(f"{self.commitments_name}__updated_at"))
            .filter(Q(last_move__lte=quiet_since) | Q(last_move__isnull=True))
            .values_list("pk", flat=True)
        )

    def grace_period(self) -> timedelta:
        return timedelta(days=settings.PREORDER_GRACE_DAYS)

    def reminder_every(self) -> timedelta:
        return timedelta(hours=settings.PREORDER_REMINDER_HOURS)


# --- the registry ---------------------------------------------------------------------------

_books: dict[str, CommitmentBook] = {}


def lock_namespace_for(kind: str) -> int:
    """The advisory-lock namespace of a book, derived from its kind (1..LOCK_NAMESPACE_MAX)."""
    return zlib.crc32(kind.encode()) % LOCK_NAMESPACE_MAX + 1


def commitment_book_register(book: CommitmentBook) -> CommitmentBook:
    """Register a feature's book (once, in its AppConfig.ready). Refuses a second book of the
    same kind, a lock namespace another book's kind already derives, and reference prefixes
    taken by another book. Wires the settlement and the payment listeners."""
    from payments.commitments.deposits import commitment_deposit_changed
    from payments.commitments.lifecycle import commitment_payment_changed
    from payments.listeners import payment_listener_register

    if not book.kind:
        raise ValueError("a commitment book needs a kind")
    if book.kind in _books:
        raise ValueError(f"a commitment book of kind {book.kind!r} is registered already")
    namespace = lock_namespace_for(book.kind)
    prefixes = {book.charge_prefix, book.deposit_prefix}
    if len(prefixes) != 2 or "" in prefixes:
        raise ValueError(f"book {book.kind!r} needs two distinct reference prefixes")
    for other in _books.values():
        if other.lock_namespace == namespace:
            raise ValueError(
                f"books {other.kind!r} and {book.kind!r} derive the same lock namespace "
                f"{namespace}: rename one kind"
            )
        if prefixes & {other.charge_prefix, other.deposit_prefix}:
            raise ValueError(f"books {other.kind!r} and {book.kind!r} share a reference prefix")
    book.lock_namespace = namespace
    settlement_book_register(book)
    _books[book.kind] = book
    payment_listener_register(
        book.charge_prefix,
        lambda *, payment, book=book: commitment_payment_changed(book=book, payment=payment),
    )
    payment_listener_register(
        book.deposit_prefix,
        lambda *, payment, book=book: commitment_deposit_changed(book=book, payment=payment),
    )
    return book


def commitment_book(kind: str) -> CommitmentBook:
    return _books[kind]


def commitment_books() -> list[CommitmentBook]:
    return list(_books.values())
