"""The one interface every payment provider implements. Amounts are integer minor units here
(payments.money converts); everything above this layer speaks Decimal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    NEEDS_ACTION = "needs_action"  # 3-D Secure: Stripe's authentication_required/requires_action
    DECLINED = "declined"
    ERROR = "error"  # network or provider trouble: try again later


@dataclass(frozen=True)
class ChargeResult:
    outcome: ChargeOutcome
    provider_ref: str = ""
    message: str = ""
    code: str = ""
    client_secret: str = ""  # for the browser to finish an authentication (Stripe.js)


@dataclass(frozen=True)
class ChargeRequest:
    """One off-session charge of a saved card, for `charge_many`."""

    amount_minor: int
    currency: str
    customer_ref: str
    card_ref: str
    idempotency_key: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CardDetails:
    provider_ref: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class RefundResult:
    ok: bool
    provider_ref: str = ""
    message: str = ""


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook event, reduced to what our services need."""

    event_id: str
    type: str
    object_ref: str  # e.g. the PaymentIntent id
    outcome: ChargeOutcome | None = None
    amount_refunded_minor: int | None = None
    data: dict = field(default_factory=dict)


class CardError(ValueError):
    """A card the provider refuses to save (bad number, expired, ...): message for the user."""


class WebhookSignatureError(ValueError):
    pass


class PaymentProvider(Protocol):
    name: str

    def customer_ensure(self, *, user_id: int, email: str, existing_ref: str | None) -> str:
        """The provider's customer for this user (created when `existing_ref` is None)."""

    def card_save(self, *, customer_ref: str, card: dict) -> CardDetails:
        """Attach a card to the customer for later off-session use. `card` is what the page
        collected: local provider {"number", "exp_month", "exp_year", "cvc"}; Stripe
        {"payment_method": "pm_..."} from Stripe.js (raises CardError)."""

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
        """Charge a saved card now. Never raises for a declined card: returns the outcome."""

    def charge_many(
        self, *, requests: list[ChargeRequest], pace: Callable[[], None] | None = None
    ) -> list[ChargeResult]:
        """Off-session charges, one result per request, in order (the settlement's calls).
        `pace` is called once before each provider call and blocks until it is allowed (the
        settlement's token bucket): a provider without a batch API makes the calls
        concurrently, each after its token, so pacing, not round trips, sets the rate."""

    def charge_status(self, *, provider_ref: str) -> ChargeResult:
        """Where a charge stands now (after the shopper authenticated, or to recover)."""

    def charge_find(self, *, idempotency_key: str, customer_ref: str) -> ChargeResult | None:
        """The charge made earlier with this key, or None if the provider never saw it: how
        the settlement resolves a commitment whose worker died after calling the provider."""

    def refund(self, *, provider_ref: str, amount_minor: int, idempotency_key: str) -> RefundResult:
        """Refund part or all of a succeeded charge."""

    def webhook_parse(self, *, payload: bytes, signature: str) -> ProviderEvent:
        """Verify the signature against the raw body (raises WebhookSignatureError)."""
