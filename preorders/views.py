"""The shopper's pre-order pages: the batches, a batch with its live progress and the reserve
form, the waitlist, and the shopper's reservations (change, cancel, pay after a failed
charge, confirm with the bank). Views parse, authorize, call services and selectors, render;
the rules live in preorders.services."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from catalog.listing_version import LISTING_VERSION, PRODUCT_VERSION
from config.page_cache import PageKey, cached_page, page_state
from config.version_tokens import current_tokens
from orders.forms import AddressForm, CardForm
from orders.page_versions import tokens_and_cart_count
from payments.commitments.pages import (
    AuthPage,
    PayPage,
    commitment_authenticate_view,
    commitment_pay_view,
    stripe_publishable_key,
)
from payments.models import Payment, PaymentStatus
from payments.providers.base import CardError
from payments.services import DECLINE_MESSAGE
from preorders.batch_version import BATCH_STATIC, BATCH_VERSION
from preorders.book import preorder_book
from preorders.forms import ReservationChangeForm, ReserveForm, WaitlistForm, variant_label
from preorders.models import (
    PreorderBatch,
    Reservation,
    ReservationStatus,
    WaitlistStatus,
)
from preorders.selectors import (
    BatchPage,
    FanPart,
    ShopperChoices,
    batch_by_slug,
    batch_for_page,
    batch_for_progress,
    batch_for_reserve,
    batch_page_ids,
    batch_progress,
    batches_listed,
    batches_with_progress,
    fan_part,
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
    reservation_reserve,
    waitlist_join,
)

BATCHES_PER_PAGE = 12
RESERVATIONS_PER_PAGE = 20


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _stripe_key() -> str:
    return stripe_publishable_key()


# --- batches ----------------------------------------------------------------------------------


@require_GET
def batch_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(batches_listed(), BATCHES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "preorders/index.html",
        {"page_obj": page, "batches": batches_with_progress(page.object_list)},
    )


def _reserve_forms(data, batch: PreorderBatch, choices: ShopperChoices):
    """The batch comes with its product's active options (batch_for_page, batch_for_reserve)."""
    form = ReserveForm(
        data,
        variants=batch.product.active_variants,
        addresses=choices.addresses,
        max_quantity=batch.per_customer_limit,
    )
    return form, AddressForm(data, prefix="address"), CardForm(data, saved_cards=choices.cards)


def _form_context(request: HttpRequest, page: BatchPage, choices, forms) -> dict:
    """The reserve form's context: the fan's saved cards and addresses, and a fresh key."""
    choices = choices or shopper_choices(user=request.user)
    form, address_form, card_form = forms or _reserve_forms(None, page.batch, choices)
    uses_address_form = not (form.is_bound and form.data.get("saved_address"))
    return {
        "form": form,
        "address_form": address_form,
        "card_form": card_form,
        "saved_cards": choices.cards,
        "has_saved_addresses": bool(choices.addresses),
        "uses_address_form": uses_address_form,
        # "Check the details below" when fields are wrong; a refusal says why instead.
        "check_details": form.is_bound
        and not form.non_field_errors()
        and bool(form.errors or card_form.errors or (uses_address_form and address_form.errors)),
        # A fresh key each time the form is shown: the same form submitted twice carries
        # the same key and finds the first reservation.
        "request_key": uuid.uuid4().hex,
    }


def _render_detail(
    request: HttpRequest,
    page: BatchPage,
    *,
    choices: ShopperChoices | None = None,
    forms: tuple | None = None,
    status: int = 200,
    with_form: bool = False,
) -> HttpResponse:
    """The batch page. The reserve form itself only when asked (`with_form`: the no-JS
    form page) or shown again with its errors (`forms`); else a button opens it (an htmx
    fragment), so the page is the same for every fan but their own reservations."""
    context = {
        "page": page,
        "batch": page.batch,
        "progress": page.progress,
        "stripe_publishable_key": _stripe_key(),
    }
    if request.user.is_authenticated and page.shows_waitlist:
        context["waitlist_form"] = WaitlistForm(variants=page.variants)
    if forms is not None or (with_form and page.can_reserve):
        context.update(_form_context(request, page, choices, forms))
    return render(request, "preorders/detail.html", context, status=status)


