"""Every write of a pre-order batch, by name. What is the batch's own lives here: the ladder
and its readiness, taking a reservation (caps, per-customer limit), changing it, and the
waitlist. The lifecycle every conditional sale shares (publish, open, close, cancel, fulfil;
deposits; the fix-payment window; pay again; release and finish) is the commitments engine's
(payments.commitments), called with the batch's book (preorders.book); the functions below of
those names are one-line calls into it, kept for the views, the admin, tasks and tests.

Cap rule: a reservation is taken under the batch row lock, `reserved_units` grows by an F()
update, and a CheckConstraint (reserved + offered <= cap) stands behind it, so no race can
hold more units than the cap."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import ngettext

from accounts.models import User
from audit.services import audit_record
from catalog.models import ProductStatus, Variant
from notifications.services import email_send_on_commit
from orders.page_versions import orders_changed
from orders.services import (
    PAID_ORDERS_STEPS,
    order_numbers_draw,
    orders_ids_draw,
    paid_orders_params,
)
from payments.commitments import machine
from payments.commitments.deposits import (
    DepositCover,
    DepositRefund,
    commitment_deposit_pay,
    commitment_deposit_refused,
    commitments_deposit_expire,
    deposit_cover,
    deposit_refund,
)
from payments.commitments.deposits import deposit_refused as _deposit_refused
from payments.commitments.lifecycle import (
    commitment_cancel,
    commitment_locked,
    commitment_pay_again,
    commitment_payment_failed_email,
    commitment_retry_pay,
    commitments_grace_sweep,
    parent_cancel,
    parent_close,
    parent_fulfil,
    parent_publish,
    parents_close_due,
    parents_open_due,
)
from payments.models import Payment, PaymentStatus, SavedCard
from payments.services import (
    DECLINE_MESSAGE,
    card_delete,
    card_save,
)
from preorders.batch_version import batch_changed
from preorders.book import SETTLEMENT_KIND as SETTLEMENT_KIND  # the settlement kind
from preorders.book import preorder_book
from preorders.intake import SLOW_PATH, ReservationRequest, reservation_intake
from preorders.models import (
    BATCH_MACHINE,
    COUNTED_STATUSES,
    RESERVATION_MACHINE,
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    PriceTier,
    Reservation,
    ReservationStatus,
    VariantCap,
    WaitlistEntry,
    WaitlistStatus,
)
from preorders.receipts import (
    reservation_made_receipt,
)
from rowsql.arrays import array_cursor

logger = logging.getLogger(__name__)

SHIPPING_METHOD = "preorder"
ADDRESS_FIELDS = ("full_name", "line1", "line2", "city", "postal_code", "country", "phone")


class ReservationError(ValidationError):
    """Something the shopper can act on; the message says what."""


TransitionError = machine.TransitionError  # a move the state machine refuses


# --- the ladder --------------------------------------------------------------------------------


def ladder_price(*, tiers: list[PriceTier], units: int) -> Decimal | None:
    """The unit price everyone pays when `units` are reserved in total: the tier with the
    highest threshold reached (the first tier applies below its threshold too)."""
    ordered = sorted(tiers, key=lambda tier: tier.min_quantity)
    if not ordered:
        return None
    price = ordered[0].unit_price
    for tier in ordered:
        if units >= tier.min_quantity:
            price = tier.unit_price
    return price


def batch_check_ready(*, batch: PreorderBatch) -> None:
    """What must hold before shoppers may reserve (raises ValidationError listing it all)."""
    errors = []
    tiers = list(batch.tiers.all())
    if not tiers:
        errors.append("Add at least one price tier.")
    elif min(tier.min_quantity for tier in tiers) != 1:
        errors.append("The first price tier must start from 1 unit.")
    elif batch.deposit_per_unit >= min(tier.unit_price for tier in tiers):
        errors.append("The deposit per unit must be below the lowest unit price.")
    if batch.cap is not None and batch.cap < batch.min_quantity:
        errors.append("The cap cannot be below the minimum to confirm.")
    if batch.closes_at <= timezone.now():
        errors.append("The closing time has passed.")
    if batch.product.status != ProductStatus.ACTIVE:
        errors.append("The product must be active.")
    if errors:
        raise ValidationError(errors)


# --- the batch's life ----------------------------------------------------------------------------


def batch_transition(
    *, batch: PreorderBatch, to: str, actor: User | None, note: str = ""
) -> PreorderBatch:
    """The only way a batch changes state. Callers hold the batch row lock."""
    return BATCH_MACHINE.transition(batch, to=to, actor=actor, note=note)


def _locked(batch: PreorderBatch) -> PreorderBatch:
    return PreorderBatch.objects.select_for_update().select_related("product").get(pk=batch.pk)


def batch_publish(*, batch: PreorderBatch, actor: User | None) -> PreorderBatch:
    """Draft -> scheduled, or straight to open when the window has started; an operator's
    publishing is audited."""
    with transaction.atomic():
        before = batch.status
        batch = parent_publish(book=preorder_book(), parent=batch, actor=actor)
        if actor is not None and batch.status != before:
            _audit_batch(batch, actor, "batch.publish", before)
    return batch


def batches_open_due() -> int:
    """Beat: scheduled batches whose window has started become open."""
    return parents_open_due(book=preorder_book())


def batch_close(*, batch: PreorderBatch, actor: User | None = None, force: bool = False) -> bool:
    """Close an open batch that is due (or any open batch when `force`, the admin's "close
    now"): the engine fixes the final price (the book's ladder), decides, and starts the
    settlement. False when there was nothing to do (not open, not due, or being closed)."""
    with transaction.atomic():
        closed = parent_close(book=preorder_book(), parent=batch, actor=actor, force=force)
        if closed and actor is not None:  # the operator's "close now" (the beat's: events)
            batch.refresh_from_db(fields=["status", "reserved_units"])
            _audit_batch(batch, actor, "batch.close", BatchStatus.OPEN)
    return closed


def batches_close_due() -> int:
    """Beat, and `manage.py close_due_batches`: close every open batch that is due (its
    window over, or full when it closes when full)."""
    return parents_close_due(book=preorder_book())


def _audit_batch(batch: PreorderBatch, actor: User, action: str, before: str) -> None:
    audit_record(
        actor=actor,
        action=action,
        obj=batch,
        brand_id=batch.product.brand_id,
        before={"status": before},
        after={"status": batch.status, "reserved_units": batch.reserved_units},
    )


@transaction.atomic
def batch_cancel(*, batch: PreorderBatch, actor: User, reason: str = "") -> PreorderBatch:
    """The operator calls a batch off: nobody is charged, deposits are refunded."""
    before = _locked(batch).status
    batch = parent_cancel(book=preorder_book(), parent=batch, actor=actor, reason=reason)
    _audit_batch(batch, actor, "batch.cancel", before)
    return batch


def batch_fulfil(*, batch: PreorderBatch, actor: User) -> PreorderBatch:
    """Production delivered: the batch is done (its orders ship through the order flow)."""
    with transaction.atomic():
        before = batch.status
        batch = parent_fulfil(book=preorder_book(), parent=batch, actor=actor)
        if batch.status != before:
            _audit_batch(batch, actor, "batch.fulfil", before)
    return batch


# --- reservations -------------------------------------------------------------------------------


def reservation_transition(
    *, reservation: Reservation, to: str, actor: User | None, note: str = ""
) -> None:
    """A reservation's state change, checked and logged. Callers hold its row lock."""
    RESERVATION_MACHINE.transition(reservation, to=to, actor=actor, note=note)


# The refusals' messages, one place for both ways a reservation is decided: the checks below
# (deposits, changes, the waitlist) and the intake's function (preorders.intake).


def refused_not_open(opens_at) -> ReservationError:
    return ReservationError(
        f"Reservations open on {timezone.localtime(opens_at):%d %B %Y at %H:%M}."
    )


def refused_closed() -> ReservationError:
    return ReservationError("This batch is closed: reservations are no longer taken.")


def refused_too_few() -> ReservationError:
    return ReservationError("Reserve at least one unit.")


def refused_over_limit(limit: int, already: int) -> ReservationError:
    left = limit - already
    return ReservationError(
        f"At most {limit} units per customer"
        + (f"; you can add {left} more." if left > 0 else "; you have reserved them all.")
    )


def refused_not_an_option() -> ReservationError:
    return ReservationError("Choose one of this product's options.")


def refused_option_short(label: str, left: int) -> ReservationError:
    return ReservationError(
        f"Only {left} left in {label}."
        if left > 0
        else f"{label} is fully reserved: choose another option."
    )


def refused_batch_short(room: int) -> ReservationError:
    return ReservationError(
        "This batch is full. Join the waitlist and we'll offer you units if any are freed."
        if room == 0
        else f"Only {room} units are left in this batch."
    )


def _check_open(batch: PreorderBatch) -> None:
    now = timezone.now()
    if batch.status in (BatchStatus.DRAFT, BatchStatus.SCHEDULED) or (
        batch.status == BatchStatus.OPEN and now < batch.opens_at
    ):
        raise refused_not_open(batch.opens_at)
    if batch.status != BatchStatus.OPEN or now >= batch.closes_at:
        raise refused_closed()


def _user_units(batch: PreorderBatch, user: User, excluding: int | None = None) -> int:
    queryset = Reservation.objects.filter(batch=batch, user=user, status__in=COUNTED_STATUSES)
    if excluding:
        queryset = queryset.exclude(pk=excluding)
    return queryset.aggregate(total=Sum("quantity"))["total"] or 0


def _check_variant(batch: PreorderBatch, variant: Variant, quantity: int, excluding=None) -> None:
    if variant.product_id != batch.product_id or not variant.is_active:
        raise refused_not_an_option()
    cap = VariantCap.objects.filter(batch=batch, variant=variant).values_list("cap", flat=True)
    if cap:
        taken = (
            Reservation.objects.filter(batch=batch, variant=variant, status__in=COUNTED_STATUSES)
            .exclude(pk=excluding)
            .aggregate(total=Sum("quantity"))["total"]
            or 0
        )
        left = cap[0] - taken
        if quantity > left:
            raise refused_option_short(variant.option_label, left)


def _check_limit(batch: PreorderBatch, user: User, quantity: int, excluding=None) -> None:
    if quantity < 1:
        raise refused_too_few()
    already = _user_units(batch, user, excluding)
    if already + quantity > batch.per_customer_limit:
        raise refused_over_limit(batch.per_customer_limit, already)


def _check_room(batch: PreorderBatch, quantity: int, offer: WaitlistEntry | None) -> None:
    if batch.cap is None:
        return
    room = batch.available_units + (offer.quantity if offer else 0)
    if quantity > room:
        raise refused_batch_short(room)


def _deposit_window() -> timedelta:
    """How long a reservation may hold units whose deposit is not paid yet (3-D Secure)."""
    return timedelta(minutes=getattr(settings, "PREORDER_DEPOSIT_MINUTES", 10))


def reservation_create(
    *,
    batch: PreorderBatch,
    user: User,
    variant: Variant,
    quantity: int,
    saved_card: SavedCard,
    address: dict[str, str],
    request_key: str,
) -> Reservation:
    """Hold `quantity` units for the user. A second submit of the same form (same
    `request_key`) returns the first reservation. A batch's deposit is the caller's to charge
    (`reservation_deposit_pay`, or the whole form in `reservation_reserve`): until it is paid
    the deposit clock runs, and `reservations_deposit_expire` gives the units back."""
    return _reservation_create(
        batch=batch,
        user=user,
        variant=variant,
        quantity=quantity,
        saved_card=saved_card,
        address=address,
        request_key=request_key,
    )[0]


def _reservation_create(
    *,
    batch: PreorderBatch,
    user: User,
    variant: Variant,
    quantity: int,
    saved_card: SavedCard,
    address: dict[str, str],
    request_key: str,
) -> tuple[Reservation, bool]:
    """(the reservation, whether this call made it). Without a deposit: admitted and written
    in blocks by preorders.intake, answered once its block is committed; with one (or when
    the block finds the batch asks for one): one by one, under the batch row lock."""
    if batch.deposit_per_unit <= 0:
        outcome = reservation_intake(
            ReservationRequest(
                batch_id=batch.pk,
                user=user,
                variant=variant,
                quantity=quantity,
                saved_card=saved_card,
                address=address,
                request_key=request_key,
            )
        )
        if outcome is not SLOW_PATH:
            return outcome
    return _reservation_create_alone(
        batch=batch,
        user=user,
        variant=variant,
        quantity=quantity,
        saved_card=saved_card,
        address=address,
        request_key=request_key,
    )


@transaction.atomic
def _reservation_create_alone(
    *,
    batch: PreorderBatch,
    user: User,
    variant: Variant,
    quantity: int,
    saved_card: SavedCard,
    address: dict[str, str],
    request_key: str,
) -> tuple[Reservation, bool]:
    request_key = request_key[:64]
    existing = Reservation.objects.filter(user=user, request_key=request_key).first()
    if existing:
        return existing, False
    if saved_card.user_id != user.pk or saved_card.deleted_at:
        raise ReservationError("Choose one of your cards.")
    batch = _locked(batch)
    # Asked again under the batch lock, which every reservation is made under: a twin submit
    # that was waiting for the lock finds the reservation its twin has just committed.
    existing = Reservation.objects.filter(user=user, request_key=request_key).first()
    if existing:
        return existing, False
    _check_open(batch)
    _check_limit(batch, user, quantity)
    _check_variant(batch, variant, quantity)
    offer = (
        batch.waitlist.select_for_update()
        .filter(user=user, status=WaitlistStatus.OFFERED, offer_expires_at__gt=timezone.now())
        .first()
    )
    _check_room(batch, quantity, offer)
    reservation = Reservation(
        batch=batch,
        user=user,
        variant=variant,
        quantity=quantity,
        saved_card=saved_card,
        request_key=request_key,
        deposit_due_at=timezone.now() + _deposit_window() if batch.deposit_per_unit > 0 else None,
        **{
            ("ship_name" if key == "full_name" else f"ship_{key}"): address.get(key, "")
            for key in ADDRESS_FIELDS
        },
    )
    # The (user, request_key) constraint is the database's to enforce: validating it here
    # would turn a twin submit into a form error instead of the first reservation.
    reservation.full_clean(exclude=["request_key"])
    try:
        with transaction.atomic():
            reservation.save()
    except IntegrityError:  # the same key sent to another batch's form: the first one stands
        return Reservation.objects.get(user=user, request_key=request_key), False
    released_offer = 0
    if offer is not None:
        WaitlistEntry.objects.filter(pk=offer.pk).update(status=WaitlistStatus.CLAIMED)
        released_offer = offer.quantity
    batch_changed(batch.pk)  # the UPDATE skips save(): its page token
    PreorderBatch.objects.filter(pk=batch.pk).update(
        reserved_units=F("reserved_units") + quantity,
        offered_units=F("offered_units") - released_offer,
    )
    PreorderEvent.objects.create(
        batch=batch,
        reservation=reservation,
        actor=user,
        to_status=ReservationStatus.HELD,
        note=f"Reserved {quantity} × {variant.option_label or 'One size'}",
    )
    if batch.deposit_per_unit <= 0:  # with a deposit: the receipt waits for it to be paid
        reservation_made_receipt(reservation=reservation)
    if offer is not None and offer.quantity > quantity:
        batch.refresh_from_db()
        _waitlist_offer(batch)  # the part of the offer not taken goes to the next in line
    if batch.close_when_full and batch.cap is not None:
        from preorders.tasks import batch_close_if_due

        batch_close_if_due.delay_on_commit(batch.pk)
    return reservation, True


@dataclass(frozen=True)
class ReservationOutcome:
    """What a reserve or change did: the reservation, the deposit payment it asked for (which
    may wait for the shopper's bank), and whether this was a twin of an earlier submit."""

    reservation: Reservation
    deposit: Payment | None = None
    duplicate: bool = False

    @property
    def needs_authentication(self) -> bool:
        return self.deposit is not None and self.deposit.status == PaymentStatus.REQUIRES_ACTION


def _forget_card(card: SavedCard | None, user: User) -> None:
    """A card typed in for a reservation that was not made is not kept."""
    if card is not None:
        card_delete(user=user, card=card, force=True)


def reservation_reserve(
    *,
    batch: PreorderBatch,
    user: User,
    variant: Variant,
    quantity: int,
    address: dict[str, str],
    request_key: str,
    saved_card: SavedCard | None = None,
    card: dict | None = None,
) -> ReservationOutcome:
    """The reserve form: a saved card or the `card` typed in (saved now: it is charged at
    the close), the reservation, and its deposit. Undone when the deposit is declined (the
    reservation cancelled, the typed card forgotten). A twin submit of the same form lands on
    the first reservation and charges nothing. Raises ReservationError (and CardError for the
    typed card) with the shopper's message."""
    typed = None
    if saved_card is None:
        # A twin of a form that typed its card in must not save the card again. (With a
        # saved card the intake finds the twin itself, in the block's set-based read.)
        existing = Reservation.objects.filter(user=user, request_key=request_key[:64]).first()
        if existing is not None:
            return ReservationOutcome(reservation=existing, duplicate=True)
        saved_card = typed = card_save(user=user, card=card or {})
    try:
        reservation, made = _reservation_create(
            batch=batch,
            user=user,
            variant=variant,
            quantity=quantity,
            saved_card=saved_card,
            address=address,
            request_key=request_key,
        )
    except ValidationError:
        _forget_card(typed, user)
        raise
    if not made:
        _forget_card(typed if typed and typed.pk != reservation.saved_card_id else None, user)
        return ReservationOutcome(reservation=reservation, duplicate=True)
    if reservation.deposit_due_at is None:  # written by the intake: its batch asks no deposit
        return ReservationOutcome(reservation=reservation)
    deposit = reservation_deposit_pay(reservation=reservation)
    if not _deposit_refused(deposit):
        return ReservationOutcome(reservation=reservation, deposit=deposit)
    message = deposit.failure_message or DECLINE_MESSAGE
    try:
        reservation_cancel(reservation=reservation, user=user, reason="Deposit declined")
    except ValidationError as exc:  # the batch closed meanwhile: its charge settles it
        raise ReservationError(
            f"The deposit was not paid. {message} {' '.join(exc.messages)}"
        ) from exc
    _forget_card(typed, user)
    raise ReservationError(f"The deposit was not paid, so nothing was reserved. {message}")


# --- deposits -----------------------------------------------------------------------------------


# The deposit's rules are the engine's (payments.commitments.deposits); the book says how
# much a reservation needs (deposit per unit x its units).


def _deposit_cover(reservation: Reservation) -> DepositCover:
    return deposit_cover(book=preorder_book(), commitment=reservation)


def _deposit_refund(reservation: Reservation, amount: Decimal, reason: str) -> DepositRefund:
    return deposit_refund(
        book=preorder_book(), commitment=reservation, amount=amount, reason=reason
    )


def reservation_deposit_pay(*, reservation: Reservation) -> Payment | None:
    """Charge, on-session, what the deposit still lacks for the reservation's units (the
    engine's commitment_deposit_pay: exactly once, the provider called with no lock held)."""
    return commitment_deposit_pay(book=preorder_book(), commitment=reservation)


def _locked_reservation(reservation: Reservation, user: User | None) -> Reservation:
    return commitment_locked(book=preorder_book(), commitment=reservation, user=user)


def _units_give_back(
    *,
    reservation: Reservation,
    batch: PreorderBatch,
    keep: int,
    actor: User | None,
    note: str,
    to: str = ReservationStatus.RELEASED,
    variant: Variant | None = None,
) -> int:
    """Lower a held reservation to `keep` units (none: it becomes `to`), the units back to the
    batch and offered to the waitlist. Callers hold the reservation's then the batch's lock.
    Returns the units given back."""
    given = reservation.quantity - keep
    if given <= 0:
        return 0
    if keep <= 0:
        reservation.deposit_due_at = None
        reservation.save(update_fields=["deposit_due_at", "updated_at"])
        reservation_transition(reservation=reservation, to=to, actor=actor, note=note)
    else:
        reservation.quantity = keep
        reservation.variant = variant or reservation.variant
        reservation.save(update_fields=["quantity", "variant", "updated_at"])
        RESERVATION_MACHINE.note(reservation, actor=actor, note=note)
    batch_changed(batch.pk)  # the UPDATE skips save(): its page token
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=F("reserved_units") - given)
    batch.refresh_from_db()
    _waitlist_offer(batch)
    return given


