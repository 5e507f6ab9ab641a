"""Stripe through the official library: Customers, SetupIntents to save a card for off-session
use, PaymentIntents to charge it, Refunds, and signed webhooks. Settings are read on every call
(not at import), so tests can point the provider at localstripe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import stripe
from django.conf import settings

from payments.providers.base import (
    CardDetails,
    CardError,
    ChargeOutcome,
    ChargeRequest,
    ChargeResult,
    ProviderEvent,
    RefundResult,
    WebhookSignatureError,
)

logger = logging.getLogger(__name__)

AUTHENTICATION_MESSAGE = "Your bank asks you to confirm this payment."
UNAVAILABLE_MESSAGE = "The card processor is unavailable. Please try again in a moment."

# Webhook event type -> the outcome it reports for its PaymentIntent.
_INTENT_EVENT_OUTCOMES = {
    "payment_intent.succeeded": ChargeOutcome.SUCCEEDED,
    "payment_intent.payment_failed": ChargeOutcome.DECLINED,
    "payment_intent.requires_action": ChargeOutcome.NEEDS_ACTION,
}


@cache
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    """One client (and connection pool) per configuration. Retries are safe: charges and
    refunds carry our idempotency keys, and the library adds its own to other POSTs."""
    return stripe.StripeClient(
        api_key=api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=2,
    )


def _intent_result(intent: dict[str, Any]) -> ChargeResult:
    """Where a PaymentIntent stands, as one of our outcomes."""
    ref, status = intent["id"], intent["status"]
    error = intent.get("last_payment_error") or {}
    if status == "succeeded":
        return ChargeResult(ChargeOutcome.SUCCEEDED, provider_ref=ref)
    # Real Stripe leaves an off-session 3-D Secure failure in requires_payment_method with
    # code authentication_required: the shopper can still confirm it on-session.
    if status in ("requires_action", "requires_confirmation") or (
        error.get("code") == "authentication_required"
    ):
        return ChargeResult(
            ChargeOutcome.NEEDS_ACTION,
            provider_ref=ref,
            message=AUTHENTICATION_MESSAGE,
            code="authentication_required",
            client_secret=intent.get("client_secret") or "",
        )
    if status in ("requires_payment_method", "canceled"):
        return ChargeResult(
            ChargeOutcome.DECLINED,
            provider_ref=ref,
            message=error.get("message") or "",
            code=error.get("decline_code") or error.get("code") or status,
        )
    # processing / requires_capture: no money yet, ask again later.
    return ChargeResult(
        ChargeOutcome.ERROR,
        provider_ref=ref,
        message="The payment is still being processed.",
        code=status,
    )


def _card_error_result(exc: stripe.CardError) -> ChargeResult:
    """A refused charge. Real Stripe names the PaymentIntent it created in the error;
    localstripe names only the charge."""
    error = (exc.json_body or {}).get("error") or {}
    intent = error.get("payment_intent") or {}
    if not isinstance(intent, dict):
        intent = {"id": intent}
    ref = intent.get("id") or ""
    if exc.code == "authentication_required":
        return ChargeResult(
            ChargeOutcome.NEEDS_ACTION,
            provider_ref=ref,
            message=AUTHENTICATION_MESSAGE,
            code="authentication_required",
            client_secret=intent.get("client_secret") or "",
        )
    return ChargeResult(
        ChargeOutcome.DECLINED,
        provider_ref=ref,
        message=exc.user_message or "",
        code=error.get("decline_code") or exc.code or "card_declined",
    )


def _ref(value: Any) -> str:
    """An id from a field that may be expanded into an object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


