"""Every write of the shop: cart, checkout, payment of an order, fulfilment and refunds.

Stock rule: units leave a variant's stock only through a conditional UPDATE
(`stock >= quantity`), with variants locked in primary-key order, and the database's
CheckConstraint (stock >= 0) behind it; concurrent buyers of the last units can never get
stock that is not there."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from catalog.models import ProductStatus, Variant
from catalog.services import product_refresh_summary
from formatting.formats import money
from notifications.models import NotificationKind
from notifications.services import notification_send
from orders.adjusters import CodeRefused, code_known, code_normalise
from orders.context_processors import cart_count_forget
from orders.fulfilment import (
    order_email,
    order_parts_create,
    order_refund_recorded,
    order_transition,
)
from orders.listeners import order_paid_notify
from orders.models import (
    Address,
    Cart,
    CartLine,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    StockHold,
)
from orders.page_versions import orders_changed
from orders.pricing import CODE_UNKNOWN, checkout_totals, shipping_methods
from payments.models import Payment, PaymentStatus, SavedCard
from payments.selectors import payment_card_label
from payments.services import card_delete, card_save, payment_charge, refund_create
from rowsql.arrays import array_cursor

ORDER_NUMBER_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L


class CheckoutError(ValidationError):
    """Something the shopper can fix (stock, an empty cart): the message says what."""


# --- cart -----------------------------------------------------------------------------------


def _check_quantity(variant: Variant, quantity: int) -> None:
    if quantity < 1:
        raise CheckoutError("Choose at least one.")
    if quantity > settings.CART_MAX_QUANTITY_PER_LINE:
        raise CheckoutError(f"At most {settings.CART_MAX_QUANTITY_PER_LINE} of one item per order.")
    if not variant.is_active or variant.product.status != ProductStatus.ACTIVE:
        raise CheckoutError(f"{variant} is no longer for sale.")
    if variant.track_inventory and quantity > variant.stock:
        if variant.stock == 0:
            raise CheckoutError(f"{variant} is out of stock.")
        raise CheckoutError(f"Only {variant.stock} of {variant} left.")


@transaction.atomic
def cart_add(*, cart: Cart, variant: Variant, quantity: int = 1) -> CartLine:
    line = CartLine.objects.select_for_update().filter(cart=cart, variant=variant).first()
    total = quantity + (line.quantity if line else 0)
    _check_quantity(variant, total)
    if line:
        line.quantity = total
        line.save(update_fields=["quantity"])
    else:
        line = CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
    _cart_changed(cart.pk)
    return line


def _cart_changed(cart_id: int) -> None:
    """A new revision: the next checkout of this cart is a new order. The header's count of
    its items is counted again on its owner's next page (orders.context_processors)."""
    Cart.objects.filter(pk=cart_id).update(revision=F("revision") + 1, updated_at=timezone.now())
    cart_count_forget(cart_id=cart_id)


@transaction.atomic
def cart_set_quantity(*, cart: Cart, line_id: int, quantity: int) -> None:
    line = CartLine.objects.select_related("variant__product").filter(cart=cart, pk=line_id).first()
    if line is None:
        return
    if quantity <= 0:
        line.delete()
        _cart_changed(cart.pk)
        return
    _check_quantity(line.variant, quantity)
    line.quantity = quantity
    line.save(update_fields=["quantity"])
    _cart_changed(cart.pk)


@transaction.atomic
def cart_merge(*, source: Cart, user: User) -> Cart:
    """At sign-in: the visitor's cart joins the user's; quantities add up (capped by stock
    and the per-line limit) and the visitor's cart is deleted."""
    target, _ = Cart.objects.get_or_create(user=user)
    if source.pk == target.pk:
        return target
    for line in source.lines.select_related("variant__product"):
        existing = target.lines.filter(variant=line.variant).first()
        wanted = line.quantity + (existing.quantity if existing else 0)
        limit = settings.CART_MAX_QUANTITY_PER_LINE
        if line.variant.track_inventory:
            limit = min(limit, line.variant.stock)
        quantity = min(wanted, limit)
        if quantity < 1:
            continue
        CartLine.objects.update_or_create(
            cart=target, variant=line.variant, defaults={"quantity": quantity}
        )
    if source.discount_code and not target.discount_code:
        Cart.objects.filter(pk=target.pk).update(discount_code=source.discount_code)
        target.discount_code = source.discount_code
    source.delete()
    _cart_changed(target.pk)
    return target