def reservation_change(
    *, reservation: Reservation, user: User, variant: Variant, quantity: int
) -> ReservationOutcome:
    """Before the close: another quantity or option. Added units take their deposit now,
    on-session (a decline takes the change back); removed units' deposit comes back when the
    batch refunds deposits (a non-refundable deposit cannot be taken back by lowering the
    quantity). The provider is called after the batch lock is released."""
    before, delta = _reservation_change_units(
        reservation=reservation, user=user, variant=variant, quantity=quantity
    )
    batch = reservation.batch
    if delta < 0:
        with transaction.atomic():
            locked = _locked_reservation(reservation, user)
            excess = (locked.deposit_paid - locked.deposit_refunded) - (
                locked.batch.deposit_per_unit * locked.quantity
            )
            if excess > 0:
                done = _deposit_refund(locked, excess, "Quantity reduced")
                if done.note:
                    RESERVATION_MACHINE.note(
                        locked, actor=user, note=done.note[:1].upper() + done.note[1:]
                    )
    deposit = None
    if delta > 0 and batch.deposit_per_unit > 0:
        deposit = reservation_deposit_pay(reservation=reservation)
        if _deposit_refused(deposit):
            message = deposit.failure_message or DECLINE_MESSAGE
            with transaction.atomic():
                locked = _locked_reservation(reservation, user)
                batch = _locked(locked.batch)
                if locked.status == ReservationStatus.HELD and locked.quantity == quantity:
                    _units_give_back(
                        reservation=locked,
                        batch=batch,
                        keep=before[1],
                        variant=before[0],
                        actor=user,
                        note="Deposit for the added units declined: changed back",
                    )
            raise ReservationError(
                f"The deposit for the extra units was not paid, so nothing changed. {message}"
            )
    reservation.refresh_from_db()
    return ReservationOutcome(reservation=reservation, deposit=deposit)


