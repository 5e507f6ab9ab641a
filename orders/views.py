from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.listing_version import PRODUCT_VERSION
from catalog.models import ProductStatus, Variant
from config.page_cache import PageKey, cached_page
from config.version_tokens import current_tokens
from orders.carts import cart_for_request, code_client_keys
from orders.forms import AddressForm, AddToCartForm, CardForm, CartQuantityForm, CheckoutForm
from orders.models import Order, OrderStatus
from orders.page_versions import cart_page_versions, orders_version
from orders.pricing import checkout_totals
from orders.selectors import (
    cart_page_state,
    cart_summary,
    checkout_totals_by_method,
    order_for,
    order_list_for,
    shipping_options,
)
from orders.services import (
    CheckoutError,
    cart_add,
    cart_code_apply,
    cart_code_remove,
    cart_set_quantity,
    checkout_submit,
    order_checked_out_from,
    order_pay,
    order_payment_in_progress,
)
from payments.commitments.pages import (
    AuthPage,
    PayPage,
    authenticate_render,
    bank_answer,
    pay_render,
)
from payments.models import Payment, PaymentStatus, SavedCard
from payments.providers.base import CardError
from payments.providers.registry import provider_get
from payments.services import CardInUseError, card_delete, card_save

ADDRESS_FIELDS = ["full_name", "line1", "line2", "city", "postal_code", "country", "phone"]


# (fan, their cart's token) -> cart_page_state. A token names one state of the cart (every
# change retires it), so a copy kept here is as fresh as the token.
_cart_states: dict[tuple[int, str], tuple[bool, tuple[int, ...]]] = {}


def _cart_key(request: HttpRequest) -> PageKey | None:
    """A fan's cart page is named by them, their cart's token, the catalogue's version
    (brand names, images) and the versions of the products in it (prices, stock): no query
    once its state is known here. Rendered each time: a visitor's cart (their session's),
    and a cart with a discount code (its quote follows the code's uses and dates)."""
    user = request.user
    if not user.is_authenticated:
        return None
    cart_token, listing = cart_page_versions(request)
    state = _cart_states.get((user.pk, cart_token))
    if state is None:
        if len(_cart_states) >= 10_000:
            _cart_states.clear()
        state = _cart_states[(user.pk, cart_token)] = cart_page_state(user=user)
    has_code, product_ids = state
    if has_code:
        return None
    versions = current_tokens(*[(PRODUCT_VERSION, pk) for pk in product_ids]) if product_ids else []
    return PageKey(parts=(str(user.pk), cart_token, listing, *versions))


@require_GET
@cached_page(key=_cart_key, private=True)
def cart_view(request: HttpRequest) -> HttpResponse:
    summary = cart_summary(cart_for_request(request))
    totals = (
        checkout_totals(
            user=request.user,
            cart=summary.cart,
            cart_lines=summary.lines,
            shipping_method="standard",
        )
        if not summary.is_empty
        else None
    )
    return render(request, "orders/cart.html", {"summary": summary, "totals": totals})


@require_POST
def cart_code_view(request: HttpRequest) -> HttpResponse:
    """Apply or remove the cart's discount code: from the cart, or from checkout (htmx
    swaps the checkout's totals; without JavaScript the page comes back)."""
    back = "orders:checkout" if request.POST.get("next") == "checkout" else "orders:cart"
    cart = cart_for_request(request, create=True)
    problem = ""
    if request.POST.get("code_action") == "remove":
        cart_code_remove(cart=cart)
    else:
        try:
            cart_code_apply(
                cart=cart,
                user=request.user if request.user.is_authenticated else None,
                code=request.POST.get("code", "")[:100],
                client_keys=code_client_keys(request),
            )
        except CheckoutError as exc:
            problem = " ".join(exc.messages)
    if request.htmx and back == "orders:checkout" and request.user.is_authenticated:
        return _checkout_totals_response(request, code_problem=problem)
    if problem:
        messages.error(request, problem)
    elif request.POST.get("code_action") == "remove":
        messages.info(request, gettext("The code was removed."))
    else:
        messages.success(request, gettext("Code %(code)s applied.") % {"code": cart.discount_code})
    return redirect(back)