# --- discount codes -------------------------------------------------------------------------

CODE_TRIES_WINDOW_SECONDS = 900


class CodeTriesExceeded(CheckoutError):
    pass


def _code_tries_take(client_keys: list[str]) -> None:
    """One failed try more for each key (the account, the address); past the limit every
    try is refused, the right code too, so codes cannot be found by guessing."""
    from django.core.cache import cache

    for key in client_keys:
        cache_key = f"orders:code-tries:{key}"
        cache.add(cache_key, 0, timeout=CODE_TRIES_WINDOW_SECONDS)
        try:
            cache.incr(cache_key)
        except ValueError:
            cache.add(cache_key, 1, timeout=CODE_TRIES_WINDOW_SECONDS)


def _code_tries_exceeded(client_keys: list[str]) -> bool:
    from django.core.cache import cache

    limit = settings.DISCOUNT_CODE_TRIES
    return any((cache.get(f"orders:code-tries:{key}") or 0) >= limit for key in client_keys)


CODE_TOO_MANY = "Too many codes tried. Please wait 15 minutes and try again."


def cart_code_apply(*, cart: Cart, user: User | None, code: str, client_keys: list[str]) -> str:
    """Put a discount code on the cart (one per order: it replaces the one there). A code
    nobody knows gets one generic answer; a known one that does not apply says why (and is
    not kept). Wrong tries count against `client_keys` (the account, the IP address):
    past settings.DISCOUNT_CODE_TRIES in 15 minutes every code is refused. Returns the code;
    raises CheckoutError."""
    code = code_normalise(code)
    if not code:
        raise CheckoutError(gettext("Enter a code."))
    if _code_tries_exceeded(client_keys):
        raise CodeTriesExceeded(gettext(CODE_TOO_MANY))
    if not code_known(code):
        _code_tries_take(client_keys)
        raise CheckoutError(gettext(CODE_UNKNOWN))
    lines = list(cart.lines.select_related("variant__product__brand", "variant__product__category"))
    probe = Cart(pk=cart.pk, discount_code=code)
    totals = checkout_totals(user=user, cart=probe, cart_lines=lines, shipping_method="standard")
    if totals.code_problem:
        _code_tries_take(client_keys)
        raise CheckoutError(totals.code_problem)
    with transaction.atomic():
        Cart.objects.filter(pk=cart.pk).update(discount_code=code)
        _cart_changed(cart.pk)
    cart.discount_code = code
    return code


def cart_code_set(*, cart: Cart, code: str) -> None:
    """Put a code on the cart without the checks (a scan-claimed voucher: its app checked)."""
    with transaction.atomic():
        Cart.objects.filter(pk=cart.pk).update(discount_code=code_normalise(code))
        _cart_changed(cart.pk)
    cart.discount_code = code_normalise(code)


def cart_code_remove(*, cart: Cart) -> None:
    with transaction.atomic():
        if Cart.objects.filter(pk=cart.pk).exclude(discount_code="").update(discount_code=""):
            _cart_changed(cart.pk)
    cart.discount_code = ""


# --- orders ---------------------------------------------------------------------------------


ORDER_NUMBER_LENGTH = 7


def _new_order_number() -> str:
    """FH- and 7 characters of the alphabet, uniformly random: one draw below 30**7 spelled
    in base 30 (a settlement chunk numbers thousands of orders; a draw per character was a
    tenth of its Python time)."""
    draw = secrets.randbelow(len(ORDER_NUMBER_ALPHABET) ** ORDER_NUMBER_LENGTH)
    characters = []
    for _ in range(ORDER_NUMBER_LENGTH):
        draw, index = divmod(draw, len(ORDER_NUMBER_ALPHABET))
        characters.append(ORDER_NUMBER_ALPHABET[index])
    return "FH-" + "".join(characters)


def _lock_variants(variant_ids) -> dict[int, Variant]:
    # Always in primary-key order, so two checkouts never wait on each other in a cycle.
    variants = Variant.objects.select_for_update().filter(pk__in=sorted(set(variant_ids)))
    return {variant.pk: variant for variant in variants.order_by("pk")}