@transaction.atomic
def _reservation_change_units(
    *, reservation: Reservation, user: User, variant: Variant, quantity: int
) -> tuple[tuple[Variant, int], int]:
    """The units part of a change, under the reservation's then the batch's lock. Returns
    ((variant, quantity) before, units added)."""
    reservation = _locked_reservation(reservation, user)
    batch = _locked(reservation.batch)
    _check_open(batch)
    if reservation.status != ReservationStatus.HELD:
        raise ReservationError("This reservation can no longer be changed.")
    _check_limit(batch, user, quantity, excluding=reservation.pk)
    _check_variant(batch, variant, quantity, excluding=reservation.pk)
    delta = quantity - reservation.quantity
    if delta > 0:
        _check_room(batch, delta, None)
    if delta < 0 and reservation.deposit_paid and not batch.deposit_refundable:
        raise ReservationError(
            "This batch's deposit is not refundable, so the quantity cannot be lowered."
        )
    before = (reservation.variant, reservation.quantity)
    old = f"{reservation.quantity} × {reservation.variant.option_label or 'One size'}"
    reservation.variant, reservation.quantity = variant, quantity
    reservation.save(update_fields=["variant", "quantity", "updated_at"])
    batch_changed(batch.pk)  # the UPDATE skips save(): its page token
    PreorderBatch.objects.filter(pk=batch.pk).update(reserved_units=F("reserved_units") + delta)
    RESERVATION_MACHINE.note(
        reservation,
        actor=user,
        note=f"Changed from {old} to {quantity} × {variant.option_label or 'One size'}",
    )
    if delta < 0:
        batch.refresh_from_db()
        _waitlist_offer(batch)
    return before, delta


