"""Every write about money. The provider is called with an idempotency key, and our own rows
(unique keys, a state checked under a row lock) make each charge and refund happen once even
when the provider ignores idempotency keys (localstripe does)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from formatting.formats import money
from payments.listeners import card_uses, payment_listener_notify
from payments.models import (
    Payment,
    PaymentCustomer,
    PaymentStatus,
    Refund,
    RefundStatus,
    SavedCard,
    WebhookEvent,
)
from payments.money import from_minor_units, to_minor_units
from payments.providers.base import (
    CardError,
    ChargeOutcome,
    ChargeResult,
    ProviderEvent,
    RefundResult,
)
from payments.providers.registry import provider_get

_OUTCOME_STATUS = {
    ChargeOutcome.SUCCEEDED: PaymentStatus.SUCCEEDED,
    ChargeOutcome.NEEDS_ACTION: PaymentStatus.REQUIRES_ACTION,
    ChargeOutcome.DECLINED: PaymentStatus.FAILED,
    ChargeOutcome.ERROR: PaymentStatus.PENDING,
}
# A payment never moves backwards: once money was taken, no late or replayed event undoes it.
_FINAL = {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}

logger = logging.getLogger(__name__)
DECLINE_MESSAGE = "Your card was declined. Try another card, or contact your bank."


class PaymentError(Exception):
    """A refund or charge we refuse (amount, state): the message is for the operator/user."""


def customer_ref_for(*, user: User, provider_name: str | None = None) -> str:
    provider = provider_get(provider_name)
    existing = PaymentCustomer.objects.filter(user=user, provider=provider.name).first()
    if existing:
        return existing.customer_ref
    ref = provider.customer_ensure(user_id=user.pk, email=user.email, existing_ref=None)
    customer, _ = PaymentCustomer.objects.get_or_create(
        user=user, provider=provider.name, defaults={"customer_ref": ref}
    )
    return customer.customer_ref


@transaction.atomic
def card_save(*, user: User, card: dict) -> SavedCard:
    """Save a card for this user (raises payments.providers.base.CardError with a message)."""
    provider = provider_get()
    try:
        details = provider.card_save(customer_ref=customer_ref_for(user=user), card=card)
    except CardError:
        raise
    except Exception as exc:  # the provider is unreachable or refused us: not the card
        logger.exception("saving a card with %s failed", provider.name)
        raise CardError("We could not reach the payment service. Please try again.") from exc
    saved, _ = SavedCard.objects.update_or_create(
        provider=provider.name,
        provider_ref=details.provider_ref,
        defaults={
            "user": user,
            "brand": details.brand,
            "last4": details.last4,
            "exp_month": details.exp_month,
            "exp_year": details.exp_year,
            "deleted_at": None,
        },
    )
    return saved


class CardInUseError(PaymentError):
    """A card that a held commitment will be charged with: the message names what."""


def card_delete(*, user: User, card: SavedCard, force: bool = False) -> None:
    """Forget a saved card, unless a held reservation or pledge still needs it (`force` is for
    the card typed for one payment and not to be kept, which nothing else uses)."""
    if card.user_id != user.pk:
        raise PermissionError("Not your card")
    uses = [] if force else card_uses(card)
    if uses:
        raise CardInUseError(
            f"{card} will be charged for {', '.join(uses)}. Change the card there first, "
            "or cancel it."
        )
    SavedCard.objects.filter(pk=card.pk).update(deleted_at=timezone.now())


def _apply(payment: Payment, result: ChargeResult) -> Payment:
    """Record a provider answer on a locked payment; never backwards."""
    if payment.status in _FINAL:
        return payment
    payment.status = _OUTCOME_STATUS[result.outcome]
    payment.provider_ref = result.provider_ref or payment.provider_ref
    payment.client_secret = result.client_secret or payment.client_secret
    if result.outcome in (ChargeOutcome.DECLINED, ChargeOutcome.ERROR):
        payment.failure_code = result.code[:60]
        payment.failure_message = (result.message or DECLINE_MESSAGE)[:300]
    else:
        payment.failure_code = payment.failure_message = ""
    payment.save(
        update_fields=[
            "status",
            "provider_ref",
            "client_secret",
            "failure_code",
            "failure_message",
            "updated_at",
        ]
    )
    return payment


# A charge whose provider call started this recently is still in flight: a second request
# for it waits for that answer instead of calling again (localstripe ignores idempotency
# keys). Older than this, the request that made it died: payments_recover_in_flight replays it.
IN_FLIGHT = timedelta(minutes=2)


def payment_charge(
    *,
    user: User,
    reference: str,
    amount: Decimal,
    currency: str,
    saved_card: SavedCard,
    idempotency_key: str,
    off_session: bool,
    metadata: dict[str, str] | None = None,
) -> Payment:
    """Charge `saved_card` once for `idempotency_key`. A second call with the same key returns
    the first payment unless that one can still be retried (declined or errored).

    In three steps, so that nothing that fails after the provider took the money can lose
    the record of it: (1) the payment row and the provider key are committed before the call,
    (2) the provider is called with no row lock held, (3) its answer and the listener's effect
    (the order paid, ...) commit together. If (3) is lost (a crash, a database restart),
    `payments_recover_in_flight` replays the call with the same key and records it then.
    Called inside an outer transaction (pre-orders' deposits), the steps share it."""
    payment, provider_key = _charge_begin(
        user=user,
        reference=reference,
        amount=amount,
        currency=currency,
        saved_card=saved_card,
        idempotency_key=idempotency_key,
        request={
            "off_session": off_session,
            "metadata": {"reference": reference, **(metadata or {})},
        },
    )
    if provider_key is None:
        return payment
    result = _provider_charge(payment, provider_key)
    return _charge_record(payment_id=payment.pk, provider_key=provider_key, result=result)


@transaction.atomic
def _charge_begin(
    *,
    user: User,
    reference: str,
    amount: Decimal,
    currency: str,
    saved_card: SavedCard,
    idempotency_key: str,
    request: dict,
) -> tuple[Payment, str | None]:
    """Step 1: the payment row, and the key of the call about to be made. (payment, None)
    when no call is to be made: already paid, waiting for 3-D Secure, or in flight."""
    payment, _ = Payment.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "provider": provider_get().name,
            "user": user,
            "reference": reference,
            "amount": amount,
            "currency": currency,
            "saved_card": saved_card,
        },
    )
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status in _FINAL or payment.status == PaymentStatus.REQUIRES_ACTION:
        return payment, None
    if _in_flight(payment):
        return payment, None
    # The provider's key: the same for a retry after an error with the same card (so a charge
    # that went through is not made twice), new for another card or after a decline (Stripe
    # refuses a key reused with other parameters, and replays a decline for the same key).
    provider_key = f"{idempotency_key}:card-{saved_card.pk}"
    if payment.status == PaymentStatus.FAILED:
        provider_key += f":after-{payment.updated_at.timestamp():.0f}"
    payment.saved_card = saved_card
    payment.provider_key = provider_key
    payment.provider_request = request
    payment.status = PaymentStatus.PENDING
    payment.failure_code = payment.failure_message = ""
    payment.save(
        update_fields=[
            "saved_card",
            "provider_key",
            "provider_request",
            "status",
            "failure_code",
            "failure_message",
            "updated_at",
        ]
    )
    return payment, provider_key