class StripeProvider:
    name = "stripe"

    def _client(self) -> stripe.StripeClient:
        return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)

    def customer_ensure(self, *, user_id: int, email: str, existing_ref: str | None) -> str:
        if existing_ref:
            return existing_ref
        customer = self._client().v1.customers.create(
            params={"email": email, "metadata": {"user_id": str(user_id)}}
        )
        return customer.id

    def card_save(self, *, customer_ref: str, card: dict) -> CardDetails:
        payment_method = card.get("payment_method")
        if not isinstance(payment_method, str) or not payment_method.startswith("pm_"):
            raise CardError("Enter your card details again.")
        client = self._client()
        try:
            # Created, then confirmed: localstripe refuses payment_method/confirm on create.
            intent = client.v1.setup_intents.create(
                params={
                    "customer": customer_ref,
                    "payment_method_types": ["card"],
                    "usage": "off_session",
                }
            )
            intent = client.v1.setup_intents.confirm(
                intent.id, params={"payment_method": payment_method}
            )
            if intent.status not in ("succeeded", "requires_action"):
                raise CardError("Your card could not be saved. Try another card.")
            method = client.v1.payment_methods.retrieve(payment_method)
            # Stripe attaches on a successful SetupIntent; localstripe never does, and a card
            # whose bank wants 3-D Secure is kept too: its off-session charges then come back
            # as needs-action and the shopper authenticates on-session.
            if _ref(method.customer) != customer_ref:
                method = client.v1.payment_methods.attach(
                    payment_method, params={"customer": customer_ref}
                )
        except stripe.CardError as exc:
            raise CardError(exc.user_message or "Your card was declined.") from exc
        except stripe.InvalidRequestError as exc:
            logger.warning("Stripe refused to save %s: %s", payment_method, exc)
            raise CardError("Your card could not be saved. Enter it again.") from exc
        except stripe.StripeError as exc:
            logger.error("Stripe unavailable while saving a card: %s", exc)
            raise CardError(UNAVAILABLE_MESSAGE) from exc
        details = method.card
        return CardDetails(
            provider_ref=method.id,
            brand=details.brand,
            last4=details.last4,
            exp_month=int(details.exp_month),
            exp_year=int(details.exp_year),
        )

    def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        customer_ref: str,
        card_ref: str,
        idempotency_key: str,
        off_session: bool,
        metadata: dict[str, str],
    ) -> ChargeResult:
        try:
            intent = self._client().v1.payment_intents.create(
                params={
                    "amount": amount_minor,
                    "currency": currency.lower(),
                    "customer": customer_ref,
                    "payment_method": card_ref,
                    "payment_method_types": ["card"],
                    "confirm": True,
                    "off_session": off_session,
                    # Lets charge_find recognise the intent after a crash.
                    "metadata": {**metadata, "idempotency_key": idempotency_key},
                },
                # Prefixed: Stripe keys share one namespace across endpoints.
                options={"idempotency_key": f"charge:{idempotency_key}"},
            )
        except stripe.CardError as exc:
            return _card_error_result(exc)
        except stripe.InvalidRequestError as exc:
            # The card is gone or unusable (detached, wrong customer): another card is needed.
            logger.warning("Stripe refused a charge on %s: %s", card_ref, exc)
            return ChargeResult(
                ChargeOutcome.DECLINED,
                message="This card can't be charged.",
                code=exc.code or "invalid_request",
            )
        except stripe.StripeError as exc:
            # Connection, rate limit, Stripe's own trouble, or our keys: retry later.
            logger.error("Stripe unavailable for a charge: %s", exc)
            return ChargeResult(
                ChargeOutcome.ERROR, message=UNAVAILABLE_MESSAGE, code=type(exc).__name__
            )
        return _intent_result(intent.to_dict())

    def charge_many(
        self, *, requests: list[ChargeRequest], pace: Callable[[], None] | None = None
    ) -> list[ChargeResult]:
        """Stripe has no batch endpoint: one PaymentIntent per request, made concurrently by
        up to CHARGE_THREADS threads (the client's connection pool is shared), each taking a
        token from `pace` before its call. So the calls go out as fast as the rate limit
        allows, not one round trip after another."""
        if not requests:
            return []

        def one(request: ChargeRequest) -> ChargeResult:
            if pace is not None:
                pace()
            return self.charge(
                amount_minor=request.amount_minor,
                currency=request.currency,
                customer_ref=request.customer_ref,
                card_ref=request.card_ref,
                idempotency_key=request.idempotency_key,
                off_session=True,
                metadata=request.metadata,
            )

        threads = min(len(requests), settings.STRIPE_CHARGE_THREADS)
        if threads <= 1:
            return [one(request) for request in requests]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stripe-charge") as pool:
            return list(pool.map(one, requests))

    def charge_status(self, *, provider_ref: str) -> ChargeResult:
        try:
            intent = self._client().v1.payment_intents.retrieve(provider_ref)
        except stripe.StripeError as exc:
            logger.error("Stripe unavailable for %s: %s", provider_ref, exc)
            return ChargeResult(
                ChargeOutcome.ERROR,
                provider_ref=provider_ref,
                message=UNAVAILABLE_MESSAGE,
                code=type(exc).__name__,
            )
        return _intent_result(intent.to_dict())

    def charge_find(self, *, idempotency_key: str, customer_ref: str) -> ChargeResult | None:
        """Stripe keeps a customer's PaymentIntents; ours carry their key in the metadata.
        (Search would be shorter, but it lags by up to a minute and localstripe lacks it.)
        Raises StripeError when Stripe cannot answer: then nothing may be charged, and the
        settlement's reconciler tries again later."""
        client = self._client()
        params: dict[str, Any] = {"customer": customer_ref, "limit": 100}
        while True:
            try:
                page = client.v1.payment_intents.list(params=params)
            except stripe.InvalidRequestError:
                if "customer" not in params:
                    raise
                params.pop("customer")  # localstripe lists intents but cannot filter them
                continue
            for intent in page.data:
                found = intent.to_dict()
                if (found.get("metadata") or {}).get("idempotency_key") == idempotency_key:
                    return _intent_result(found)
            if not page.has_more or not page.data:
                return None
            params["starting_after"] = page.data[-1].id

    def refund(self, *, provider_ref: str, amount_minor: int, idempotency_key: str) -> RefundResult:
        try:
            refund = self._client().v1.refunds.create(
                params={"payment_intent": provider_ref, "amount": amount_minor},
                options={"idempotency_key": f"refund:{idempotency_key}"},
            )
        except stripe.StripeError as exc:
            logger.warning("Stripe refused a refund on %s: %s", provider_ref, exc)
            return RefundResult(False, message=exc.user_message or UNAVAILABLE_MESSAGE)
        if refund.status in ("failed", "canceled"):
            return RefundResult(
                False, provider_ref=refund.id, message="The card processor refused the refund."
            )
        return RefundResult(True, provider_ref=refund.id)

    def webhook_parse(self, *, payload: bytes, signature: str) -> ProviderEvent:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, settings.STRIPE_WEBHOOK_SECRET
            ).to_dict()
            event_id, event_type = event["id"], event["type"]
            obj: dict[str, Any] = event["data"]["object"]
        except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError) as exc:
            raise WebhookSignatureError(str(exc)) from exc
        if event_type in _INTENT_EVENT_OUTCOMES:
            outcome = _INTENT_EVENT_OUTCOMES[event_type]
            error = obj.get("last_payment_error") or {}
            if outcome == ChargeOutcome.DECLINED and error.get("code") == "authentication_required":
                outcome = ChargeOutcome.NEEDS_ACTION  # Stripe's off-session 3-D Secure failure
            return ProviderEvent(
                event_id=event_id, type=event_type, object_ref=obj["id"], outcome=outcome, data=obj
            )
        if event_type == "charge.refunded":
            return ProviderEvent(
                event_id=event_id,
                type=event_type,
                object_ref=_ref(obj.get("payment_intent")),
                amount_refunded_minor=int(obj.get("amount_refunded") or 0),
                data=obj,
            )
        # setup_intent.succeeded and anything else: recorded, no effect on a payment.
        return ProviderEvent(
            event_id=event_id, type=event_type, object_ref=_ref(obj.get("id")), data=obj
        )