def reservation_cancel(
    *, reservation: Reservation, user: User | None, reason: str = "Cancelled by the customer"
) -> Reservation:
    """Before the close. The deposit comes back if the batch's policy says so; the freed
    units are offered to the waitlist (the book's on_release)."""
    return commitment_cancel(book=preorder_book(), commitment=reservation, user=user, reason=reason)


def reservation_deposit_refused(*, reservation: Reservation, user: User) -> Reservation:
    """The shopper's bank refused the deposit (3-D Secure): the units no deposit covers (paid,
    or still waiting for the bank) are given back; a reservation with none left is cancelled."""
    return commitment_deposit_refused(book=preorder_book(), commitment=reservation, user=user)


def reservations_deposit_expire(*, limit: int = 200) -> int:
    """Beat, every minute: units whose deposit was not paid in time (a card left at 3-D
    Secure) go back to the batch (the engine's deposit clock). Returns the units."""
    return commitments_deposit_expire(book=preorder_book(), limit=limit)


def reservation_retry_pay(
    *, reservation: Reservation, user: User, saved_card: SavedCard
) -> Payment:
    """In the fix-payment window after a failed charge: pay with this card (the engine's)."""
    return commitment_retry_pay(
        book=preorder_book(), commitment=reservation, user=user, saved_card=saved_card
    )


