"""The payment pages every conditional sale shares (and orders too): pay again after a
failed charge, and the bank's 3-D Secure check, rendered with one template set
(templates/payments/). A feature's view finds the object (its URL, its permission check)
and hands it here with a `PayPage` or an `AuthPage` saying what the page is about; the
flow (which card, the provider call, what the outcome means) is here, once.

Views only: the rules they call are payments.commitments.lifecycle's."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from payments.commitments.lifecycle import commitment_pay_again
from payments.commitments.models import CommitmentStatus
from payments.forms import CardForm
from payments.models import Payment, PaymentStatus, SavedCard
from payments.providers.base import CardError
from payments.providers.registry import provider_get
from payments.services import DECLINE_MESSAGE, payment_refresh


def stripe_publishable_key() -> str:
    return settings.STRIPE_PUBLISHABLE_KEY if provider_get().name == "stripe" else ""


def cards_of(user) -> list[SavedCard]:
    return list(SavedCard.objects.filter(user=user, deleted_at=None, provider=provider_get().name))


@dataclass(frozen=True)
class PayPage:
    """What templates/payments/pay.html shows around the card form. The three templates
    are the feature's own fragments (rendered with the whole context)."""

    title: str
    crumbs: list[tuple[str, str]]  # (label, url); the last one is the page itself: ("Pay", "")
    action: str  # the form's URL
    amount: Decimal
    currency: str
    meta_template: str  # the status line under the heading
    lead_template: str  # why this payment is asked for
    summary_template: str  # the lines and totals beside the form
    back_url: str
    back_label: str
    heading: str = ""
    summary_title: str = ""
    keeps_card: bool = False  # a commitment's card is kept: no "save this card"
    extra: dict = field(default_factory=dict)  # more context for the fragments


@dataclass(frozen=True)
class AuthPage:
    """What templates/payments/authenticate.html says the payment is for."""

    purpose: str  # "order FH-1234", "the deposit on your pre-order of Nimbus X2"
    back_url: str
    back_label: str


def pay_render(
    request: HttpRequest, *, page: PayPage, card_form, saved_cards, context: dict, status=200
) -> HttpResponse:
    return render(
        request,
        "payments/pay.html",
        {
            **context,
            **page.extra,
            "page": page,
            "card_form": card_form,
            "saved_cards": saved_cards,
            "keeps_card": page.keeps_card,
            "stripe_publishable_key": stripe_publishable_key(),
        },
        status=status,
    )


def authenticate_render(
    request: HttpRequest, *, page: AuthPage, payment: Payment, context: dict
) -> HttpResponse:
    return render(
        request,
        "payments/authenticate.html",
        {
            **context,
            "page": page,
            "payment": payment,
            "provider": provider_get(payment.provider).name,
            "stripe_publishable_key": stripe_publishable_key(),
        },
    )


def bank_answer(request: HttpRequest, payment: Payment) -> Payment | None:
    """The bank's answer on the authenticate page, if this request brings one: the local
    provider's stand-in buttons (POST), or Stripe.js returning here. None: show the page."""
    provider = provider_get(payment.provider)
    if request.method == "POST" and provider.name == "local":
        provider.authentication_complete(
            provider_ref=payment.provider_ref, approved=request.POST.get("decision") == "approve"
        )
        return payment_refresh(payment=payment)
    if request.GET.get("payment_intent"):  # back from Stripe.js
        return payment_refresh(payment=payment)
    return None


def chosen_card(card_form, saved_cards) -> tuple[bool, SavedCard | None]:
    """(valid, the saved card chosen or None for a typed one); a card that is not the
    shopper's is a form error."""
    chosen = card_form.cleaned_data.get("saved_card")
    saved = next((card for card in saved_cards if card.pk == chosen), None)
    if chosen and saved is None:
        card_form.add_error("saved_card", _("Choose one of your cards."))
        return False, None
    return True, saved


# --- commitments -------------------------------------------------------------------------------