BATCH_PAGE_SECONDS = 30  # what no token names: the countdown's minute, the fan club's count
MINE_MARKER = "<!--fh:preorder-mine-->"
WAITLIST_MARKER = "<!--fh:preorder-waitlist-->"

# slug -> (batch id, product id, the slug map's token when read): a batch page finds its
# batch without a query, one round trip to the cache for its tokens.
_batch_ids: dict[str, tuple[int, int, str]] = {}


def _batch_tokens(request: HttpRequest, batch_id: int, product_id: int) -> list[str]:
    """The slug map's, the batch's (columns, tiers), the product's and the catalogue's; a
    signed-in fan's header cart count in the same round trip."""
    tokens = (
        (BATCH_STATIC, ""),
        (BATCH_VERSION, batch_id),
        (PRODUCT_VERSION, product_id),
        (LISTING_VERSION, ""),
    )
    if request.user.is_authenticated:
        return tokens_and_cart_count(request, *tokens)
    return current_tokens(*tokens)


def _batch_versions(request: HttpRequest, slug: str) -> tuple[int, list[str]] | None:
    known = _batch_ids.get(slug)
    if known is not None:
        batch_id, product_id, slugs_then = known
        versions = _batch_tokens(request, batch_id, product_id)
        if versions[0] == slugs_then:
            return batch_id, versions
    slugs = BATCH_STATIC.current()  # before the row: a change meanwhile retires it again
    found = batch_page_ids(slug=slug)
    if found is None:
        return None
    if len(_batch_ids) >= 10_000:
        _batch_ids.clear()
    _batch_ids[slug] = (*found, slugs)
    return found[0], _batch_tokens(request, *found)


def _fan_class(fan: FanPart) -> str:
    """What of the fan's own part changes the shared page: a waitlist place, an offer."""
    entry = fan.waitlist_entry
    if entry is None:
        return "-"
    offered = (
        entry.status == WaitlistStatus.OFFERED
        and entry.offer_expires_at is not None
        and entry.offer_expires_at > timezone.now()
    )
    return "offered" if offered else "waiting"


def _batch_key(request: HttpRequest, slug: str) -> PageKey | None:
    """A batch page is named by the batch's, its product's and the catalogue's tokens (the
    services retire them), and for a signed-in fan by whether they wait or hold an offer:
    one rendering for visitors, one per such class for fans, their reservations and their
    waitlist place filled in (`_batch_overlay`, from one query)."""
    if request.GET:
        return None
    found = _batch_versions(request, slug)
    if found is None:
        return None  # the view's 404
    batch_id, versions = found
    if not request.user.is_authenticated:
        return PageKey(parts=tuple(versions))
    fan = fan_part(batch_id=batch_id, user=request.user)
    return PageKey(parts=(*versions, _fan_class(fan)), state=fan)


_MEMO_SIZE = 4096
_mine_memo: dict[tuple, tuple[str, str]] = {}


def _fan_html(fan: FanPart) -> tuple[str, str]:
    """The fan's reservations and waitlist place, rendered once per process and content."""
    entry, offered = fan.waitlist_entry, _fan_class(fan) == "offered"
    # The rows as read (no instances built when the memo has them); the time zone and the
    # language are how their dates and labels are shown.
    key = (get_language(), timezone.get_current_timezone_name(), repr((fan.rows, offered)))
    html = _mine_memo.get(key)
    if html is None:
        if len(_mine_memo) >= _MEMO_SIZE:
            _mine_memo.clear()
        context = {"reservations": fan.reservations, "entry": entry, "has_offer": offered}
        html = _mine_memo[key] = (
            render_to_string("preorders/_mine.html", context) if fan.reservations else "",
            render_to_string("preorders/_waitlist_place.html", context) if entry else "",
        )
    return html


def _batch_overlay(request: HttpRequest, html: str, fan: FanPart | None) -> str:
    if fan is None:  # a visitor's page has no marker
        return html
    mine, place = _fan_html(fan)
    return html.replace(MINE_MARKER, mine, 1).replace(WAITLIST_MARKER, place, 1)