def reservation_pay_again(
    *,
    reservation: Reservation,
    user: User,
    saved_card: SavedCard | None,
    card_input: dict | None,
) -> Payment:
    """The pay-again form: a saved card or one typed now (the engine's commitment_pay_again).
    Raises ReservationError or CardError, changing nothing."""
    return commitment_pay_again(
        book=preorder_book(),
        commitment=reservation,
        user=user,
        saved_card=saved_card,
        card_input=card_input,
    )


# A charged reservation's paid order, as the relations orders.services.PAID_ORDERS_STEPS
# reads (s and x), from a relation `charged` that the statement defines before them: rows of
# reservations (id, user_id, variant_id, unit_price, quantity, deposit_paid, ship_*) with the
# order_id and number drawn for each. One line, shipped to the reservation's address, paid
# through its charge, with its deposit (if any) a payment behind the order too: the order's
# refunds take from it after the charge. The one place that says what such an order is: the
# settlement makes a chunk's orders with it in the statement that records the charges
# (preorders.settlement), and reservations_make_orders those of a payment fixed later.
RESERVATION_ORDERS_SOURCE = """
s AS (
  SELECT c.order_id, c.number, c.user_id, u.email, c.variant_id, c.unit_price, c.quantity,
    c.ship_name, c.ship_line1, c.ship_line2, c.ship_city, c.ship_postal_code, c.ship_country,
    c.ship_phone, %(charge_prefix)s::text || c.id AS paid_through,
    left(%(note_prefix)s::text || c.unit_price::text || ' per unit'
      || CASE WHEN c.deposit_paid > 0 THEN ', ' || c.deposit_paid::text || ' paid as deposit'
      ELSE '' END, 300) AS note,
    c.id AS reservation_id, c.deposit_paid, row_number() OVER (ORDER BY c.id) AS n
  FROM charged AS c JOIN accounts_user AS u ON u.id = c.user_id
), x AS (
  SELECT order_id, paid_through AS reference, 0 AS position FROM s
  UNION ALL
  SELECT order_id, %(deposit_prefix)s::text || reservation_id, 1 FROM s WHERE deposit_paid > 0
)
"""


