"""Every write about money. The provider is called with an idempotency key, and our own rows
(unique keys, a state checked under a row lock) make each charge and refund happen once even
when the provider ignores idempotency keys (localstripe does)."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from payments.listeners import card_uses, payment_listener_notify
from payments.models import (
    Payment,
    PaymentCustomer,
    PaymentStatus,
    Refund,
    SavedCard,
    WebhookEvent,
)
from payments.money import from_minor_units, to_minor_units
from payments.providers.base import CardError, ChargeOutcome, ChargeResult, ProviderEvent
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


@transaction.atomic
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
    the first payment unless that one can still be retried (declined or errored)."""
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
        return payment
    # The provider's key: the same for a retry after an error with the same card (so a charge
    # that went through is not made twice), new for another card or after a decline (Stripe
    # refuses a key reused with other parameters, and replays a decline for the same key).
    provider_key = f"{idempotency_key}:card-{saved_card.pk}"
    if payment.status == PaymentStatus.FAILED:
        provider_key += f":after-{payment.updated_at.timestamp():.0f}"
    if payment.saved_card_id != saved_card.pk:
        payment.saved_card = saved_card
        payment.save(update_fields=["saved_card", "updated_at"])
    result = provider_get(payment.provider).charge(
        amount_minor=to_minor_units(payment.amount, payment.currency),
        currency=payment.currency.lower(),
        customer_ref=customer_ref_for(user=user, provider_name=payment.provider),
        card_ref=saved_card.provider_ref,
        idempotency_key=provider_key,
        off_session=off_session,
        metadata={"reference": reference, **(metadata or {})},
    )
    _apply(payment, result)
    payment_listener_notify(payment)
    return payment


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


@transaction.atomic
def refund_create(
    *,
    payment: Payment,
    amount: Decimal,
    idempotency_key: str,
    reason: str = "",
    actor: User | None = None,
) -> Refund:
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        return existing
    if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
        raise PaymentError("Only a succeeded payment can be refunded.")
    if amount <= 0 or amount > payment.refundable:
        raise PaymentError(f"Refund between 0.01 and {payment.refundable} {payment.currency}.")
    result = provider_get(payment.provider).refund(
        provider_ref=payment.provider_ref,
        amount_minor=to_minor_units(amount, payment.currency),
        idempotency_key=idempotency_key,
    )
    if not result.ok:
        raise PaymentError(result.message or "The provider refused the refund.")
    refund = Refund.objects.create(
        payment=payment,
        amount=amount,
        reason=reason[:200],
        provider_ref=result.provider_ref,
        idempotency_key=idempotency_key,
        created_by=actor,
    )
    payment.amount_refunded += amount
    payment.status = (
        PaymentStatus.REFUNDED
        if payment.amount_refunded == payment.amount
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])
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
            payment.amount_refunded = min(refunded, payment.amount)
            payment.status = (
                PaymentStatus.REFUNDED
                if payment.amount_refunded == payment.amount
                else PaymentStatus.PARTIALLY_REFUNDED
            )
            payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    payment_listener_notify(payment)
    return True