@require_GET
@cached_page(key=_batch_key, overlay=_batch_overlay, seconds=BATCH_PAGE_SECONDS)
def batch_detail(request: HttpRequest, slug: str) -> HttpResponse:
    fan = page_state(request)
    return _render_detail(request, batch_for_page(slug=slug, user=request.user, fan=fan))


@login_required
@require_GET
def reserve_form(request: HttpRequest, slug: str) -> HttpResponse:
    """The reserve form, with the fan's saved cards and addresses and a fresh request key:
    an htmx fragment when the fan opens it on the batch page (its only per-fan reads);
    without JavaScript, the batch page with the form in place (never cached)."""
    if not request.htmx:
        return _render_detail(request, batch_for_page(slug=slug, user=request.user), with_form=True)
    batch = batch_by_slug(slug=slug)
    progress = batch_progress(batch=batch)
    # The waitlist offer matters only to a full batch.
    fan = fan_part(batch_id=batch.pk, user=request.user) if progress.is_full else FanPart()
    page = BatchPage(
        batch=batch,
        progress=progress,
        variants=batch.product.active_variants,
        images=[],
        community=None,
        my_reservations=list(fan.reservations),
        waitlist_entry=fan.waitlist_entry,
    )
    if not page.can_reserve:  # closed meanwhile: the page says why
        response = HttpResponse(status=204)
        response["HX-Redirect"] = batch.get_absolute_url()
        return response
    context = {
        "page": page,
        "batch": batch,
        "progress": progress,
        "stripe_publishable_key": _stripe_key(),
        **_form_context(request, page, None, None),
    }
    return render(request, "preorders/_reserve_form.html", context)


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


def _reserve_answer(request: HttpRequest) -> str:
    """How the reserve POST is answered: "json" (a script asked for JSON), "htmx" (a fragment
    swapped into the page) or "page" (a plain form: a redirect and a flash message)."""
    if request.htmx:
        return "htmx"
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return "json"
    return "page"