def _hold_deadline(order: Order) -> datetime | None:
    """The end of the order's first hold: paying again after a decline holds the stock again
    until then, never longer (later, the stock is taken when the payment succeeds)."""
    return order.stock_holds.order_by("pk").values_list("expires_at", flat=True).first()


def _hold_time_left(user: User) -> timedelta:
    """What is left of the shopper's hold budget: the unpaid checkouts of the last
    STOCK_HOLD_BUDGET_HOURS held stock for at most STOCK_HOLD_BUDGET_MINUTES together, so
    checking out again and again without paying cannot keep units from everyone else."""
    now = timezone.now()
    held: dict[int, timedelta] = {}
    for order_id, placed, expires, released in StockHold.objects.filter(
        order__user=user,
        order__created_at__gte=now - timedelta(hours=settings.STOCK_HOLD_BUDGET_HOURS),
        order__status__in=[OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED],
    ).values_list("order_id", "order__created_at", "expires_at", "released_at"):
        end = min(released or now, expires)
        held[order_id] = max(held.get(order_id, timedelta(0)), end - placed)
    return timedelta(minutes=settings.STOCK_HOLD_BUDGET_MINUTES) - sum(held.values(), timedelta(0))


def _hold_stock(order: Order, quantities: dict[int, int], *, until: datetime) -> None:
    """Take the units from stock now (conditional UPDATE) or fail as a whole."""
    variants = _lock_variants(quantities)
    expires = max(until, timezone.now())
    for variant_id in sorted(quantities):
        variant, quantity = variants[variant_id], quantities[variant_id]
        if variant.track_inventory:
            taken = Variant.objects.filter(pk=variant_id, stock__gte=quantity).update(
                stock=F("stock") - quantity
            )
            if not taken:
                left = Variant.objects.get(pk=variant_id).stock
                raise CheckoutError(
                    f"Only {left} of {variant.product.name} {variant.option_label} left."
                    if left
                    else f"{variant.product.name} {variant.option_label} just sold out."
                )
        StockHold.objects.create(
            order=order, variant=variant, quantity=quantity, expires_at=expires
        )
    for product_id in {variants[v].product_id for v in quantities}:
        product_refresh_summary(product_id=product_id)


def _release_holds(order: Order) -> int:
    holds = list(
        StockHold.objects.select_for_update().filter(
            order=order, committed_at__isnull=True, released_at__isnull=True
        )
    )
    for hold in sorted(holds, key=lambda h: h.variant_id):
        if hold.variant.track_inventory:
            Variant.objects.filter(pk=hold.variant_id).update(stock=F("stock") + hold.quantity)
    StockHold.objects.filter(pk__in=[h.pk for h in holds]).update(released_at=timezone.now())
    for product_id in {hold.variant.product_id for hold in holds}:
        product_refresh_summary(product_id=product_id)
    return len(holds)


def _active_holds(order: Order):
    return order.stock_holds.filter(committed_at__isnull=True, released_at__isnull=True)


def _release_other_holds(user: User) -> None:
    """One checkout at a time holds stock for a shopper: a newer one releases the others'
    (they stay payable; their stock is then taken when the payment succeeds)."""
    holding = StockHold.objects.filter(
        order__user=user,
        order__status=OrderStatus.PENDING_PAYMENT,
        committed_at=None,
        released_at=None,
    )
    others = Order.objects.select_for_update().filter(pk__in=holding.values("order_id"))
    for other in others.order_by("pk"):
        if _release_holds(other):
            OrderEvent.objects.create(
                order=other,
                from_status=other.status,
                to_status=other.status,
                note="Stock released: a newer checkout holds it now",
            )


