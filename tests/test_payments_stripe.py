"""The Stripe provider against localstripe, through payments.services and the webhook view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import stripe

from payments import services
from payments.models import Payment, PaymentCustomer, PaymentStatus, Refund, SavedCard, WebhookEvent
from payments.money import to_minor_units
from payments.providers.base import CardError, ChargeOutcome
from payments.providers.registry import provider_get
from payments.providers.stripe_provider import _card_error_result
from tests.stripe_server import (
    EXP_YEAR,
    SECRET_KEY,
    WEBHOOK_SECRET,
    LocalStripe,
    event_payload,
    signature_header,
)

pytestmark = pytest.mark.django_db

WEBHOOK_URL = "/payments/stripe/webhook/"
VISA = "4242424242424242"
DECLINED_ON_SAVE = "4000000000000002"
DECLINED_ON_CHARGE = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002760003184"


@pytest.fixture(autouse=True)
def stripe_provider(localstripe: LocalStripe, settings) -> Iterator[LocalStripe]:
    localstripe.flush()
    provider_get.cache_clear()  # cached per name: drop the one built under other settings
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = localstripe.base
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield localstripe
    provider_get.cache_clear()


def card_saved(localstripe: LocalStripe, user, number: str) -> SavedCard:
    return services.card_save(
        user=user, card={"payment_method": localstripe.payment_method(number)}
    )


def charge(user, card: SavedCard, *, amount: str = "20.00", key: str = "test-charge-1") -> Payment:
    # "test:" is a reference prefix no app listens to.
    return services.payment_charge(
        user=user,
        reference=f"test:{key}",
        amount=Decimal(amount),
        currency="USD",
        saved_card=card,
        idempotency_key=key,
        off_session=True,
    )


def post_event(client, payload: bytes, signature: str | None = None):
    return client.post(
        WEBHOOK_URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature or signature_header(payload),
    )


def test_confirmed_payment_intent_succeeds_in_minor_units(localstripe):
    provider = provider_get()
    customer = provider.customer_ensure(user_id=7, email="fan@example.com", existing_ref=None)
    card = provider.card_save(
        customer_ref=customer, card={"payment_method": localstripe.payment_method(VISA)}
    )
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, EXP_YEAR)

    result = provider.charge(
        amount_minor=to_minor_units(Decimal("12.34"), "USD"),
        currency="USD",
        customer_ref=customer,
        card_ref=card.provider_ref,
        idempotency_key="test-1",
        off_session=False,
        metadata={"reference": "test:1"},
    )

    assert result.outcome == ChargeOutcome.SUCCEEDED
    intent = localstripe.client().v1.payment_intents.retrieve(result.provider_ref)
    assert (intent.amount, intent.currency, intent.customer) == (1234, "usd", customer)
    assert intent.payment_method == card.provider_ref
    assert intent.metadata["reference"] == "test:1"
    stripe_customer = localstripe.client().v1.customers.retrieve(customer)
    assert stripe_customer.email == "fan@example.com"
    assert stripe_customer.metadata["user_id"] == "7"


def test_saved_card_is_charged_off_session(localstripe, user):
    card = card_saved(localstripe, user, VISA)

    customer_ref = PaymentCustomer.objects.get(user=user, provider="stripe").customer_ref
    assert customer_ref.startswith("cus_")
    assert (card.provider, card.brand, card.last4) == ("stripe", "visa", "4242")
    attached = localstripe.client().v1.payment_methods.list(
        params={"customer": customer_ref, "type": "card"}
    )
    assert [method.id for method in attached.data] == [card.provider_ref]

    payment = charge(user, card, amount="49.99")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.provider_ref.startswith("pi_")
    assert payment.failure_message == ""
    intent = localstripe.client().v1.payment_intents.retrieve(payment.provider_ref)
    assert (intent.amount, intent.customer, intent.status) == (4999, customer_ref, "succeeded")


def test_declines_are_recorded_not_raised(localstripe, user):
    with pytest.raises(CardError, match="declined"):
        card_saved(localstripe, user, DECLINED_ON_SAVE)
    assert not SavedCard.objects.exists()

    card = card_saved(localstripe, user, DECLINED_ON_CHARGE)  # saves fine, fails when charged
    payment = charge(user, card)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "card_declined"
    assert payment.failure_message == "Your card was declined."

    # The shopper retries with another card under the same key: the same payment succeeds.
    retried = charge(user, card_saved(localstripe, user, VISA))
    assert retried.pk == payment.pk
    assert retried.status == PaymentStatus.SUCCEEDED
    assert Payment.objects.count() == 1


def test_authentication_required_off_session_needs_action(localstripe, user):
    payment = charge(user, card_saved(localstripe, user, NEEDS_AUTHENTICATION))

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.provider_ref.startswith("pi_")
    assert payment.client_secret.startswith(f"{payment.provider_ref}_secret_")

    # Real Stripe answers an off-session 3-D Secure card with an error instead (localstripe
    # cannot): the same outcome, with the PaymentIntent the error names.
    error_body = {
        "error": {
            "type": "card_error",
            "code": "authentication_required",
            "message": "This payment requires authentication.",
            "payment_intent": {
                "id": "pi_real",
                "client_secret": "pi_real_secret_x",
                "status": "requires_payment_method",
            },
        }
    }
    exc = stripe.CardError(
        error_body["error"]["message"],
        None,
        "authentication_required",
        http_body=json.dumps(error_body),
        http_status=402,
        json_body=error_body,
    )
    result = _card_error_result(exc)
    assert (result.outcome, result.provider_ref, result.client_secret) == (
        ChargeOutcome.NEEDS_ACTION,
        "pi_real",
        "pi_real_secret_x",
    )


@pytest.mark.parametrize(
    ("passed", "status"), [(True, PaymentStatus.SUCCEEDED), (False, PaymentStatus.FAILED)]
)
def test_refresh_after_authentication(localstripe, user, passed, status):
    payment = charge(user, card_saved(localstripe, user, NEEDS_AUTHENTICATION))
    localstripe.authenticate(payment.provider_ref, payment.client_secret, success=passed)

    payment = services.payment_refresh(payment=payment)

    assert payment.status == status
    assert bool(payment.failure_message) is not passed


def test_unreachable_stripe_is_an_error_to_retry(localstripe, user, settings):
    card = card_saved(localstripe, user, VISA)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port

    payment = charge(user, card)

    assert payment.status == PaymentStatus.PENDING
    assert payment.failure_code == "APIConnectionError"
    assert payment.failure_message

    settings.STRIPE_API_BASE = localstripe.base
    payment = charge(user, card)  # the retry the settlement task would make
    assert payment.status == PaymentStatus.SUCCEEDED
    assert len(localstripe.client().v1.payment_intents.list().data) == 1


def test_refund_partial_then_full(localstripe, user):
    payment = charge(user, card_saved(localstripe, user, VISA), amount="20.00")

    services.refund_create(payment=payment, amount=Decimal("5.00"), idempotency_key="refund-1")
    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (
        Decimal("5.00"),
        PaymentStatus.PARTIALLY_REFUNDED,
    )

    services.refund_create(payment=payment, amount=Decimal("15.00"), idempotency_key="refund-2")
    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (Decimal("20.00"), PaymentStatus.REFUNDED)

    refunds = localstripe.client().v1.refunds.list(params={"payment_intent": payment.provider_ref})
    assert sorted(refund.amount for refund in refunds.data) == [500, 1500]
    assert sorted(Refund.objects.values_list("provider_ref", flat=True)) == sorted(
        refund.id for refund in refunds.data
    )


def test_refund_with_the_same_key_happens_once(localstripe, user):
    payment = charge(user, card_saved(localstripe, user, VISA), amount="20.00")

    first = services.refund_create(payment=payment, amount=Decimal("5.00"), idempotency_key="r-1")
    again = services.refund_create(payment=payment, amount=Decimal("5.00"), idempotency_key="r-1")

    assert again.pk == first.pk
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("5.00")
    refunds = localstripe.client().v1.refunds.list(params={"payment_intent": payment.provider_ref})
    assert len(refunds.data) == 1


def test_charge_with_the_same_key_happens_once(localstripe, user):
    card = card_saved(localstripe, user, VISA)

    first = charge(user, card, key="preorder-res-1")
    again = charge(user, card, key="preorder-res-1")

    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    # localstripe ignores idempotency keys, so this single PaymentIntent is our database's doing.
    customer_ref = PaymentCustomer.objects.get(user=user).customer_ref
    intents = localstripe.client().v1.payment_intents.list(params={"limit": 100}).data
    assert [intent.id for intent in intents if intent.customer == customer_ref] == [
        first.provider_ref
    ]


def test_webhook_success_applies_once_and_never_backwards(localstripe, user, client):
    payment = charge(user, card_saved(localstripe, user, NEEDS_AUTHENTICATION))
    localstripe.authenticate(payment.provider_ref, payment.client_secret, success=True)
    # The event localstripe itself recorded when the shopper authenticated.
    (event,) = localstripe.events("payment_intent.succeeded")
    payload = json.dumps(event).encode()

    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json() == {"received": True, "applied": True}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    updated_at = payment.updated_at

    replay = post_event(client, payload)
    assert replay.json() == {"received": True, "applied": False}
    assert WebhookEvent.objects.count() == 1
    payment.refresh_from_db()
    assert payment.updated_at == updated_at

    # A failure that arrives late (out of order) is recorded but moves nothing backwards.
    intent = localstripe.client().v1.payment_intents.retrieve(payment.provider_ref).to_dict()
    intent.update(
        status="requires_payment_method",
        last_payment_error={"code": "card_declined", "message": "Declined."},
    )
    late = post_event(client, event_payload("payment_intent.payment_failed", intent))
    assert late.status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.failure_message) == (PaymentStatus.SUCCEEDED, "")
    assert payment.updated_at == updated_at
    assert WebhookEvent.objects.count() == 2


def test_webhook_charge_refunded_outside_the_app(localstripe, user, client):
    payment = charge(user, card_saved(localstripe, user, VISA), amount="20.00")
    stripe_client = localstripe.client()
    # An operator refunds 5.00 in Stripe's dashboard: we learn it only from the webhook.
    stripe_client.v1.refunds.create(params={"payment_intent": payment.provider_ref, "amount": 500})
    intent = stripe_client.v1.payment_intents.retrieve(payment.provider_ref).to_dict()
    charge_id = intent["latest_charge"]["id"]  # localstripe embeds the charge; Stripe gives its id
    stripe_charge = stripe_client.v1.charges.retrieve(charge_id).to_dict()
    assert stripe_charge["amount_refunded"] == 500

    response = post_event(client, event_payload("charge.refunded", stripe_charge))

    assert response.json() == {"received": True, "applied": True}
    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (
        Decimal("5.00"),
        PaymentStatus.PARTIALLY_REFUNDED,
    )


def test_webhook_with_a_bad_signature_changes_nothing(localstripe, user, client):
    payment = charge(user, card_saved(localstripe, user, NEEDS_AUTHENTICATION))
    intent = localstripe.client().v1.payment_intents.retrieve(payment.provider_ref).to_dict()
    payload = event_payload("payment_intent.succeeded", {**intent, "status": "succeeded"})

    for signature in (
        signature_header(payload, secret="whsec_wrong"),
        signature_header(payload, timestamp=1_500_000_000),  # replayed years later
        "garbage",
    ):
        response = post_event(client, payload, signature)
        assert response.status_code == 400
        assert "error" in response.json()
    tampered = payload.replace(b'"succeeded"', b'"processing"')
    assert tampered != payload
    assert post_event(client, tampered, signature_header(payload)).status_code == 400
    assert client.get(WEBHOOK_URL).status_code == 405

    assert not WebhookEvent.objects.exists()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION


def test_webhook_about_a_saved_card_is_recorded_only(localstripe, user, client):
    card_saved(localstripe, user, VISA)
    (setup_intent,) = localstripe.client().v1.setup_intents.list().data

    response = post_event(client, event_payload("setup_intent.succeeded", setup_intent.to_dict()))

    assert response.json() == {"received": True, "applied": False}
    assert list(WebhookEvent.objects.values_list("provider", "type")) == [
        ("stripe", "setup_intent.succeeded")
    ]