def _reserved(request: HttpRequest, answer: str, outcome, text: str) -> HttpResponse:
    """The reservation is committed: a fragment or JSON says so at once (no flash message to
    store, no redirect to follow); a plain form is sent to the reservation with the message."""
    reservation = outcome.reservation
    url = reservation.get_absolute_url()
    if answer == "json":
        return JsonResponse(
            {
                "reserved": True,
                "duplicate": outcome.duplicate,
                "id": reservation.pk,
                "url": url,
                "message": text,
            },
            status=200 if outcome.duplicate else 201,
        )
    if answer == "htmx":
        return render(request, "preorders/_reserved.html", {"url": url, "message": text})
    (messages.info if outcome.duplicate else messages.success)(request, text)
    return redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def reserve(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "GET":  # back from signing in: the form is on the batch page
        return redirect(reverse("preorders:detail", kwargs={"slug": slug}) + "#reserve")
    # A hot drop posts thousands of these a second: only what a reservation needs is
    # fetched (the batch and its options from this process's copy, the posted card and
    # address); the rest of the page only when the form is shown again.
    batch = batch_for_reserve(slug=slug)
    posted = shopper_choices(user=request.user, posted=request.POST)
    answer = _reserve_answer(request)
    form = ReserveForm(
        request.POST,
        variants=batch.product.active_variants,
        addresses=posted.addresses,
        max_quantity=batch.per_customer_limit,
    )
    address_form = AddressForm(request.POST, prefix="address")
    # The posted saved card, found among the shopper's own usable ones, is the card: its
    # form (the fields of a typed card, unused then) is built only when there is none.
    saved_card = posted.cards[0] if posted.cards else None
    card_form = None if saved_card else CardForm(request.POST, saved_cards=posted.cards)
    if form.is_valid() and (card_form is None or card_form.is_valid()):
        saved_address = form.cleaned_data["saved_address"]
        if saved_address is not None:
            address = {key: getattr(saved_address, key) for key in ADDRESS_FIELDS}
        else:
            address = address_form.cleaned_data if address_form.is_valid() else None
        if address is not None:
            variant, quantity = form.cleaned_data["variant"], form.cleaned_data["quantity"]
            try:
                outcome = reservation_reserve(
                    batch=batch,
                    user=request.user,
                    variant=variant,
                    quantity=quantity,
                    address=address,
                    request_key=form.cleaned_data["request_key"],
                    saved_card=saved_card,
                    card=None if saved_card else card_form.card_input(),
                )
            except CardError as exc:
                card_form = card_form or CardForm(request.POST, saved_cards=posted.cards)
                card_form.add_error(None, str(exc))
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                if outcome.duplicate:  # the same form submitted again
                    return _reserved(
                        request,
                        answer,
                        outcome,
                        "You already sent this form: here is your reservation.",
                    )
                if outcome.needs_authentication:
                    url = reverse(
                        "preorders:reservation_authenticate", args=[outcome.reservation.pk]
                    )
                    if answer == "json":
                        return JsonResponse({"reserved": False, "authenticate": url}, status=202)
                    return HttpResponseClientRedirect(url) if answer == "htmx" else redirect(url)
                return _reserved(
                    request,
                    answer,
                    outcome,
                    f"Reserved: {quantity} × {batch.product.name}"
                    f" ({variant_label(variant)}). We charge your card only if the batch"
                    " reaches its minimum.",
                )
    checked = (form, address_form, card_form or CardForm(request.POST, saved_cards=posted.cards))
    if answer == "json":
        errors = {
            (f"address-{name}" if part is address_form else name): list(found)
            for part in checked
            if part is not address_form or not form.cleaned_data.get("saved_address")
            for name, found in part.errors.items()
        }
        return JsonResponse({"reserved": False, "errors": errors}, status=400)
    page = batch_for_page(slug=slug, user=request.user)
    # Shown again with all the shopper's cards and addresses to choose from, and the errors
    # found (the same with all of them: those posted were among the ones fetched).
    choices = shopper_choices(user=request.user)
    shown = _reserve_forms(request.POST, page.batch, choices)
    for again, found in zip(shown, checked, strict=True):
        again.cleaned_data, again._errors = getattr(found, "cleaned_data", {}), found.errors
    return _render_detail(request, page, choices=choices, forms=shown, status=400)


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


@login_required
@require_http_methods(["GET", "POST"])
def reservation_pay(request: HttpRequest, pk: int) -> HttpResponse:
    """Pay after a failed charge at the close, within the grace period (the engine's page)."""
    reservation = reservation_for(user=request.user, pk=pk)
    batch = reservation.batch
    return commitment_pay_view(
        request,
        book=preorder_book(),
        commitment=reservation,
        context={"reservation": reservation, "batch": batch},
        page=PayPage(
            title=f"Pay for your pre-order of {batch.product.name}",
            heading="Pay for your pre-order",
            crumbs=[
                ("Your pre-orders", reverse("preorders:mine")),
                (f"Reservation {reservation.pk}", reservation.get_absolute_url()),
                ("Pay", ""),
            ],
            action=reverse("preorders:reservation_pay", args=[reservation.pk]),
            amount=reservation.amount_charged or 0,
            currency=batch.currency,
            meta_template="preorders/_pay_meta.html",
            lead_template="preorders/_pay_lead.html",
            summary_template="preorders/_pay_summary.html",
            summary_title=f"Reservation {reservation.pk}",
            back_url=reservation.get_absolute_url(),
            back_label="Back to the reservation",
            keeps_card=True,
        ),
    )


def _after_deposit(request: HttpRequest, reservation: Reservation, payment: Payment):
    """The bank answered about a deposit: when reserving, or for the units a change added."""
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
    """3-D Secure for the reservation's charge or deposit (the engine's page)."""
    reservation = reservation_for(user=request.user, pk=pk)
    batch = reservation.batch
    waiting = reservation_payment_awaiting_action(reservation=reservation)
    is_deposit = waiting is not None and waiting.reference == reservation.deposit_reference
    name = batch.product.name
    return commitment_authenticate_view(
        request,
        book=preorder_book(),
        commitment=reservation,
        context={"reservation": reservation, "batch": batch},
        page=AuthPage(
            purpose=(
                f"the deposit on your pre-order of {name}"
                if is_deposit
                else f"your pre-order of {name}"
            ),
            back_url=reservation.get_absolute_url(),
            back_label="Back to your reservation",
        ),
        after_deposit=lambda request, payment: _after_deposit(request, reservation, payment),
    )