def commitment_payment_awaiting_action(*, book, commitment) -> Payment | None:
    """The commitment's payment that waits for the shopper's bank: the charge after the
    close, else the latest deposit while what it is for still waits for it (after that, a
    late confirmation would only be refunded)."""
    charge = book.reference(commitment.pk)
    references = [charge]
    if commitment.status == CommitmentStatus.HELD and commitment.deposit_due_at is not None:
        references.append(book.deposit_reference(commitment.pk))
    return (
        Payment.objects.filter(reference__in=references, status=PaymentStatus.REQUIRES_ACTION)
        .annotate(
            is_charge=Case(
                When(reference=charge, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("is_charge", "-created_at", "-id")
        .first()
    )


def commitment_after_charge(request: HttpRequest, *, book, commitment, payment: Payment):
    """Where a pay-again or an authentication of the charge leads; None: it was declined."""
    if payment.status == PaymentStatus.SUCCEEDED:
        messages.success(request, book.text("paid_again_message", commitment))
        return redirect(commitment.get_absolute_url())
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        if payment.saved_card:
            messages.info(
                request,
                _(
                    "Your bank still has to confirm this payment with %(card)s. "
                    "Confirm it, or refuse it to pay with another card."
                )
                % {"card": payment.saved_card},
            )
        return redirect(book.authenticate_url(commitment))
    if payment.status == PaymentStatus.PENDING and not payment.failure_code:
        messages.info(request, _("Your payment is being confirmed; you will not be charged twice."))
        return redirect(commitment.get_absolute_url())
    return None


def commitment_pay_view(
    request: HttpRequest, *, book, commitment, page: PayPage, context: dict
) -> HttpResponse:
    """Pay again in the fix-payment window after a failed charge at the close."""
    if commitment.status != CommitmentStatus.PAYMENT_FAILED:
        return redirect(commitment.get_absolute_url())
    saved_cards = cards_of(request.user)
    card_form = CardForm(request.POST or None, saved_cards=saved_cards)
    if request.method == "POST" and card_form.is_valid():
        valid, saved = chosen_card(card_form, saved_cards)
        if valid:
            try:
                payment = commitment_pay_again(
                    book=book,
                    commitment=commitment,
                    user=request.user,
                    saved_card=saved,
                    card_input=None if saved else card_form.card_input(),
                )
            except CardError as exc:
                card_form.add_error(None, str(exc))
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(commitment.get_absolute_url())
            else:
                response = commitment_after_charge(
                    request, book=book, commitment=commitment, payment=payment
                )
                if response is not None:
                    return response
                card_form.add_error(None, payment.failure_message or DECLINE_MESSAGE)
    return pay_render(
        request,
        page=page,
        card_form=card_form,
        saved_cards=saved_cards,
        context=context,
        status=400 if request.method == "POST" else 200,
    )


def commitment_authenticate_view(
    request: HttpRequest, *, book, commitment, page: AuthPage, context: dict, after_deposit
) -> HttpResponse:
    """3-D Secure for the commitment's charge or deposit. Local provider: a stand-in for the
    bank's page (approve or refuse). Stripe: Stripe.js shows the bank's page, then returns
    here and we ask Stripe. `after_deposit(request, payment)` is the feature's answer to a
    deposit's outcome (what a refused one gives back is its decision)."""
    payment = commitment_payment_awaiting_action(book=book, commitment=commitment)
    if payment is None:
        messages.info(request, _("There is no payment waiting for your bank."))
        return redirect(commitment.get_absolute_url())
    answered = bank_answer(request, payment)
    if answered is None:
        return authenticate_render(request, page=page, payment=payment, context=context)
    if answered.reference != book.reference(commitment.pk):
        return after_deposit(request, answered)
    response = commitment_after_charge(request, book=book, commitment=commitment, payment=answered)
    if response is not None:
        return response
    messages.error(request, answered.failure_message or DECLINE_MESSAGE)
    return redirect(book.pay_url(commitment))