def _checkout_totals_context(request: HttpRequest, summary, shipping_method: str | None) -> dict:
    by_method = checkout_totals_by_method(user=request.user, summary=summary)
    chosen = shipping_method if shipping_method in by_method else next(iter(by_method))
    return {"summary": summary, "totals": by_method[chosen], "totals_by_method": by_method}


def _checkout_totals_response(request: HttpRequest, *, code_problem: str = "") -> HttpResponse:
    summary = cart_summary(cart_for_request(request))
    context = _checkout_totals_context(request, summary, request.POST.get("shipping_method"))
    context["code_problem"] = code_problem
    return render(request, "orders/_checkout_totals.html", context)


@login_required
@require_POST
def checkout_totals_view(request: HttpRequest) -> HttpResponse:
    """htmx: the checkout's totals again, for the shipping method and address now chosen."""
    return _checkout_totals_response(request)


@require_POST
def cart_add_view(request: HttpRequest) -> HttpResponse:
    form = AddToCartForm(request.POST)
    variant = None
    if "variant" not in form.errors:
        variant = (
            Variant.objects.select_related("product")
            .filter(
                pk=form.cleaned_data["variant"],
                is_active=True,
                product__status=ProductStatus.ACTIVE,
            )
            .first()
        )
    if variant is None:
        messages.error(request, "Choose an available option first.")
        return redirect(request.META.get("HTTP_REFERER") or reverse("catalog:index"))
    if "quantity" in form.errors:
        messages.error(
            request, f"Choose a quantity between 1 and {settings.CART_MAX_QUANTITY_PER_LINE}."
        )
        return redirect(f"{variant.product.get_absolute_url()}?variant={variant.pk}")
    try:
        cart_add(
            cart=cart_for_request(request, create=True),
            variant=variant,
            quantity=form.cleaned_data["quantity"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(f"{variant.product.get_absolute_url()}?variant={variant.pk}")
    messages.success(request, f"{variant} was added to your cart.")
    if request.POST.get("next") == "checkout":
        return redirect("orders:checkout")
    return redirect("orders:cart")


@require_POST
def cart_update_view(request: HttpRequest) -> HttpResponse:
    form = CartQuantityForm(request.POST)
    cart = cart_for_request(request)
    if not form.is_valid() or cart is None:
        messages.error(request, "Choose a quantity between 0 and 10.")
        return redirect("orders:cart")
    try:
        cart_set_quantity(
            cart=cart, line_id=form.cleaned_data["line"], quantity=form.cleaned_data["quantity"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("orders:cart")


def _saved_cards(user):
    return SavedCard.objects.filter(user=user, deleted_at=None, provider=provider_get().name)


def _resolve_card(request: HttpRequest, card_form: CardForm) -> SavedCard | None:
    """The card to charge: a saved one, or the new one saved now. Errors go on the form."""
    chosen = card_form.cleaned_data.get("saved_card")
    if chosen:
        card = _saved_cards(request.user).filter(pk=chosen).first()
        if card is None:
            card_form.add_error("saved_card", "Choose one of your cards.")
        return card
    try:
        return card_save(user=request.user, card=card_form.card_input())
    except CardError as exc:
        card_form.add_error(None, str(exc))
        return None


def _after_payment(request: HttpRequest, order: Order, payment: Payment | None) -> HttpResponse:
    order.refresh_from_db(fields=["status"])
    if order.status == OrderStatus.CANCELLED:
        messages.error(
            request,
            f"Order {order.number} is cancelled"
            + (
                ": the payment came through after that, and we refunded it in full."
                if payment is not None and payment.status != PaymentStatus.FAILED
                else "."
            ),
        )
        return redirect(order.get_absolute_url())
    if payment is None and order.status != OrderStatus.PAID:
        messages.info(request, f"Order {order.number} is {order.get_status_display().lower()}.")
        return redirect(order.get_absolute_url())
    if payment is None or payment.status in _PAID:
        messages.success(
            request, f"Thank you! Order {order.number} is paid. A confirmation email is on its way."
        )
        return redirect(order.get_absolute_url())
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        if payment.saved_card:
            messages.info(
                request,
                f"Your bank asks you to confirm this payment with {payment.saved_card}. "
                "Confirm it, or refuse it to pay with another card.",
            )
        return redirect("orders:authenticate", number=order.number)
    if payment.status == PaymentStatus.PENDING and not payment.failure_code:
        messages.info(
            request,
            f"Your payment for order {order.number} is being confirmed. This page shows it "
            "once it is through; you will not be charged twice.",
        )
        return redirect(order.get_absolute_url())
    messages.error(
        request,
        payment.failure_message
        or "The payment did not go through. Your order is kept: try another card.",
    )
    return redirect("orders:pay", number=order.number)


_PAID = {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}


def _forget_unsaved_card(card_form: CardForm, card: SavedCard, payment: Payment, user) -> None:
    if card_form.cleaned_data.get("saved_card"):
        return
    if not card_form.cleaned_data.get("save_card") or payment.saved_card_id != card.pk:
        card_delete(user=user, card=card, force=True)


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    summary = cart_summary(cart_for_request(request))
    if summary.is_empty:
        # A submit that arrives after its twin paid and emptied the cart lands on that order.
        paid = order_checked_out_from(cart=summary.cart) if summary.cart else None
        if request.method == "POST" and paid is not None:
            return _after_payment(request, paid, order_payment_in_progress(order=paid))
        messages.info(request, "Your cart is empty.")
        return redirect("orders:cart")
    options = shipping_options(summary.subtotal)
    choices = [(o["code"], o["label"]) for o in options]
    saved_cards = list(_saved_cards(request.user))
    data = request.POST if request.method == "POST" else None
    form = CheckoutForm(data, user=request.user, shipping_choices=choices)
    address_form = AddressForm(data, prefix="address")
    card_form = CardForm(data, saved_cards=saved_cards)
    if request.method == "POST" and form.is_valid() and card_form.is_valid():
        saved_address = form.cleaned_data["saved_address"]
        address = (
            {f: getattr(saved_address, f) for f in ADDRESS_FIELDS}
            if saved_address
            else address_form.cleaned_data
            if address_form.is_valid()
            else None
        )
        chosen = card_form.cleaned_data.get("saved_card")
        saved_card = _saved_cards(request.user).filter(pk=chosen).first() if chosen else None
        if chosen and saved_card is None:
            card_form.add_error("saved_card", "Choose one of your cards.")
        elif address is not None:
            try:
                outcome = checkout_submit(
                    user=request.user,
                    cart=summary.cart,
                    address=address,
                    shipping_method=form.cleaned_data["shipping_method"],
                    save_address=not saved_address and form.cleaned_data["save_address"],
                    saved_card=saved_card,
                    card_input=None if saved_card else card_form.card_input(),
                    keep_card=bool(card_form.cleaned_data.get("save_card")),
                    expected_total=_expected_total(request, form.cleaned_data["shipping_method"]),
                )
            except CheckoutError as exc:
                form.add_error(None, " ".join(exc.messages))
            except CardError as exc:
                card_form.add_error(None, str(exc))
            else:
                return _after_payment(request, outcome.order, outcome.payment)
    context = {
        **_checkout_totals_context(
            request, summary, request.POST.get("shipping_method") if data else None
        ),
        "summary": summary,
        "form": form,
        "address_form": address_form,
        "card_form": card_form,
        "shipping_options": options,
        "saved_cards": saved_cards,
        "uses_address_form": not (form.is_bound and form.data.get("saved_address")),
        "stripe_publishable_key": _stripe_key(),
    }
    return render(
        request, "orders/checkout.html", context, status=400 if request.method == "POST" else 200
    )


def _expected_total(request: HttpRequest, shipping_method: str) -> Decimal | None:
    """The total the page showed for the chosen method (None from an older page)."""
    try:
        return Decimal(request.POST.get(f"expected_total_{shipping_method}", ""))
    except (InvalidOperation, ValueError):
        return None


def _stripe_key() -> str:
    from django.conf import settings

    return settings.STRIPE_PUBLISHABLE_KEY if provider_get().name == "stripe" else ""


@login_required
@require_http_methods(["GET", "POST"])
def order_pay_view(request: HttpRequest, number: str) -> HttpResponse:
    """Pay (again) for an order awaiting payment: after a decline, or a closed tab."""
    order = order_for(user=request.user, number=number)
    if not order.can_pay:
        return redirect(order.get_absolute_url())
    saved_cards = list(_saved_cards(request.user))
    card_form = CardForm(request.POST or None, saved_cards=saved_cards)
    if request.method == "POST" and card_form.is_valid():
        card = _resolve_card(request, card_form)
        if card is not None:
            try:
                payment = order_pay(order=order, saved_card=card, user=request.user)
            except CheckoutError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(order.get_absolute_url())
            _forget_unsaved_card(card_form, card, payment, request.user)
            return _after_payment(request, order, payment)
    return pay_render(
        request,
        page=PayPage(
            title=f"Pay for order {order.number}",
            crumbs=[
                ("Orders", reverse("orders:list")),
                (order.number, order.get_absolute_url()),
                ("Pay", ""),
            ],
            action=reverse("orders:pay", args=[order.number]),
            amount=order.total,
            currency=order.currency,
            meta_template="orders/_pay_meta.html",
            lead_template="orders/_pay_lead.html",
            summary_template="orders/_order_lines_summary.html",
            summary_title=f"Order {order.number}",
            back_url=order.get_absolute_url(),
            back_label="View order details",
        ),
        card_form=card_form,
        saved_cards=saved_cards,
        context={"order": order},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def order_authenticate(request: HttpRequest, number: str) -> HttpResponse:
    """3-D Secure. Local provider: a stand-in for the bank's page (approve or refuse).
    Stripe: Stripe.js handles the bank's page, then returns here and we ask Stripe."""
    order = order_for(user=request.user, number=number)
    payment = get_object_or_404(
        Payment, reference=order.payment_reference, status=PaymentStatus.REQUIRES_ACTION
    )
    answered = bank_answer(request, payment)
    if answered is not None:
        order.refresh_from_db()
        return _after_payment(request, order, answered)
    return authenticate_render(
        request,
        page=AuthPage(
            purpose=f"order {order.number}",
            back_url=order.get_absolute_url(),
            back_label=f"Back to order {order.number}",
        ),
        payment=payment,
        context={"order": order},
    )


def _orders_key(request: HttpRequest) -> PageKey:
    """A fan's orders page is named by them and their orders' token (every order change
    retires it, orders.page_versions): no query."""
    return PageKey(parts=(str(request.user.pk), orders_version(request)))


@login_required
@require_GET
@cached_page(key=_orders_key, private=True)
def order_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(order_list_for(user=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "orders/order_list.html", {"page_obj": page, "orders": page.object_list})


@login_required
@require_GET
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = order_for(user=request.user, number=number)
    return render(
        request,
        "orders/order_detail.html",
        {"order": order, "lines": order.lines.all(), "events": order.events.all()},
    )


@login_required
@require_GET
def saved_cards(request: HttpRequest) -> HttpResponse:
    cards = SavedCard.objects.filter(user=request.user, deleted_at=None)
    return render(request, "orders/saved_cards.html", {"cards": cards})


@login_required
@require_POST
def saved_card_delete(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(SavedCard, pk=pk, user=request.user, deleted_at=None)
    try:
        card_delete(user=request.user, card=card)
    except CardInUseError as exc:
        messages.error(request, str(exc))
        return redirect("orders:saved_cards")
    messages.success(request, f"{card} was removed.")
    return redirect("orders:saved_cards")