@transaction.atomic
def order_place(
    *,
    user: User,
    cart: Cart,
    address: dict,
    shipping_method: str,
    save_address: bool = False,
    expected_total: Decimal | None = None,
) -> Order:
    """Turn the cart into an order awaiting payment, at today's prices with the cart's
    discount code (orders.adjusters), and hold its stock. Once per cart revision: submits of
    the same cart (a double click, a second tab) wait on the cart's row lock and then get the
    first order. `expected_total`, the total the shopper was shown: a different one now (a
    code that just expired, a price change) refuses the order, so nobody pays what they did
    not see."""
    cart = Cart.objects.select_for_update().get(pk=cart.pk)
    checkout_key = f"{cart.pk}:{cart.revision}"
    existing = Order.objects.filter(checkout_key=checkout_key).first()
    if existing is not None and existing.status != OrderStatus.CANCELLED:
        return existing
    if existing is not None:  # that checkout was cancelled: this one starts afresh
        cart.revision += 1
        Cart.objects.filter(pk=cart.pk).update(revision=cart.revision)
        checkout_key = f"{cart.pk}:{cart.revision}"
    methods = shipping_methods()
    if shipping_method not in methods:
        raise CheckoutError("Choose a shipping method.")
    if not cart.lines.exists():
        raise CheckoutError("Your cart is empty.")
    _release_other_holds(user)  # before the stock checks: the units it held count as free
    lines = list(
        cart.lines.select_related("variant__product__brand", "variant__product__category").order_by(
            "variant_id"
        )
    )
    for line in lines:
        _check_quantity(line.variant, line.quantity)
    totals = checkout_totals(
        user=user, cart=cart, cart_lines=lines, shipping_method=shipping_method
    )
    if expected_total is not None and totals.total != expected_total:
        raise CheckoutError(
            gettext(
                "The total changed to %(total)s since the page was shown: check it and "
                "place the order again."
            )
            % {"total": money(totals.total)}
        )
    subtotal, shipping, adjustment = totals.subtotal, totals.shipping, totals.adjustment
    fields = {
        ("ship_name" if key == "full_name" else f"ship_{key}"): value
        for key, value in address.items()
    }
    for _ in range(5):
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    number=_new_order_number(),
                    user=user,
                    email=user.email,
                    currency=settings.STORE_CURRENCY,
                    subtotal=subtotal,
                    shipping_method=shipping_method,
                    shipping_cost=shipping,
                    discount=totals.discount,
                    discount_code=adjustment.code if adjustment else "",
                    total=totals.total,
                    checkout_key=checkout_key,
                    **fields,
                )
            break
        except IntegrityError:  # an order number already taken: draw another
            continue
    else:  # pragma: no cover - 30^7 numbers
        raise CheckoutError("Could not number the order; please try again.")
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                variant=line.variant,
                brand=line.variant.product.brand,
                product_name=line.variant.product.name,
                variant_label=line.variant.option_label,
                sku=line.variant.sku,
                unit_price=line.variant.price,
                quantity=line.quantity,
                line_total=line.variant.price * line.quantity,
                discount=totals.line_discount(line.variant_id),
            )
            for line in lines
        ]
    )
    order_parts_create(
        order=order, shipping_discounts=adjustment.shipping_discounts if adjustment else None
    )
    if adjustment is not None:
        try:
            totals.adjuster.claim(basket=totals.basket, adjustment=adjustment, order=order)
        except CodeRefused as refused:  # used up or used meanwhile: the order rolls back
            raise CheckoutError(
                gettext(
                    "%(code)s: %(reason)s Nothing was charged; the total without it is %(total)s."
                )
                % {
                    "code": adjustment.code,
                    "reason": refused.reason,
                    "total": money(totals.subtotal + totals.shipping),
                }
            ) from refused
    OrderEvent.objects.create(
        order=order, actor=user, to_status=OrderStatus.PENDING_PAYMENT, note="Order placed"
    )
    hold_for = min(timedelta(minutes=settings.STOCK_HOLD_MINUTES), _hold_time_left(user))
    if hold_for >= timedelta(minutes=1):
        _hold_stock(
            order,
            {line.variant_id: line.quantity for line in lines},
            until=timezone.now() + hold_for,
        )
    else:
        OrderEvent.objects.create(
            order=order,
            from_status=order.status,
            to_status=order.status,
            note="No stock held: several unpaid checkouts held it lately; "
            "the units are taken when the payment succeeds",
        )
    if save_address and not Address.objects.filter(user=user, **address).exists():
        Address.objects.create(user=user, **address)
    return order