def reservation_orders_params(*, batch: PreorderBatch) -> dict:
    """RESERVATION_ORDERS_SOURCE's and PAID_ORDERS_STEPS' parameters for `batch`."""
    book = preorder_book()
    return {
        **paid_orders_params(
            variants=Variant.objects.filter(product_id=batch.product_id).select_related("product"),
            shipping_method=SHIPPING_METHOD,
        ),
        "charge_prefix": f"{book.charge_prefix}:",
        "deposit_prefix": f"{book.deposit_prefix}:",
        "note_prefix": f"Pre-order {batch.title}: confirmed at ",
    }


_MAKE_ORDERS_SQL = f"""
WITH given AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(orders)s::bigint[], %(numbers)s::varchar[])
    AS given(id, order_id, number)
), charged AS (
  SELECT r.id, r.user_id, r.variant_id, r.unit_price, r.quantity, r.deposit_paid, r.ship_name,
    r.ship_line1, r.ship_line2, r.ship_city, r.ship_postal_code, r.ship_country, r.ship_phone,
    given.order_id, given.number
  FROM preorders_reservation AS r JOIN given USING (id)
), {RESERVATION_ORDERS_SOURCE}, {PAID_ORDERS_STEPS}, linked AS (
  UPDATE preorders_reservation AS r SET order_id = so.order_id FROM so
  WHERE r.id = so.reservation_id
)
SELECT reservation_id, order_id, user_id FROM so ORDER BY n
"""  # noqa: S608 (names from code)