def _in_flight(payment: Payment) -> bool:
    return (
        payment.status == PaymentStatus.PENDING
        and bool(payment.provider_key)
        and not payment.failure_code
        and payment.updated_at > timezone.now() - IN_FLIGHT
    )


def _provider_charge(payment: Payment, provider_key: str) -> ChargeResult:
    """Step 2: the provider call. A provider that cannot be reached is an error to retry
    with the same key, not a decline."""
    card = payment.saved_card
    try:
        return provider_get(payment.provider).charge(
            amount_minor=to_minor_units(payment.amount, payment.currency),
            currency=payment.currency.lower(),
            customer_ref=customer_ref_for(user=payment.user, provider_name=payment.provider),
            card_ref=card.provider_ref if card else "",
            idempotency_key=provider_key,
            off_session=bool(payment.provider_request.get("off_session")),
            metadata=payment.provider_request.get("metadata") or {},
        )
    except Exception:  # network, provider outage: we do not know; the same key is retried
        logger.exception("charging %s failed", payment.reference)
        return ChargeResult(
            outcome=ChargeOutcome.ERROR,
            code="provider_unreachable",
            message="We could not reach the payment service. Please try again in a moment.",
        )


@transaction.atomic
def _charge_record(*, payment_id: int, provider_key: str, result: ChargeResult) -> Payment:
    """Step 3: the answer and its effect, in one transaction."""
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.provider_key != provider_key:  # a newer attempt owns the row now
        return payment
    _apply(payment, result)
    payment_listener_notify(payment)
    return payment


