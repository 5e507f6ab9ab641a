"""The lifecycle every book shares, after intake: close and cancel the parent, record the
settlement's charges, release at a cancel, the fix-payment window (reminders, release),
pay again and its listener, and the finish. Each takes the feature's `book` and asks it
only for its decisions and words (payments.commitments.book).

Locks: the parent's row, then a commitment's; the provider is never called under either
(deposit refunds at a release are the one exception the settlement paces, as before: the
commitment is locked so that a racing retry cannot pay it meanwhile)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from formatting.formats import money
from notifications.services import email_send_on_commit, notification_fan_out, notification_send
from payments.commitments.deposits import deposit_refund, deposit_refund_all
from payments.commitments.models import CommitmentStatus
from payments.models import Payment, PaymentStatus, SavedCard
from payments.pacing import ProviderPacer
from payments.providers.base import ChargeOutcome
from payments.services import card_delete, card_save, payment_charge
from payments.settlement import ChargeRecord, settlement_start

logger = logging.getLogger(__name__)


def _locked_parent(book, parent, *, skip_locked: bool = False):
    return (
        book.parent_model.objects.select_for_update(skip_locked=skip_locked)
        .select_related(*book.parent_related)
        .filter(pk=parent.pk)
        .first()
    )


def commitment_locked(*, book, commitment, user=None):
    """The commitment under its row lock (with what its pages and emails need); another
    user's is refused."""
    locked = (
        book.model.objects.select_for_update()
        .select_related(*book.related_for_lock)
        .get(pk=commitment.pk)
    )
    if user is not None and locked.user_id != user.pk:
        raise PermissionError("Not yours")
    return locked


# --- intake: the plain synchronous path (a hot book has its own, payments.commitments.intake)


def commitment_commit(*, book, parent, user, saved_card: SavedCard, request_key: str, **fields):
    """Commit `user` to `parent` with the card to charge at the close; a second submit of
    the same form (same `request_key`) returns the first commitment. The book's
    `on_commit(commitment)` runs under the parent's lock (counters, caps). A deposit, if the
    book asks for one, is the caller's to charge next (commitment_deposit_pay)."""
    request_key = request_key[:64]
    existing = book.model.objects.filter(user=user, request_key=request_key).first()
    if existing is not None:
        return existing
    if saved_card.user_id != user.pk or saved_card.deleted_at:
        raise book.error("Choose one of your cards.")
    commitment = book.model(
        **{book.parent_field: parent.pk},
        user=user,
        saved_card=saved_card,
        request_key=request_key,
        **fields,
    )
    _check_fields(commitment)
    with transaction.atomic():
        parent = _locked_parent(book, parent)
        existing = book.model.objects.filter(user=user, request_key=request_key).first()
        if existing is not None:  # a twin that waited for the lock finds the first one
            return existing
        if parent.status != book.statuses["open"] or book.is_due(parent):
            raise book.error(book.text("closed", parent=parent))
        commitment.save()
        book.machine.event(
            commitment, from_status="", to=commitment.status, actor=user, note="Committed"
        ).save()
        book.on_commit(commitment)
    return commitment


def _check_fields(commitment) -> None:
    """full_clean's field checks, before the parent's lock and without queries: the related
    rows were passed in (no existence lookups), and the constraints (one per backer,
    quantities, the request key) are the database's, raised by the save as IntegrityError.
    Under the lock every query makes each other shopper of the parent wait."""
    related = [f.name for f in commitment._meta.concrete_fields if f.is_relation]
    commitment.clean_fields(exclude=["request_key", *related])
    commitment.clean()


# --- the parent: close, cancel, finish ----------------------------------------------------------


@transaction.atomic
def parent_publish(*, book, parent, actor):
    """Draft -> scheduled, or straight to open when its window has started; refused (the
    book's check_ready says what is missing) until it is ready to take commitments."""
    parent = _locked_parent(book, parent)
    book.check_ready(parent)
    started = parent.opens_at <= timezone.now()
    return book.parent_machine.transition(
        parent, to=book.statuses["open" if started else "scheduled"], actor=actor, note="Published"
    )