def reservations_make_orders(
    *, batch: PreorderBatch, reservation_ids: Sequence[int]
) -> dict[int, int]:
    """Paid orders for charged reservations without one (a payment in the fix-payment
    window), each reservation linked to its order. Returns reservation id -> order id. (The
    settlement makes a chunk's orders in its own record: preorders.settlement.)"""
    if not reservation_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM preorders_reservation"
            " WHERE id = ANY(%s::bigint[]) AND status = %s AND order_id IS NULL"
            " ORDER BY id FOR UPDATE",
            [list(reservation_ids), ReservationStatus.CHARGED.value],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return {}
    with array_cursor() as cursor:
        cursor.execute(
            _MAKE_ORDERS_SQL,
            {
                **reservation_orders_params(batch=batch),
                "ids": ids,
                "orders": orders_ids_draw(len(ids)),
                "numbers": order_numbers_draw(len(ids)),
            },
        )
        rows = cursor.fetchall()
    orders_changed(user_ids=[user_id for _, _, user_id in rows])
    return {reservation_id: order_id for reservation_id, order_id, _ in rows}


# --- waitlist ---------------------------------------------------------------------------------


@transaction.atomic
def waitlist_join(
    *, batch: PreorderBatch, user: User, variant: Variant, quantity: int
) -> WaitlistEntry:
    batch = _locked(batch)
    _check_open(batch)
    _check_limit(batch, user, quantity)
    if variant.product_id != batch.product_id or not variant.is_active:
        raise refused_not_an_option()
    if batch.available_units is None or batch.available_units >= quantity:
        raise ReservationError("There are units left: reserve them instead.")
    entry = batch.waitlist.filter(
        user=user, status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]
    ).first()
    if entry:
        raise ReservationError("You are already on the waitlist.")
    return WaitlistEntry.objects.create(batch=batch, user=user, variant=variant, quantity=quantity)