def order_pay(*, order: Order, saved_card: SavedCard, user: User) -> Payment:
    """Charge the order's total to the card. The outcome arrives in order_payment_changed
    (also for webhooks and 3-D Secure completions). The provider is called after the order's
    lock is released (payment_charge commits the attempt first)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.user_id != user.pk:
            raise PermissionError("Not your order")
        if not order.can_pay:
            raise CheckoutError("This order does not need a payment.")
        deadline = _hold_deadline(order)
        if not _active_holds(order).exists() and deadline and timezone.now() < deadline:
            # Released after a decline: hold again, until the first deadline only.
            _hold_stock(
                order,
                {line.variant_id: line.quantity for line in order.lines.all() if line.variant_id},
                until=deadline,
            )
    return payment_charge(
        user=user,
        reference=order.payment_reference,
        amount=order.total,
        currency=order.currency,
        saved_card=saved_card,
        idempotency_key=_payment_key(order),
        off_session=False,
        metadata={"order": order.number},
    )


def _payment_key(order: Order) -> str:
    return f"order-{order.number}"


def order_payment_in_progress(*, order: Order) -> Payment | None:
    """The order's payment if it needs no new card: succeeded, in flight, or waiting for
    3-D Secure. A second checkout submit then shows it instead of charging again."""
    payment = Payment.objects.filter(idempotency_key=_payment_key(order)).first()
    if payment is None or payment.status in (PaymentStatus.FAILED,):
        return None
    if payment.status == PaymentStatus.PENDING and payment.failure_code:
        return None  # errored: may be tried again
    return payment


@dataclass(frozen=True)
class CheckoutOutcome:
    order: Order
    payment: Payment | None  # None: nothing was charged by this submit (already paid)


def checkout_submit(
    *,
    user: User,
    cart: Cart,
    address: dict,
    shipping_method: str,
    save_address: bool,
    saved_card: SavedCard | None,
    card_input: dict | None,
    keep_card: bool,
    expected_total: Decimal | None = None,
) -> CheckoutOutcome:
    """Place the cart's order and pay it: one order and one charge per cart revision however
    many submits arrive at once. A typed card is saved only for this payment unless the
    shopper asked to keep it; a submit that lost the race forgets the card it typed.
    Raises CheckoutError (stock, empty cart) or CardError (the card), changing nothing."""
    placed = Order.objects.filter(checkout_key=f"{cart.pk}:{cart.revision}").first()
    if placed is not None and (not placed.can_pay or order_payment_in_progress(order=placed)):
        return CheckoutOutcome(placed, order_payment_in_progress(order=placed))
    # The card first: a card refused when saved changes nothing (no order, no stock held).
    card = saved_card or card_save(user=user, card=card_input or {})
    forget = saved_card is None and not keep_card
    try:
        order = order_place(
            user=user,
            cart=cart,
            address=address,
            shipping_method=shipping_method,
            save_address=save_address,
            expected_total=expected_total,
        )
        in_progress = order_payment_in_progress(order=order) if order.can_pay else None
        if not order.can_pay or in_progress is not None:  # a twin submit got there first
            forget = saved_card is None
            return CheckoutOutcome(order, in_progress)
        payment = order_pay(order=order, saved_card=card, user=user)
        if payment.saved_card_id != card.pk:
            forget = saved_card is None
        return CheckoutOutcome(order, payment)
    finally:
        if forget:
            card_delete(user=user, card=card, force=True)


def order_checked_out_from(*, cart: Cart) -> Order | None:
    """The order the cart's previous revision became, when that was moments ago: a submit
    that arrives after the cart was emptied by the payment lands on it."""
    since = timezone.now() - timedelta(minutes=10)
    return Order.objects.filter(
        checkout_key=f"{cart.pk}:{max(cart.revision - 1, 0)}", created_at__gte=since
    ).first()


def order_payment_changed(*, payment: Payment) -> None:
    """payments' listener for "order:" references, inside the payment's transaction."""
    order = Order.objects.select_for_update().get(number=payment.reference.split(":", 1)[1])
    if payment.status == PaymentStatus.SUCCEEDED and order.status == OrderStatus.PENDING_PAYMENT:
        if not _active_holds(order).exists():
            # Paid after the hold ran out: take the stock again, or refund if it is gone.
            try:
                with transaction.atomic():
                    _hold_stock(
                        order,
                        {
                            line.variant_id: line.quantity
                            for line in order.lines.all()
                            if line.variant_id
                        },
                        until=timezone.now(),  # committed at once below
                    )
            except CheckoutError:
                refund_create(
                    payment=payment,
                    amount=payment.amount,
                    idempotency_key=f"order-{order.number}-soldout",
                    reason="Sold out while the payment was confirmed",
                )
                order_transition(
                    order=order,
                    to=OrderStatus.CANCELLED,
                    actor=None,
                    note="Sold out before the payment arrived; refunded in full",
                )
                order_email(
                    order,
                    "cancelled_refunded",
                    f"Order {order.number} was cancelled and refunded",
                    {
                        "why": "the last units sold out before your payment arrived",
                        "card": payment_card_label(payment),
                    },
                )
                return
        _active_holds(order).update(committed_at=timezone.now())
        order_transition(
            order=order,
            to=OrderStatus.PAID,
            actor=order.user,
            note=f"Paid {money(payment.amount, payment.currency)}",
        )
        emptied = CartLine.objects.filter(
            cart__user=order.user, variant_id__in=order.lines.values("variant_id")
        )
        cart_ids = set(emptied.values_list("cart_id", flat=True))
        emptied.delete()
        if order.discount_code:  # its one use is taken: the code leaves the cart too
            Cart.objects.filter(user=order.user, discount_code=order.discount_code).update(
                discount_code=""
            )
        for cart_id in cart_ids:
            _cart_changed(cart_id)
        order_email(
            order,
            "paid",
            f"Order {order.number} is confirmed",
            {"card": payment_card_label(payment)},
        )
        order_paid_notify(order_id=order.pk)  # points in the brands' fan clubs, on commit
        notification_send(
            recipient_id=order.user_id,
            kind=NotificationKind.ORDER,
            title=f"Order {order.number} is paid",
            body=f"{money(order.total, order.currency)}; we'll tell you when it ships.",
            url=order.get_absolute_url(),
        )
    elif payment.status == PaymentStatus.SUCCEEDED and order.status == OrderStatus.CANCELLED:
        # 3-D Secure finished after the order was cancelled: the money goes straight back.
        refund_create(
            payment=payment,
            amount=payment.refundable,
            idempotency_key=f"order-{order.number}-paid-after-cancel",
            reason="Paid after the order was cancelled",
        )
        OrderEvent.objects.create(
            order=order,
            from_status=order.status,
            to_status=order.status,
            note=f"Paid {money(payment.amount, payment.currency)} after it was cancelled; refunded",
        )
        order_email(
            order,
            "cancelled_refunded",
            f"Order {order.number} was cancelled and refunded",
            {
                "why": "it had been cancelled before your bank confirmed the payment",
                "card": payment_card_label(payment),
            },
        )
    elif payment.status == PaymentStatus.FAILED and order.status == OrderStatus.PENDING_PAYMENT:
        _release_holds(order)
        OrderEvent.objects.create(
            order=order,
            actor=order.user,
            from_status=order.status,
            to_status=order.status,
            note=f"Payment declined: {payment.failure_message}"[:300],
        )
    elif payment.status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED):
        order_refund_recorded(order=order, payment=payment)


@dataclass(frozen=True)
class PaidOrderSpec:
    """An order paid outside checkout (a settled pre-order): one line, no stock taken."""

    user_id: int
    email: str
    variant: Variant
    unit_price: Decimal
    quantity: int
    address: dict[str, str]  # full_name, line1, line2, city, postal_code, country, phone
    paid_through: str
    note: str
    # Every payment behind the order after `paid_through`, in the order refunds take from
    # them (a pre-order's deposits: "preorder-deposit:<id>").
    payment_references: tuple[str, ...] = ()


# Paid orders of one line each (a settlement chunk's thousands), written set-based by the
# steps below: the orders, one part each (the line's brand: no shipping to split), the line,
# the payments behind the order in refund order, and the event. A statement that uses them
# defines two relations before them (`WITH s AS (...), x AS (...), {PAID_ORDERS_STEPS}`):
#   s: one row per order, with the columns order_id (drawn by orders_ids_draw), number,
#      user_id, email, variant_id, unit_price, quantity, ship_name, ship_line1, ship_line2,
#      ship_city, ship_postal_code, ship_country, ship_phone, paid_through, note and n (its
#      position, 1..); others may come along;
#   x: (order_id, reference, position), the payments behind each order, paid_through first;
# and passes paid_orders_params(). `so` is then s with each order's part id and variant.
# So a settlement makes a chunk's orders in the statement that charges its rows, from those
# rows, with nothing sent back and forth (orders_create_paid sends them as arrays). No step
# joins two of these relations: the planner takes each for one row, and a nested loop over
# two of a chunk's thousands cost seconds; the part ids are drawn in `so` for that.
PAID_ORDERS_STEPS = """
v AS (
  SELECT * FROM unnest(%(variant_ids)s::bigint[], %(brands)s::bigint[],
    %(products)s::varchar[], %(labels)s::varchar[], %(skus)s::varchar[])
    AS v(variant_id, brand_id, product_name, variant_label, sku)
), so AS (
  SELECT s.*, nextval((SELECT pg_get_serial_sequence('orders_orderpart', 'id'))) AS part_id,
    v.brand_id, v.product_name, v.variant_label, v.sku
  FROM s JOIN v USING (variant_id)
), o AS (
  INSERT INTO orders_order (id, number, user_id, email, status, currency, subtotal,
    shipping_method, shipping_cost, discount, discount_code, total, amount_refunded,
    ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country, ship_phone,
    tracking_number, paid_through, created_at, paid_at)
  SELECT order_id, number, user_id, email, %(paid)s, %(currency)s, unit_price * quantity,
    %(method)s, 0,
    0, '', unit_price * quantity, 0, ship_name, ship_line1, ship_line2, ship_city,
    ship_postal_code, ship_country, ship_phone, '', paid_through, %(now)s, %(now)s
  FROM so ORDER BY n
), p AS (
  INSERT INTO orders_orderpart (id, order_id, brand_id, status, subtotal, shipping_share,
    discount, shipping_discount, total, amount_refunded, shipping_refunded, tracking_number,
    created_at)
  SELECT part_id, order_id, brand_id, %(paid)s, unit_price * quantity, 0, 0, 0,
    unit_price * quantity, 0, false, '', %(now)s
  FROM so
), l AS (
  INSERT INTO orders_orderline (order_id, part_id, variant_id, brand_id, product_name,
    variant_label, sku, unit_price, quantity, line_total, discount, quantity_refunded,
    quantity_restocked)
  SELECT order_id, part_id, variant_id, brand_id, product_name, variant_label, sku,
    unit_price, quantity, unit_price * quantity, 0, 0, 0
  FROM so
), e AS (
  INSERT INTO orders_orderevent (order_id, from_status, to_status, note, created_at)
  SELECT order_id, '', %(paid)s, note, %(now)s FROM so
), links AS (
  INSERT INTO orders_orderpayment (order_id, reference, position)
  SELECT order_id, reference, position FROM x
)
"""

_PAID_ORDERS_SQL = f"""
WITH s AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(numbers)s::varchar[], %(users)s::bigint[],
    %(emails)s::varchar[],
    %(variants)s::bigint[], %(prices)s::numeric[], %(quantities)s::integer[],
    %(names)s::varchar[], %(line1s)s::varchar[], %(line2s)s::varchar[], %(cities)s::varchar[],
    %(postcodes)s::varchar[], %(countries)s::varchar[], %(phones)s::varchar[],
    %(paid_through)s::varchar[], %(notes)s::varchar[])
    WITH ORDINALITY AS s(order_id, number, user_id, email, variant_id, unit_price, quantity,
      ship_name,
      ship_line1, ship_line2, ship_city, ship_postal_code, ship_country, ship_phone,
      paid_through, note, n)
), x AS (
  SELECT * FROM unnest(%(link_orders)s::bigint[], %(link_references)s::varchar[],
    %(link_positions)s::smallint[]) AS x(order_id, reference, position)
), {PAID_ORDERS_STEPS}
SELECT order_id FROM so ORDER BY n
"""  # noqa: S608 (names from code)


def paid_orders_params(*, variants: Iterable[Variant], shipping_method: str) -> dict[str, Any]:
    """PAID_ORDERS_STEPS' parameters: the variants the orders are of (their products and
    brands selected), the shipping method, the time."""
    variants = list(variants)
    return {
        "variant_ids": [variant.pk for variant in variants],
        "brands": [variant.product.brand_id for variant in variants],
        "products": [variant.product.name for variant in variants],
        "labels": [variant.option_label for variant in variants],
        "skus": [variant.sku for variant in variants],
        "paid": OrderStatus.PAID.value,
        "currency": settings.STORE_CURRENCY,
        "method": shipping_method,
        "now": timezone.now(),
    }


def orders_ids_draw(count: int) -> list[int]:
    """Ids for orders about to be made (orders_create_paid's `ids`), so that what an order is
    for can point at it in the same write as its other changes: foreign keys to orders are
    checked at the commit (deferred)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('orders_order', 'id'))"
            " FROM generate_series(1, %s)",
            [count],
        )
        return [row[0] for row in cursor.fetchall()]


