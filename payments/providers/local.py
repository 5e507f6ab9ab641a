"""The embedded provider for development, the demo and most tests: no network, no keys.
Card numbers behave like Stripe's test cards. It keeps its own cards and charges in
LocalCard / LocalCharge, never a full card number."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from payments.models import LocalCard, LocalCharge
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
from rowsql.arrays import array_cursor

# Stripe's test numbers and what they do here.
BEHAVIOURS = {
    "4242424242424242": "succeed",
    "5555555555554444": "succeed",
    "4000000000000002": "decline_on_save",
    "4000000000000341": "decline_on_charge",
    "4000002760003184": "authenticate",
    "4000000000009995": "insufficient_funds",
}
DECLINE_MESSAGES = {
    "decline_on_save": ("card_declined", "Your card was declined."),
    "decline_on_charge": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("insufficient_funds", "Your card has insufficient funds."),
}


def _luhn_ok(number: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if (
        number[:2] in {"51", "52", "53", "54", "55"}
        or number[:4].isdigit()
        and (2221 <= int(number[:4]) <= 2720)
    ):
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


# A chunk's charges in one INSERT: each request's card by its token (an unknown card makes no
# charge), its status from the card's behaviour.
_CHARGES_SQL = """
INSERT INTO payments_localcharge (charge_id, card_id, amount_minor, currency, status,
  idempotency_key, amount_refunded_minor, created_at)
SELECT v.charge_id, k.id, v.amount_minor, v.currency,
  CASE k.behaviour WHEN 'succeed' THEN 'succeeded' WHEN 'authenticate' THEN 'requires_action'
    ELSE 'failed' END,
  v.idempotency_key, 0, %(now)s
FROM unnest(%(charge_ids)s::varchar[], %(cards)s::varchar[], %(amounts)s::bigint[],
  %(currencies)s::varchar[], %(keys)s::varchar[])
  AS v(charge_id, card_ref, amount_minor, currency, idempotency_key)
JOIN payments_localcard AS k ON k.token = v.card_ref
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING idempotency_key, charge_id, status, (SELECT behaviour FROM payments_localcard
  WHERE id = card_id)