def payments_recover_in_flight(*, limit: int = 100) -> int:
    """Beat sweep: charges whose request died between the provider call and the record of
    its answer (step 3 of payment_charge) are asked again with the same key, which the
    provider answers with the first result; the answer is then recorded."""
    stale = list(
        Payment.objects.filter(
            status=PaymentStatus.PENDING,
            failure_code="",
            updated_at__lt=timezone.now() - IN_FLIGHT,
        )
        .exclude(provider_key="")
        .order_by("updated_at")
        .values_list("pk", "provider_key")[:limit]
    )
    for payment_id, provider_key in stale:
        payment = Payment.objects.select_related("saved_card", "user").get(pk=payment_id)
        result = _provider_charge(payment, provider_key)
        _charge_record(payment_id=payment_id, provider_key=provider_key, result=result)
    return len(stale)


@transaction.atomic
def payment_refresh(*, payment: Payment) -> Payment:
    """Ask the provider where the charge stands (after 3-D Secure, or to recover)."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.provider_ref and payment.status not in _FINAL:
        _apply(
            payment, provider_get(payment.provider).charge_status(provider_ref=payment.provider_ref)
        )
        payment_listener_notify(payment)
    return payment


# --- refunds ----------------------------------------------------------------------------------

REFUND_LEASE = timedelta(minutes=10)  # an attempt older than this died: it may be retried


def refund_create(
    *,
    payment: Payment,
    amount: Decimal,
    idempotency_key: str,
    reason: str = "",
    actor: User | None = None,
) -> Refund:
    """Refund `amount` of `payment` once for `idempotency_key`. Raises PaymentError (nothing
    changes) for an amount or a payment that cannot be refunded. A refund the provider
    refuses, or cannot be reached for, is not lost: it stays `failed`, visible, with its
    amount reserved on the payment, and refunds_retry_due retries it until it succeeds or an
    operator abandons it. Check `refund.status`."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing
        if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
            raise PaymentError("Only a succeeded payment can be refunded.")
        if amount <= 0 or amount > payment.refundable:
            raise PaymentError(
                f"Refund between {money('0.01', payment.currency)} and "
                f"{money(payment.refundable, payment.currency)}."
            )
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            reason=reason[:200],
            idempotency_key=idempotency_key,
            created_by=actor,
            attempts=1,
            next_attempt_at=timezone.now() + REFUND_LEASE,
        )
        Payment.objects.filter(pk=payment.pk).update(
            amount_refund_pending=F("amount_refund_pending") + amount
        )
    return _refund_attempt(refund=refund)