def orders_create_paid(
    *, specs: list[PaidOrderSpec], shipping_method: str, ids: Sequence[int] | None = None
) -> list[int]:
    """Many paid orders at once, set-based (a settlement chunk records thousands at a time):
    one statement for the orders, their parts, lines, payments and events, with `ids` drawn
    by orders_ids_draw (drawn here without). Returns the orders' ids in the order of
    `specs`. Runs inside the caller's transaction."""
    if not specs:
        return []
    ids = list(ids) if ids is not None else orders_ids_draw(len(specs))
    variants = {spec.variant.pk: spec.variant for spec in specs}
    links: tuple[list[int], list[str], list[int]] = ([], [], [])
    for order_id, spec in zip(ids, specs, strict=True):
        # The balance first, then deposits: the order refunds take from them.
        for position, reference in enumerate(
            dict.fromkeys([spec.paid_through, *spec.payment_references])
        ):
            links[0].append(order_id)
            links[1].append(reference)
            links[2].append(position)
    address = {key: [spec.address[key] for spec in specs] for key in specs[0].address}
    params = {
        **paid_orders_params(variants=variants.values(), shipping_method=shipping_method),
        "ids": ids,
        "numbers": order_numbers_draw(len(specs)),
        "users": [spec.user_id for spec in specs],
        "emails": [spec.email for spec in specs],
        "variants": [spec.variant.pk for spec in specs],
        "prices": [spec.unit_price for spec in specs],
        "quantities": [spec.quantity for spec in specs],
        "names": address["full_name"],
        "line1s": address["line1"],
        "line2s": address["line2"],
        "cities": address["city"],
        "postcodes": address["postal_code"],
        "countries": address["country"],
        "phones": address["phone"],
        "paid_through": [spec.paid_through for spec in specs],
        "notes": [spec.note[:300] for spec in specs],
        "link_orders": links[0],
        "link_references": links[1],
        "link_positions": links[2],
    }
    with array_cursor() as cursor:
        cursor.execute(_PAID_ORDERS_SQL, params)
        order_ids = [row[0] for row in cursor.fetchall()]
    orders_changed(user_ids=params["users"])  # their orders pages, once this commits
    return order_ids