"""

# What the keys the INSERT skipped hold: charges made before (a retry) or, rarely, by a
# concurrent call whose rows the INSERT's snapshot did not see. Read in a statement of its
# own, so that it sees those.
_CHARGES_FOUND_SQL = """
SELECT c.idempotency_key, c.charge_id, c.status, k.behaviour
FROM payments_localcharge AS c JOIN payments_localcard AS k ON k.id = c.card_id
WHERE c.idempotency_key = ANY(%s::varchar[])
"""


class LocalProvider:
    name = "local"

    def customer_ensure(self, *, user_id: int, email: str, existing_ref: str | None) -> str:
        return existing_ref or f"lcus_{user_id}"

    def card_save(self, *, customer_ref: str, card: dict) -> CardDetails:
        number = "".join(ch for ch in str(card.get("number", "")) if ch.isdigit())
        if not 12 <= len(number) <= 19 or not _luhn_ok(number):
            raise CardError("That card number is not valid.")
        try:
            exp_month, exp_year = int(card.get("exp_month")), int(card.get("exp_year"))
        except (TypeError, ValueError) as exc:
            raise CardError("Enter the card's expiry month and year.") from exc
        if exp_year < 100:
            exp_year += 2000
        today = date.today()
        if not 1 <= exp_month <= 12 or (exp_year, exp_month) < (today.year, today.month):
            raise CardError("Your card has expired.")
        cvc = str(card.get("cvc", ""))
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise CardError("Your card's security code is not valid.")
        behaviour = BEHAVIOURS.get(number, "succeed")
        if behaviour == "decline_on_save":
            raise CardError("Your card was declined.")
        stored = LocalCard.objects.create(
            token=f"lcard_{secrets.token_hex(12)}",
            brand=_brand(number),
            last4=number[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
            behaviour=behaviour,
        )
        return CardDetails(
            provider_ref=stored.token,
            brand=stored.brand,
            last4=stored.last4,
            exp_month=exp_month,
            exp_year=exp_year,
        )

    @transaction.atomic
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
        existing = LocalCharge.objects.filter(idempotency_key=idempotency_key).first()
        if existing:  # like Stripe: the same key answers the same result
            return self._result(existing)
        card = LocalCard.objects.filter(token=card_ref).first()
        if card is None:
            return ChargeResult(
                ChargeOutcome.DECLINED, message="This card is not on file.", code="card_not_found"
            )
        status = {"succeed": "succeeded", "authenticate": "requires_action"}.get(
            card.behaviour, "failed"
        )
        try:
            with transaction.atomic():
                charge = LocalCharge.objects.create(
                    charge_id=f"lch_{secrets.token_hex(12)}",
                    card=card,
                    amount_minor=amount_minor,
                    currency=currency.upper(),
                    status=status,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            charge = LocalCharge.objects.get(idempotency_key=idempotency_key)
        return self._result(charge)

    @transaction.atomic
    def charge_many(
        self, *, requests: list[ChargeRequest], pace: Callable[[], None] | None = None
    ) -> list[ChargeResult]:
        """The same as `charge` per request, in two statements for all of them (a token
        taken from `pace` for each first): one INSERT of the charges (a key already used
        keeps its first charge, like Stripe), one SELECT of what each key holds now."""
        if not requests:
            return []
        if pace is not None:
            for _ in requests:
                pace()
        keys = [r.idempotency_key for r in requests]
        with array_cursor() as cursor:
            cursor.execute(
                _CHARGES_SQL,
                {
                    "charge_ids": [f"lch_{secrets.token_hex(12)}" for _ in requests],
                    "cards": [r.card_ref for r in requests],
                    "amounts": [r.amount_minor for r in requests],
                    "currencies": [r.currency.upper() for r in requests],
                    "keys": keys,
                    "now": timezone.now(),
                },
            )
            charges = {key: row for key, *row in cursor.fetchall()}
            skipped = [key for key in keys if key not in charges]
            if skipped:  # used before, or a card not on file
                cursor.execute(_CHARGES_FOUND_SQL, [skipped])
                charges.update({key: row for key, *row in cursor.fetchall()})
        return [
            self._result_of(*charges[key])
            if key in charges
            else ChargeResult(
                ChargeOutcome.DECLINED, message="This card is not on file.", code="card_not_found"
            )
            for key in keys
        ]

    def _result(self, charge: LocalCharge) -> ChargeResult:
        return self._result_of(charge.charge_id, charge.status, charge.card.behaviour)

    def _result_of(self, charge_id: str, status: str, behaviour: str) -> ChargeResult:
        if status == "succeeded":
            return ChargeResult(ChargeOutcome.SUCCEEDED, provider_ref=charge_id)
        if status == "requires_action":
            return ChargeResult(
                ChargeOutcome.NEEDS_ACTION,
                provider_ref=charge_id,
                message="Your bank asks you to confirm this payment.",
                code="authentication_required",
            )
        code, message = DECLINE_MESSAGES.get(
            behaviour, ("card_declined", "Your card was declined.")
        )
        return ChargeResult(
            ChargeOutcome.DECLINED, provider_ref=charge_id, message=message, code=code
        )

    def charge_status(self, *, provider_ref: str) -> ChargeResult:
        charge = LocalCharge.objects.select_related("card").filter(charge_id=provider_ref).first()
        if charge is None:
            return ChargeResult(ChargeOutcome.ERROR, message="Unknown charge")
        return self._result(charge)

    def charge_find(self, *, idempotency_key: str, customer_ref: str) -> ChargeResult | None:
        charge = (
            LocalCharge.objects.select_related("card")
            .filter(idempotency_key=idempotency_key)
            .first()
        )
        return None if charge is None else self._result(charge)

    def authentication_complete(self, *, provider_ref: str, approved: bool) -> ChargeResult:
        """The local stand-in for the bank's 3-D Secure page."""
        LocalCharge.objects.filter(charge_id=provider_ref, status="requires_action").update(
            status="succeeded" if approved else "failed"
        )
        return self.charge_status(provider_ref=provider_ref)

    def refund(self, *, provider_ref: str, amount_minor: int, idempotency_key: str) -> RefundResult:
        updated = LocalCharge.objects.filter(
            charge_id=provider_ref,
            status="succeeded",
            amount_minor__gte=F("amount_refunded_minor") + amount_minor,
        ).update(amount_refunded_minor=F("amount_refunded_minor") + amount_minor)
        if not updated:
            return RefundResult(False, message="Nothing left to refund on this charge.")
        return RefundResult(True, provider_ref=f"lre_{secrets.token_hex(8)}")

    def webhook_parse(self, *, payload: bytes, signature: str) -> ProviderEvent:
        raise WebhookSignatureError("The local provider sends no webhooks.")