def parents_open_due(*, book) -> int:
    """Beat: scheduled parents whose window has started open (or go back to draft, saying
    why, when they are no longer ready: a product archived meanwhile)."""
    opened = 0
    due = book.parent_model.objects.filter(
        status=book.statuses["scheduled"], opens_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            parent = (
                book.parent_model.objects.select_for_update(skip_locked=True)
                .select_related(*book.parent_related)
                .filter(pk=pk)
                .first()
            )
            if parent is None or parent.status != book.statuses["scheduled"]:
                continue
            try:
                book.check_ready(parent)
            except ValidationError as exc:
                book.parent_machine.transition(
                    parent, to=book.statuses["draft"], note="Not opened: " + " ".join(exc.messages)
                )
                continue
            book.parent_machine.transition(parent, to=book.statuses["open"], note="Window opened")
            opened += 1
    return opened


def parents_close_due(*, book) -> int:
    """Beat (and the developers' command): close every open parent that is due. Those
    another worker is closing are skipped (skip_locked), never waited for."""
    return sum(parent_close(book=book, parent=parent) for parent in book.due_parents().only("pk"))


@transaction.atomic
def parent_fulfil(*, book, parent, actor):
    """What was settled has been delivered: the parent is done."""
    return book.parent_machine.transition(
        _locked_parent(book, parent), to=book.statuses["fulfilled"], actor=actor, note="Fulfilled"
    )


@transaction.atomic
def parent_close(*, book, parent, actor=None, force: bool = False) -> bool:
    """Close an open parent that is due (or any open one when `force`, the operator's "close
    now"): the book fixes what the close decides, the threshold decides charge or release,
    and the settlement starts on commit. False when there was nothing to do (not open, not
    due, or another worker holds it)."""
    parent = _locked_parent(book, parent, skip_locked=True)
    if (
        parent is None
        or parent.status != book.statuses["open"]
        or not (force or book.is_due(parent))
    ):
        return False
    parent.closed_at = timezone.now()
    parent.save(update_fields=["closed_at"])
    succeeded = book.threshold_met(parent)
    note = book.on_close(parent, succeeded=succeeded)
    book.parent_machine.transition(
        parent,
        to=book.statuses["settling" if succeeded else "cancelling"],
        actor=actor,
        note=note,
    )
    settlement_start(kind=book.kind, parent_id=parent.pk)
    return True


@transaction.atomic
def parent_cancel(*, book, parent, actor, reason: str = ""):
    """The operator calls it off: nobody is charged, deposits come back. An open parent is
    released by the settlement (`cancelling`); one nobody could commit to yet is cancelled."""
    parent = _locked_parent(book, parent)
    note = reason or "Cancelled"
    if parent.status == book.statuses["open"]:
        parent.closed_at = timezone.now()
        parent.save(update_fields=["closed_at"])
        book.parent_machine.transition(
            parent, to=book.statuses["cancelling"], actor=actor, note=note
        )
        book.on_cancel(parent)
        settlement_start(kind=book.kind, parent_id=parent.pk)
        return parent
    return book.parent_machine.transition(
        parent, to=book.statuses["failed"], actor=actor, note=note
    )


def parent_finish_if_done(*, book, parent_id: int) -> bool:
    """When no commitment is left open: the parent's final state, the book's finish (orders
    made already, points, a badge), and a notice to everyone who committed. Every chunk
    asks when it is done: while commitments are open (other chunks'), it answers without
    locking the parent (a lock is a write, and a commit waiting for the disk). The chunk
    that records the last ones asks after its commit, so it sees them all closed."""
    open_commitments = book.model.objects.filter(
        **{book.parent_field: parent_id, "status__in": book.open_statuses}
    )
    if open_commitments.exists():
        return False
    return _parent_finish(book=book, parent_id=parent_id)


@transaction.atomic
def _parent_finish(*, book, parent_id: int) -> bool:
    parent = (
        book.parent_model.objects.select_for_update()
        .select_related(*book.parent_related)
        .filter(pk=parent_id)
        .first()
    )
    if parent is None or parent.status not in (
        book.statuses["settling"],
        book.statuses["cancelling"],
    ):
        return False
    commitments = book.model.objects.filter(**{book.parent_field: parent.pk})
    if commitments.filter(status__in=book.open_statuses).exists():
        return False
    succeeded = parent.status == book.statuses["settling"]
    if succeeded:
        parent.settled_at = timezone.now()
        parent.save(update_fields=["settled_at"])
    book.parent_machine.transition(
        parent,
        to=book.statuses["succeeded" if succeeded else "failed"],
        note=book.finish_note(parent, succeeded=succeeded),
    )
    title, body = book.on_finish(parent, succeeded=succeeded)
    if title:
        notification_fan_out(
            recipient_ids=commitments.values_list("user_id", flat=True).distinct(),
            kind=book.notification_kind,
            title=title,
            body=body,
            url=parent.get_absolute_url(),
        )
    return True


# --- the settlement's moves ----------------------------------------------------------------------


def commitments_record_charges(*, book, parent_id: int, records: Sequence[ChargeRecord]) -> None:
    """Inside the engine's transaction: each charging commitment moves by its charge's
    outcome (charged; payment failed, with the fix-payment window; back to held after a
    provider error), its event logged; then what charged ones become, and the emails. The
    generic, row-by-row form; a hot book (pre-orders) records a chunk set-based."""
    by_id = {record.commitment.id: record for record in records}
    parent = book.parent_model.objects.select_related(*book.parent_related).get(pk=parent_id)
    rows = list(
        book.model.objects.select_for_update(of=("self",))
        .filter(pk__in=by_id, status=CommitmentStatus.CHARGING)
        .select_related("user")
        .order_by("pk")
    )
    now = timezone.now()
    grace = now + book.grace_period()
    paid, failed, events = [], [], []
    for commitment in rows:
        setattr(commitment, book.parent_field.removesuffix("_id"), parent)
        record = by_id[commitment.pk]
        if record.outcome == ChargeOutcome.SUCCEEDED:
            commitment.status = CommitmentStatus.CHARGED
            note = f"Charged {money(record.payment.amount, record.payment.currency)}"
            paid.append(commitment)
        elif record.outcome == ChargeOutcome.ERROR:
            commitment.status = CommitmentStatus.HELD
            commitment.save(update_fields=["status", "updated_at"])
            continue
        else:
            commitment.status = CommitmentStatus.PAYMENT_FAILED
            commitment.failure_message = (
                record.payment.failure_message or "Your bank asks you to confirm this payment."
            )[:300]
            commitment.grace_until, commitment.reminded_at = grace, now
            note = f"Charge failed: {commitment.failure_message}"
            failed.append(commitment)
        commitment.save(
            update_fields=["status", "failure_message", "grace_until", "reminded_at", "updated_at"]
        )
        # `charging` is the engine's step, not shown: the event reads held -> outcome.
        events.append(
            book.machine.event(
                commitment, from_status=CommitmentStatus.HELD, to=commitment.status, note=note
            )
        )
    book.machine.event_model.objects.bulk_create(events)
    if paid:
        book.charged_become(parent, paid)
        book.charged_receipts(paid, {c.pk: by_id[c.pk].payment for c in paid})
    for commitment in failed:
        commitment_payment_failed_email(book=book, commitment=commitment)


def commitments_release_at_cancel(
    *, book, parent_id: int, ids: Sequence[int], pacer: ProviderPacer
) -> None:
    """The parent failed or was cancelled: each held commitment is released, its deposits
    refunded (paced toward the provider)."""
    for pk in ids:
        with transaction.atomic():
            commitment = (
                book.model.objects.select_for_update()
                .filter(pk=pk, status=CommitmentStatus.HELD)
                .first()
            )
            if commitment is None:
                continue
            note = book.text("released_at_cancel_note", commitment)
            if commitment.deposit_paid > commitment.deposit_refunded:
                pacer.take()
                done = deposit_refund_all(book=book, commitment=commitment, reason=note)
                note += f"; {done.note}" if done.note else ""
            book.machine.transition(commitment, to=CommitmentStatus.RELEASED, note=note)


# --- before the close: the shopper cancels -----------------------------------------------------


@transaction.atomic
def commitment_cancel(*, book, commitment, user, reason: str):
    """Before the close. The deposit comes back if the book's policy says so (asked of the
    provider before the parent's row is locked, in on_release); what it held is given back."""
    commitment = commitment_locked(book=book, commitment=commitment, user=user)
    parent = book.parent_of(commitment)
    if commitment.status != CommitmentStatus.HELD or parent.status != book.statuses["open"]:
        raise book.error(book.text("cannot_cancel", commitment))
    note = reason
    if book.deposit_refundable(parent):
        owed = commitment.deposit_paid - commitment.deposit_refunded
        if owed > 0:
            done = deposit_refund(book=book, commitment=commitment, amount=owed, reason=reason)
            note = f"{reason}; {done.note}" if done.note else reason
    commitment.deposit_due_at = None
    book.machine.transition(
        commitment, to=CommitmentStatus.CANCELLED, actor=user, note=note, fields=["deposit_due_at"]
    )
    book.on_release(commitment, counted=True)
    return commitment


# --- after a failed charge: the fix-payment window ---------------------------------------------


def commitments_grace_sweep(*, book, limit: int = 500) -> tuple[int, int]:
    """Beat: remind those whose charge failed every `book.reminder_every()`; release them
    when the window ends (what they held stops counting; a refundable deposit comes back).
    Returns (reminded, released)."""
    now = timezone.now()
    failed = book.model.objects.filter(status=CommitmentStatus.PAYMENT_FAILED)
    released = 0
    for pk in list(failed.filter(grace_until__lte=now).values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            commitment = (
                book.model.objects.select_for_update()
                .select_related(*book.related_for_lock)
                .get(pk=pk)
            )
            if commitment.status != CommitmentStatus.PAYMENT_FAILED:
                continue
            note = book.text("grace_released_note", commitment)
            if book.deposit_refundable(book.parent_of(commitment)):
                # Before the parent row is touched (on_release): no parent lock over the call.
                done = deposit_refund(
                    book=book,
                    commitment=commitment,
                    amount=commitment.deposit_paid - commitment.deposit_refunded,
                    reason=book.text("grace_refund_reason", commitment),
                )
                note = f"{note}; {done.note}" if done.note else note
            book.machine.transition(commitment, to=CommitmentStatus.RELEASED, note=note)
            book.on_release(commitment, counted=True)
            notification_send(
                recipient_id=commitment.user_id,
                kind=book.notification_kind,
                title=book.text("released_title", commitment),
                body=book.text("released_body", commitment),
                url=commitment.get_absolute_url(),
            )
            released += 1
    due = now - book.reminder_every()
    reminded = 0
    for commitment in failed.filter(grace_until__gt=now, reminded_at__lte=due).select_related(
        *book.related_for_lock, "user"
    )[:limit]:
        with transaction.atomic():
            if book.model.objects.filter(
                pk=commitment.pk, reminded_at__lte=due, status=CommitmentStatus.PAYMENT_FAILED
            ).update(reminded_at=now):
                commitment_payment_failed_email(book=book, commitment=commitment, reminder=True)
                reminded += 1
    return reminded, released


def commitment_payment_failed_email(*, book, commitment, reminder: bool = False) -> None:
    """The charge at the close failed (or a reminder in the window): a link to pay again."""
    subject = book.text("reminder_subject" if reminder else "payment_failed_subject", commitment)
    context = {
        **book.email_context(commitment),
        "reminder": reminder,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] {subject}",
        body=render_to_string(f"{book.email_templates}/payment_failed.txt", context),
        to=[commitment.user.email],
    )
    message.attach_alternative(
        render_to_string(f"{book.email_templates}/payment_failed.html", context), "text/html"
    )
    email_send_on_commit(message=message)


def commitment_payment_waiting(*, book, commitment) -> Payment | None:
    """The commitment's charge if it awaits the bank (3-D Secure) or is in flight."""
    payment = Payment.objects.filter(idempotency_key=book.charge_key(commitment.pk)).first()
    if payment is None:
        return None
    if payment.status == PaymentStatus.REQUIRES_ACTION or (
        payment.status == PaymentStatus.PENDING
        and payment.provider_key
        and not payment.failure_code
    ):
        return payment
    return None


def commitment_retry_pay(*, book, commitment, user, saved_card: SavedCard) -> Payment:
    """In the fix-payment window: pay with this card. While the bank still has to confirm
    an earlier attempt (3-D Secure), that attempt is returned as it is: the card is not
    switched under it. The provider is called with no lock held."""
    with transaction.atomic():
        commitment = commitment_locked(book=book, commitment=commitment, user=user)
        if commitment.status != CommitmentStatus.PAYMENT_FAILED:
            raise book.error(book.text("no_payment_needed", commitment))
        if commitment.grace_until and commitment.grace_until <= timezone.now():
            raise book.error(book.text("window_over", commitment))
        if saved_card.user_id != user.pk:
            raise book.error("Choose one of your cards.")
        waiting = commitment_payment_waiting(book=book, commitment=commitment)
        if waiting is not None:
            return waiting
        if commitment.saved_card_id != saved_card.pk:
            commitment.saved_card = saved_card
            commitment.save(update_fields=["saved_card", "updated_at"])
        parent = book.parent_of(commitment)
    return payment_charge(
        user=user,
        reference=book.reference(commitment.pk),
        amount=commitment.amount_charged,
        currency=book.currency_of(parent),
        saved_card=saved_card,
        idempotency_key=book.charge_key(commitment.pk),
        off_session=False,
        metadata={book.metadata_name: str(commitment.pk)},
    )


def commitment_pay_again(
    *, book, commitment, user, saved_card: SavedCard | None, card_input: dict | None
) -> Payment:
    """The pay-again form: a saved card, or one typed now (kept on the commitment when it
    pays it, forgotten when a twin submit or a waiting authentication means it was not
    used). Raises the book's error or CardError, changing nothing."""
    waiting = commitment_payment_waiting(book=book, commitment=commitment)
    if waiting is not None:
        return waiting
    card = saved_card or card_save(user=user, card=card_input or {})
    payment = None
    try:
        payment = commitment_retry_pay(book=book, commitment=commitment, user=user, saved_card=card)
        return payment
    finally:
        if saved_card is None and (payment is None or payment.saved_card_id != card.pk):
            card_delete(user=user, card=card, force=True)


def commitment_payment_changed(*, book, payment: Payment) -> None:
    """payments' listener for the book's charge references (a retry, a 3-D Secure
    completion, a webhook, a refund), inside the payment's transaction."""
    commitment = (
        book.model.objects.select_for_update()
        .select_related(*book.related_for_lock)
        .get(pk=int(payment.reference.split(":", 1)[1]))
    )
    if commitment.status == CommitmentStatus.CHARGING:
        return  # the settlement engine records this one itself
    if (
        payment.status == PaymentStatus.SUCCEEDED
        and commitment.status == CommitmentStatus.PAYMENT_FAILED
    ):
        book.machine.transition(
            commitment,
            to=CommitmentStatus.CHARGED,
            actor=commitment.user,
            note=f"Paid {money(payment.amount, payment.currency)} after a failed charge",
        )
        book.charged_become(book.parent_of(commitment), [commitment])
        book.on_paid_again(commitment, payment)
    elif (
        payment.status in (PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION)
        and commitment.status == CommitmentStatus.PAYMENT_FAILED
    ):
        commitment.failure_message = (payment.failure_message or "Needs authentication")[:300]
        commitment.save(update_fields=["failure_message", "updated_at"])
    elif payment.status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED):
        book.on_refund(commitment, payment)
