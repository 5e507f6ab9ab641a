"""The shopper's pre-order pages: the batches, a batch with its live progress and the reserve
form, the waitlist, and the shopper's reservations (change, cancel, pay after a failed
charge, confirm with the bank). Views parse, authorize, call services and selectors, render;
the rules live in preorders.services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orders.forms import AddressForm, CardForm
from payments.models import Payment, PaymentStatus
from payments.providers.base import CardError
from payments.providers.registry import provider_get
from payments.services import DECLINE_MESSAGE, payment_refresh
from preorders.forms import ReservationChangeForm, ReserveForm, WaitlistForm, variant_label
from preorders.models import Reservation, ReservationStatus
from preorders.selectors import (
    BatchPage,
    ShopperChoices,
    batch_by_slug,
    batch_for_page,
    batch_for_progress,
    batch_progress,
    batches_listed,
    batches_with_progress,
    reservation_for,
    reservation_payment_awaiting_action,
    reservation_state,
    reservations_of,
    reservations_priced,
    shopper_choices,
)
from preorders.services import (
    ADDRESS_FIELDS,
    reservation_cancel,
    reservation_change,
    reservation_deposit_refused,
    reservation_pay_again,
    reservation_reserve,
    waitlist_join,
)

BATCHES_PER_PAGE = 12
RESERVATIONS_PER_PAGE = 20


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _stripe_key() -> str:
    return settings.STRIPE_PUBLISHABLE_KEY if provider_get().name == "stripe" else ""


# --- batches ----------------------------------------------------------------------------------


@require_GET
def batch_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(batches_listed(), BATCHES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "preorders/index.html",
        {"page_obj": page, "batches": batches_with_progress(page.object_list)},
    )


def _reserve_forms(data, page: BatchPage, choices: ShopperChoices):
    form = ReserveForm(
        data,
        variants=page.variants,
        addresses=choices.addresses,
        max_quantity=page.batch.per_customer_limit,
    )
    return form, AddressForm(data, prefix="address"), CardForm(data, saved_cards=choices.cards)


def _render_detail(
    request: HttpRequest,
    page: BatchPage,
    *,
    choices: ShopperChoices | None = None,
    forms: tuple | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {"page": page, "batch": page.batch, "progress": page.progress}
    if request.user.is_authenticated and page.shows_waitlist:
        context["waitlist_form"] = WaitlistForm(variants=page.variants)
    if forms is not None or (request.user.is_authenticated and page.can_reserve):
        choices = choices or shopper_choices(user=request.user)
        form, address_form, card_form = forms or _reserve_forms(None, page, choices)
        uses_address_form = not (form.is_bound and form.data.get("saved_address"))
        context.update(
            form=form,
            address_form=address_form,
            card_form=card_form,
            saved_cards=choices.cards,
            has_saved_addresses=bool(choices.addresses),
            uses_address_form=uses_address_form,
            # "Check the details below" when fields are wrong; a refusal says why instead.
            check_details=form.is_bound
            and not form.non_field_errors()
            and bool(
                form.errors or card_form.errors or (uses_address_form and address_form.errors)
            ),
            # A fresh key each time the form is shown: the same form submitted twice
            # carries the same key and finds the first reservation.
            request_key=uuid.uuid4().hex,
            stripe_publishable_key=_stripe_key(),
        )
    return render(request, "preorders/detail.html", context, status=status)


@require_GET
def batch_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_detail(request, batch_for_page(slug=slug, user=request.user))


@require_GET
def batch_progress_fragment(request: HttpRequest, slug: str) -> HttpResponse:
    """The progress block alone, polled by htmx every 10 seconds by everyone watching an open
    batch: rendered without the site's context processors (no cart count, no menu), so a
    poll costs the batch and its tiers (and the session's user row when signed in)."""
    batch = batch_for_progress(slug=slug)
    html = render_to_string(
        "preorders/_progress.html", {"batch": batch, "progress": batch_progress(batch=batch)}
    )
    return HttpResponse(html)


@login_required
@require_http_methods(["GET", "POST"])
def reserve(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":  # back from signing in: the form is on the batch page
        return redirect(reverse("preorders:detail", kwargs={"slug": slug}) + "#reserve")
    page = batch_for_page(slug=slug, user=request.user)
    choices = shopper_choices(user=request.user)
    forms = _reserve_forms(request.POST, page, choices)
    form, address_form, card_form = forms
    if form.is_valid() and card_form.is_valid():
        saved_address = form.cleaned_data["saved_address"]
        if saved_address is not None:
            address = {key: getattr(saved_address, key) for key in ADDRESS_FIELDS}
        else:
            address = address_form.cleaned_data if address_form.is_valid() else None
        chosen = card_form.cleaned_data.get("saved_card")
        saved_card = next((card for card in choices.cards if card.pk == chosen), None)
        if chosen and saved_card is None:
            card_form.add_error("saved_card", "Choose one of your cards.")
        elif address is not None:
            variant, quantity = form.cleaned_data["variant"], form.cleaned_data["quantity"]
            try:
                outcome = reservation_reserve(
                    batch=page.batch,
                    user=request.user,
                    variant=variant,
                    quantity=quantity,
                    address=address,
                    request_key=form.cleaned_data["request_key"],
                    saved_card=saved_card,
                    card=None if saved_card else card_form.card_input(),
                )
            except CardError as exc:
                card_form.add_error(None, str(exc))
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                reservation = outcome.reservation
                if outcome.duplicate:  # the same form submitted again
                    messages.info(request, "You already sent this form: here is your reservation.")
                    return redirect(reservation.get_absolute_url())
                if outcome.needs_authentication:
                    return redirect("preorders:reservation_authenticate", pk=reservation.pk)
                messages.success(
                    request,
                    f"Reserved: {quantity} × {page.batch.product.name}"
                    f" ({variant_label(variant)}). We charge your card only if the batch"
                    " reaches its minimum.",
                )
                return redirect(reservation.get_absolute_url())
    return _render_detail(request, page, choices=choices, forms=forms, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def waitlist_join_view(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":  # back from signing in: the form is on the batch page
        return redirect(reverse("preorders:detail", kwargs={"slug": slug}) + "#reserve")
    batch = batch_by_slug(slug=slug)
    form = WaitlistForm(request.POST, variants=batch.product.active_variants)
    if not form.is_valid():
        messages.error(request, "Choose an option and a number of units to wait for.")
        return redirect(batch.get_absolute_url())
    try:
        entry = waitlist_join(
            batch=batch,
            user=request.user,
            variant=form.cleaned_data["variant"],
            quantity=form.cleaned_data["quantity"],
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(
            request,
            f"You're on the waitlist for {entry.quantity} × {variant_label(entry.variant)}."
            " If units are freed we'll email you and hold them for you for a while.",
        )
    return redirect(batch.get_absolute_url())


# --- the shopper's reservations -----------------------------------------------------------------


@login_required
@require_GET
def reservation_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(reservations_of(user=request.user), RESERVATIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "preorders/mine.html",
        {"page_obj": page, "reservations": reservations_priced(page.object_list)},
    )


@login_required
@require_GET
def reservation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = reservation_for(user=request.user, pk=pk)
    context = {
        "reservation": reservation,
        "batch": reservation.batch,
        # A deposit (or a charge) the shopper's bank still wants confirmed: a way back to it.
        "awaiting_action": reservation_payment_awaiting_action(reservation=reservation),
    }
    if reservation.is_changeable:
        context["change_form"] = ReservationChangeForm(
            initial={"variant": reservation.variant_id, "quantity": reservation.quantity},
            variants=reservation.batch.product.active_variants,
            max_quantity=reservation.batch.per_customer_limit,
        )
    return render(request, "preorders/reservation.html", context)


@login_required
@require_POST
def reservation_change_view(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = reservation_for(user=request.user, pk=pk)
    form = ReservationChangeForm(request.POST, variants=reservation.batch.product.active_variants)
    if not form.is_valid():
        messages.error(request, "Choose an option and at least one unit.")
        return redirect(reservation.get_absolute_url())
    variant, quantity = form.cleaned_data["variant"], form.cleaned_data["quantity"]
    try:
        outcome = reservation_change(
            reservation=reservation, user=request.user, variant=variant, quantity=quantity
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect(reservation.get_absolute_url())
    if outcome.needs_authentication:
        return redirect("preorders:reservation_authenticate", pk=reservation.pk)
    messages.success(request, f"Your reservation is now {quantity} × {variant_label(variant)}.")
    return redirect(reservation.get_absolute_url())


@login_required
@require_POST
def reservation_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    reservation = reservation_for(user=request.user, pk=pk)
    try:
        reservation_cancel(reservation=reservation, user=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "Your reservation is cancelled.")
    return redirect(reservation.get_absolute_url())


def _after_charge(request: HttpRequest, reservation: Reservation, payment: Payment):
    if payment.status == PaymentStatus.SUCCEEDED:
        messages.success(
            request,
            f"Thank you! Your pre-order of {reservation.batch.product.name} is paid; "
            "its order ships with the batch.",
        )
        return redirect(reservation.get_absolute_url())
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        if payment.saved_card:
            messages.info(
                request,
                f"Your bank still has to confirm this payment with {payment.saved_card}. "
                "Confirm it, or refuse it to pay with another card.",
            )
        return redirect("preorders:reservation_authenticate", pk=reservation.pk)
    if payment.status == PaymentStatus.PENDING and not payment.failure_code:
        messages.info(request, "Your payment is being confirmed; you will not be charged twice.")
        return redirect(reservation.get_absolute_url())
    return None


@login_required
@require_http_methods(["GET", "POST"])
def reservation_pay(request: HttpRequest, pk: int) -> HttpResponse:
    """Pay after a failed charge at the close, within the grace period."""
    reservation = reservation_for(user=request.user, pk=pk)
    if reservation.status != ReservationStatus.PAYMENT_FAILED:
        return redirect(reservation.get_absolute_url())
    choices = shopper_choices(user=request.user)
    card_form = CardForm(request.POST or None, saved_cards=choices.cards)
    if request.method == "POST" and card_form.is_valid():
        chosen = card_form.cleaned_data.get("saved_card")
        saved = next((card for card in choices.cards if card.pk == chosen), None)
        if chosen and saved is None:
            card_form.add_error("saved_card", "Choose one of your cards.")
        else:
            try:
                payment = reservation_pay_again(
                    reservation=reservation,
                    user=request.user,
                    saved_card=saved,
                    card_input=None if saved else card_form.card_input(),
                )
            except CardError as exc:
                card_form.add_error(None, str(exc))
            except ValidationError as exc:
                messages.error(request, _errors(exc))
                return redirect(reservation.get_absolute_url())
            else:
                response = _after_charge(request, reservation, payment)
                if response is not None:
                    return response
                card_form.add_error(None, payment.failure_message or DECLINE_MESSAGE)
    return render(
        request,
        "preorders/pay.html",
        {
            "reservation": reservation,
            "batch": reservation.batch,
            "card_form": card_form,
            "saved_cards": choices.cards,
            "stripe_publishable_key": _stripe_key(),
        },
        status=400 if request.method == "POST" else 200,
    )


def _after_authentication(request: HttpRequest, reservation: Reservation, payment: Payment):
    if payment.reference == reservation.payment_reference:
        response = _after_charge(request, reservation, payment)
        if response is not None:
            return response
        messages.error(request, payment.failure_message or DECLINE_MESSAGE)
        return redirect("preorders:reservation_pay", pk=reservation.pk)
    # A deposit: when reserving, or for the units a change added.
    reservation = reservation_state(pk=reservation.pk)
    if payment.status == PaymentStatus.SUCCEEDED:
        if reservation.status != ReservationStatus.HELD:
            messages.error(
                request,
                "Your bank confirmed the deposit after the reservation was released, so the"
                " deposit is refunded to your card.",
            )
        else:
            messages.success(request, "Deposit paid: your units are reserved.")
        return redirect(reservation.get_absolute_url())
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        messages.info(request, "Your bank has not confirmed the deposit yet.")
        return redirect(reservation.get_absolute_url())
    try:
        reservation = reservation_deposit_refused(reservation=reservation, user=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect(reservation.get_absolute_url())
    message = payment.failure_message or DECLINE_MESSAGE
    if reservation.status == ReservationStatus.CANCELLED:
        messages.error(request, f"The deposit was not paid, so nothing was reserved. {message}")
        return redirect(reservation.batch.get_absolute_url())
    messages.error(
        request,
        f"The deposit for the extra units was not paid: you have {reservation.quantity}"
        f" reserved. {message}",
    )
    return redirect(reservation.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def reservation_authenticate(request: HttpRequest, pk: int) -> HttpResponse:
    """3-D Secure for the reservation's charge or deposit. Local provider: a stand-in for
    the bank's page (approve or refuse). Stripe: Stripe.js shows the bank's page, then
    returns here and we ask Stripe."""
    reservation = reservation_for(user=request.user, pk=pk)
    payment = reservation_payment_awaiting_action(reservation=reservation)
    if payment is None:
        messages.info(request, "There is no payment waiting for your bank.")
        return redirect(reservation.get_absolute_url())
    provider = provider_get(payment.provider)
    if request.method == "POST" and provider.name == "local":
        provider.authentication_complete(
            provider_ref=payment.provider_ref, approved=request.POST.get("decision") == "approve"
        )
        return _after_authentication(request, reservation, payment_refresh(payment=payment))
    if request.GET.get("payment_intent"):  # back from Stripe.js
        return _after_authentication(request, reservation, payment_refresh(payment=payment))
    return render(
        request,
        "preorders/authenticate.html",
        {
            "reservation": reservation,
            "batch": reservation.batch,
            "payment": payment,
            "is_deposit": payment.reference == reservation.deposit_reference,
            "provider": provider.name,
            "stripe_publishable_key": _stripe_key(),
        },
    )