@transaction.atomic
def waitlist_leave(*, entry: WaitlistEntry, user: User) -> None:
    batch = _locked(entry.batch)
    entry = WaitlistEntry.objects.select_for_update().get(pk=entry.pk, user=user)
    if entry.status == WaitlistStatus.OFFERED:
        batch_changed(batch.pk)  # the UPDATE skips save(): its page token
        PreorderBatch.objects.filter(pk=batch.pk).update(
            offered_units=F("offered_units") - entry.quantity
        )
    if entry.status in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
        entry.status = WaitlistStatus.LEFT
        entry.save(update_fields=["status"])
        batch.refresh_from_db()
        _waitlist_offer(batch)


def _waitlist_offer(batch: PreorderBatch) -> int:
    """Offer freed units to the waitlist in order of arrival, each for a limited time. The
    first in line is never skipped for a smaller request behind them. Caller holds the
    batch lock and has refreshed it."""
    if batch.status != BatchStatus.OPEN or batch.cap is None:
        return 0
    room = batch.available_units
    offered = 0
    expires = timezone.now() + timedelta(hours=settings.PREORDER_WAITLIST_OFFER_HOURS)
    for entry in batch.waitlist.select_for_update().filter(status=WaitlistStatus.WAITING):
        if entry.quantity > room:
            break
        entry.status, entry.offer_expires_at = WaitlistStatus.OFFERED, expires
        entry.save(update_fields=["status", "offer_expires_at"])
        room -= entry.quantity
        offered += entry.quantity
        _email(
            entry.user.email,
            "waitlist_offer",
            ngettext(
                "%(n)s × %(name)s is yours to reserve",
                "%(n)s × %(name)s are yours to reserve",
                entry.quantity,
            )
            % {"n": entry.quantity, "name": batch.product.name},
            {"batch": batch, "entry": entry},
        )
    if offered:
        batch_changed(batch.pk)  # the UPDATE skips save(): its page token
        PreorderBatch.objects.filter(pk=batch.pk).update(offered_units=F("offered_units") + offered)
    return offered


def waitlist_offers_expire() -> int:
    """Beat: offers not taken in time go to the next in line."""
    expired = 0
    batch_ids = set(
        WaitlistEntry.objects.filter(
            status=WaitlistStatus.OFFERED, offer_expires_at__lte=timezone.now()
        ).values_list("batch_id", flat=True)
    )
    for batch_id in batch_ids:
        with transaction.atomic():
            batch = PreorderBatch.objects.select_for_update().get(pk=batch_id)
            entries = list(
                batch.waitlist.select_for_update().filter(
                    status=WaitlistStatus.OFFERED, offer_expires_at__lte=timezone.now()
                )
            )
            units = sum(entry.quantity for entry in entries)
            WaitlistEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
                status=WaitlistStatus.EXPIRED
            )
            batch_changed(batch.pk)  # the UPDATE skips save(): its page token
            PreorderBatch.objects.filter(pk=batch.pk).update(
                offered_units=F("offered_units") - units
            )
            batch.refresh_from_db()
            _waitlist_offer(batch)
            expired += len(entries)
    return expired


# --- after a failed charge: the grace period (the engine's fix-payment window) ------------


def reservations_grace_sweep() -> tuple[int, int]:
    """Beat: remind those whose charge failed every PREORDER_REMINDER_HOURS; release them
    when the grace period ends (their units stop counting). Returns (reminded, released)."""
    return commitments_grace_sweep(book=preorder_book())


def payment_failed_email(*, reservation: Reservation, reminder: bool = False) -> None:
    commitment_payment_failed_email(book=preorder_book(), commitment=reservation, reminder=reminder)


def _email(address: str, template: str, subject: str, context: dict) -> None:
    context = {**context, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] {subject}",
        body=render_to_string(f"preorders/email/{template}.txt", context),
        to=[address],
    )
    message.attach_alternative(
        render_to_string(f"preorders/email/{template}.html", context), "text/html"
    )
    email_send_on_commit(message=message)