def _refund_attempt(*, refund: Refund) -> Refund:
    """Call the provider for a refund this process has claimed, then record the answer."""
    payment = refund.payment
    try:
        result = provider_get(payment.provider).refund(
            provider_ref=payment.provider_ref,
            amount_minor=to_minor_units(refund.amount, payment.currency),
            idempotency_key=refund.idempotency_key,
        )
    except Exception:  # network, provider outage: retried later
        logger.exception("refunding %s failed", payment.reference)
        result = RefundResult(False, message="The payment service could not be reached.")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status not in (RefundStatus.PENDING, RefundStatus.FAILED):
            return refund
        if not result.ok:
            refund.status = RefundStatus.FAILED
            refund.failure_message = (result.message or "The provider refused the refund.")[:300]
            refund.next_attempt_at = timezone.now() + min(
                timedelta(minutes=2**refund.attempts), timedelta(hours=6)
            )
            refund.save(
                update_fields=["status", "failure_message", "next_attempt_at", "updated_at"]
            )
            return refund
        refund.status = RefundStatus.SUCCEEDED
        refund.provider_ref = result.provider_ref
        refund.failure_message = ""
        refund.next_attempt_at = None
        refund.save(
            update_fields=[
                "status",
                "provider_ref",
                "failure_message",
                "next_attempt_at",
                "updated_at",
            ]
        )
        payment.amount_refund_pending -= refund.amount
        payment.amount_refunded += refund.amount
        payment.status = (
            PaymentStatus.REFUNDED
            if payment.amount_refunded == payment.amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        payment.save(
            update_fields=["amount_refund_pending", "amount_refunded", "status", "updated_at"]
        )
        payment_listener_notify(payment)
    return refund


def refund_retry(*, refund: Refund) -> Refund:
    """Try a failed refund again now (the sweep, or an operator's button)."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund.pk)
        stuck = refund.status == RefundStatus.PENDING and (
            refund.next_attempt_at is None or refund.next_attempt_at <= timezone.now()
        )
        if refund.status != RefundStatus.FAILED and not stuck:
            return refund  # done, abandoned, or another attempt is under way
        refund.status = RefundStatus.PENDING
        refund.attempts += 1
        refund.next_attempt_at = timezone.now() + REFUND_LEASE
        refund.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return _refund_attempt(refund=refund)


def refunds_retry_due(*, limit: int = 100) -> int:
    """Beat sweep: failed refunds whose back-off ran out, and attempts that died."""
    due = list(
        Refund.objects.filter(
            status__in=[RefundStatus.FAILED, RefundStatus.PENDING],
            next_attempt_at__lte=timezone.now(),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for refund_id in due:
        refund_retry(refund=Refund(pk=refund_id))
    return len(due)


@transaction.atomic
def refund_abandon(*, refund: Refund, actor: User, note: str = "") -> Refund:
    """An operator settles a failed refund another way (e.g. a bank transfer): it is no
    longer retried, and its amount is no longer reserved on the payment."""
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    refund = Refund.objects.select_for_update().get(pk=refund.pk)
    if refund.status != RefundStatus.FAILED:
        raise PaymentError("Only a failed refund can be abandoned.")
    refund.status = RefundStatus.ABANDONED
    refund.failure_message = (f"Abandoned by {actor}: {note}" if note else f"Abandoned by {actor}")[
        :300
    ]
    refund.next_attempt_at = None
    refund.save(update_fields=["status", "failure_message", "next_attempt_at", "updated_at"])
    payment.amount_refund_pending -= refund.amount
    payment.save(update_fields=["amount_refund_pending", "updated_at"])
    # A payment can span brands and only superusers abandon refunds: no brand on the entry.
    audit_record(
        actor=actor,
        action="refund.abandon",
        obj=refund,
        brand_id=None,
        before={"status": RefundStatus.FAILED, "pending": refund.amount},
        after={"status": RefundStatus.ABANDONED, "pending": Decimal("0.00")},
        note=note,
        parent=payment,
    )
    payment_listener_notify(payment)
    return refund


@transaction.atomic
def webhook_event_apply(*, provider_name: str, event: ProviderEvent) -> bool:
    """Apply a verified provider event exactly once. Returns False for a replay or for an
    event about nothing we know. The event row and its effect commit together."""
    payment = (
        Payment.objects.select_for_update()
        .filter(provider=provider_name, provider_ref=event.object_ref)
        .first()
    )
    about_money = event.outcome is not None or event.amount_refunded_minor is not None
    if payment is None and about_money:
        # Not recorded: the charge's own transaction may not have committed yet, and the
        # provider retries the event later.
        return False
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                provider=provider_name, event_id=event.event_id, type=event.type
            )
    except IntegrityError:
        return False
    if payment is None:  # e.g. setup_intent.succeeded: recorded, nothing to change
        return False
    if event.outcome is not None:
        _apply(payment, ChargeResult(outcome=event.outcome, provider_ref=event.object_ref))
    if event.amount_refunded_minor is not None:
        refunded = from_minor_units(event.amount_refunded_minor, payment.currency)
        if refunded > payment.amount_refunded:  # never backwards; refunds made here are known
            payment.amount_refunded = min(refunded, payment.amount - payment.amount_refund_pending)
            payment.status = (
                PaymentStatus.REFUNDED
                if payment.amount_refunded == payment.amount
                else PaymentStatus.PARTIALLY_REFUNDED
            )
            payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    payment_listener_notify(payment)
    return True