def order_numbers_draw(count: int) -> list[str]:
    """`count` distinct order numbers no order has yet."""
    numbers: set[str] = set()
    while len(numbers) < count:
        wanted = {_new_order_number() for _ in range(count - len(numbers))}
        with array_cursor() as cursor:
            cursor.execute(
                "SELECT number FROM orders_order WHERE number = ANY(%s::varchar[])", [list(wanted)]
            )
            wanted -= {row[0] for row in cursor.fetchall()}
        numbers |= wanted
    return list(numbers)


def stock_holds_expire(*, limit: int = 500) -> int:
    """Beat sweep: give back the stock of unpaid orders whose hold ran out. In chunks."""
    expired_orders = list(
        StockHold.objects.filter(
            committed_at__isnull=True,
            released_at__isnull=True,
            expires_at__lt=timezone.now(),
            order__status=OrderStatus.PENDING_PAYMENT,
        )
        .values_list("order_id", flat=True)
        .distinct()[:limit]
    )
    released = 0
    for order_id in expired_orders:
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=order_id)
            if order.status == OrderStatus.PENDING_PAYMENT:
                released += _release_holds(order)
                OrderEvent.objects.create(
                    order=order,
                    from_status=order.status,
                    to_status=order.status,
                    note="Payment not completed in time; stock released",
                )
    return released


def _email(order: Order, template: str, subject: str) -> None:
    order_email(order, template, subject, {})


def address_save(*, user: User, data: dict) -> Address:
    address = Address(user=user, **data)
    address.full_clean()
    address.save()
    return address
