"""An order's fulfilment, per brand: its parts, their state machine, shipping, delivery,
refunds and cancels, and the order's status that follows from its parts.

An order is made of one OrderPart per brand (orders.models.OrderPart explains how the totals
are split). Every change of a part goes through `part_transition` (state check and an event
row); after every change `order_status_refresh` derives the order's status from its parts.

Refunds cover every payment behind the order (OrderPayment rows: the checkout payment, or a
pre-order's balance and deposits), taken in their `position` order (the balance first, then
the deposits, oldest payment first) until the amount is covered. A refund is written in
three steps so that the provider is never called under the order's row lock: (1) under the
lock, check and record the OrderRefund (its amount is then reserved on the part); (2) without
it, ask payments for one provider refund per payment, keyed "order-refund-<refund>-<payment>"
(a crash or a double submit resumes from the refund's key); (3) under the lock again, record
the outcome. A provider refund that fails stays pending and payments retries it; the order
catches up through `order_refund_recorded` (payments' listeners call it).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from catalog.models import Variant
from catalog.services import product_refresh_summary
from catalog.team import brand_check_refund
from formatting.formats import money
from notifications.models import NotificationKind
from notifications.services import email_send_on_commit, notification_send
from orders.listeners import order_refunded_notify, order_voided_notify
from orders.models import (
    ORDER_MACHINE,
    PART_MACHINE,
    Order,
    OrderEvent,
    OrderLine,
    OrderPart,
    OrderPayment,
    OrderRefund,
    OrderStatus,
    RefundState,
)
from payments.commitments import machine
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.selectors import payments_card_label
from payments.services import PaymentError, refund_create
from rowsql.update import rows_update

CENT = Decimal("0.01")
REFUND_KEY_PREFIX = "order-refund-"
_OPERABLE = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED)


TransitionError = machine.TransitionError  # a move the state machine refuses


class RefundError(ValidationError):
    """A refund that cannot be made as asked; the message says why. Nothing changed."""


# --- splitting amounts over parts -------------------------------------------------------------


def amount_split(*, amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`amount` over `weights` (the parts' subtotals, in part order): each share rounded down
    to the cent, the cents left over to the largest weight (the first of equal ones). The
    shares always add up to `amount` exactly."""
    if not weights:
        return []
    total = sum(weights, Decimal("0"))
    if total > 0:
        shares = [
            (amount * weight / total).quantize(CENT, rounding=ROUND_DOWN) for weight in weights
        ]
    else:
        shares = [Decimal("0.00")] * len(weights)
    largest = max(range(len(weights)), key=lambda i: (weights[i], -i))
    shares[largest] += amount - sum(shares, Decimal("0"))
    return shares


def _parts_for(
    order: Order, lines: list[OrderLine], shipping_discounts: dict[int, Decimal] | None = None
) -> list[OrderPart]:
    by_brand: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    discounts: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in lines:
        by_brand[line.brand_id] += line.line_total
        discounts[line.brand_id] += line.discount
    brands = sorted(by_brand)
    shipping = amount_split(
        amount=order.shipping_cost, weights=[by_brand[brand] for brand in brands]
    )
    shipping_discounts = shipping_discounts or {}
    parts = [
        OrderPart(
            order=order,
            brand_id=brand,
            status=order.status,
            subtotal=by_brand[brand],
            shipping_share=share,
            shipping_discount=shipping_discounts.get(brand, Decimal("0.00")),
            discount=discounts[brand] + shipping_discounts.get(brand, Decimal("0.00")),
            total=by_brand[brand]
            + share
            - discounts[brand]
            - shipping_discounts.get(brand, Decimal("0.00")),
        )
        for brand, share in zip(brands, shipping, strict=True)
    ]
    if (
        sum(p.subtotal for p in parts) != order.subtotal
        or sum(p.total for p in parts) != order.total
        or sum(p.discount for p in parts) != order.discount
    ):
        raise ValidationError(f"Order {order.number}: its parts do not add up to its totals.")
    return parts


def orders_parts_create(
    *,
    orders: list[Order],
    lines: list[OrderLine] | None = None,
    shipping_discounts: dict[int, dict[int, Decimal]] | None = None,
) -> list[OrderPart]:
    """One part per brand for each order whose lines have no part yet, in bulk; the lines
    join their part. Runs in the caller's transaction, right after the lines are written;
    or before, given the `lines` about to be written: they get their part, and the caller
    inserts them with it (no UPDATE of the lines). `shipping_discounts`: order id -> brand
    id -> what a price adjuster took off that brand's shipping share (the lines carry their
    own discounts)."""
    shipping_discounts = shipping_discounts or {}
    lines_by_order: dict[int, list[OrderLine]] = defaultdict(list)
    if lines is None:
        lines = OrderLine.objects.filter(order__in=orders, part=None).order_by("id")
    for line in lines:
        lines_by_order[line.order_id].append(line)
    parts = [
        part
        for order in orders
        if lines_by_order[order.pk]
        for part in _parts_for(order, lines_by_order[order.pk], shipping_discounts.get(order.pk))
    ]
    OrderPart.objects.bulk_create(parts)
    # The checkout's payment (or a pre-order's balance) is the first a refund takes from.
    OrderPayment.objects.bulk_create(
        [OrderPayment(order=order, reference=order.payment_reference) for order in orders],
        ignore_conflicts=True,
    )
    part_of = {(part.order_id, part.brand_id): part for part in parts}
    lines = [line for order_lines in lines_by_order.values() for line in order_lines]
    for line in lines:
        line.part = part_of[(line.order_id, line.brand_id)]
    # One UPDATE ... FROM unnest for the lines already written (bulk_update's CASE per row
    # is slower to build than to run at a settlement chunk's thousands of lines).
    rows_update(
        model=OrderLine,
        fields=["part"],
        rows=[(line.pk, line.part_id) for line in lines if line.pk is not None],
    )
    return parts


def order_parts_create(
    *, order: Order, shipping_discounts: dict[int, Decimal] | None = None
) -> list[OrderPart]:
    return orders_parts_create(
        orders=[order], shipping_discounts={order.pk: shipping_discounts or {}}
    )


def order_payment_references(order: Order) -> list[str]:
    references = list(
        order.payment_links.order_by("position", "id").values_list("reference", flat=True)
    )
    return references or [order.payment_reference]


# --- states -----------------------------------------------------------------------------------


def order_status_derive(statuses: list[str]) -> str | None:
    """The order's status from its parts': all cancelled -> cancelled; all cancelled or
    refunded -> refunded; of the others: any awaiting payment -> awaiting payment; all
    delivered -> delivered; all shipped or delivered -> shipped; some -> partially shipped;
    else paid."""
    if not statuses:
        return None
    active = [s for s in statuses if s not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)]
    if not active:
        if all(s == OrderStatus.CANCELLED for s in statuses):
            return OrderStatus.CANCELLED
        return OrderStatus.REFUNDED
    if OrderStatus.PENDING_PAYMENT in active:
        return OrderStatus.PENDING_PAYMENT
    if all(s == OrderStatus.DELIVERED for s in active):
        return OrderStatus.DELIVERED
    shipped = [s in (OrderStatus.SHIPPED, OrderStatus.DELIVERED) for s in active]
    if all(shipped):
        return OrderStatus.SHIPPED
    if any(shipped):
        return OrderStatus.PARTIALLY_SHIPPED
    return OrderStatus.PAID


def order_status_refresh(*, order: Order, actor: User | None = None, note: str = "") -> Order:
    """Recompute the order's status (and its tracking numbers) from its parts; an event row
    when it changes. The one place an order's status is written. Caller holds the lock."""
    parts = list(OrderPart.objects.filter(order=order).order_by("id"))
    fields: list[str] = []
    tracking = ", ".join(p.tracking_number for p in parts if p.tracking_number)[:60]
    if tracking != order.tracking_number:
        order.tracking_number, fields = tracking, [*fields, "tracking_number"]
    derived = order_status_derive([p.status for p in parts])
    if derived and derived != order.status:
        OrderEvent.objects.create(
            order=order, actor=actor, from_status=order.status, to_status=derived, note=note[:300]
        )
        order.status, fields = derived, [*fields, "status"]
        if derived in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
            order_voided_notify(order_id=order.pk)  # a voucher's use comes back
        now = timezone.now()
        if (
            derived != OrderStatus.PENDING_PAYMENT
            and order.paid_at is None
            and any(p.status != OrderStatus.CANCELLED for p in parts)
        ):
            order.paid_at, fields = now, [*fields, "paid_at"]
        if (
            derived in (OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED)
            and order.shipped_at is None
        ):
            order.shipped_at, fields = now, [*fields, "shipped_at"]
    if fields:
        order.save(update_fields=fields)
    return order


def part_transition(*, part: OrderPart, to: str, actor: User | None, note: str = "") -> OrderPart:
    """The only way a part changes state: checks the state machine, logs an event. Callers
    hold the order's row lock and call order_status_refresh after."""
    PART_MACHINE.check(part, to)
    fields = []
    if to == OrderStatus.SHIPPED:
        part.shipped_at, fields = timezone.now(), ["shipped_at"]
    if to == OrderStatus.DELIVERED:
        part.delivered_at, fields = timezone.now(), ["delivered_at"]
    return PART_MACHINE.transition(part, to=to, actor=actor, note=note, fields=fields)


def order_transition(*, order: Order, to: str, actor: User | None, note: str = "") -> Order:
    """Move the whole order (checkout: paid, or cancelled when sold out): every part that can
    make the move makes it, then the order's status is derived. Callers hold the order row
    lock."""
    ORDER_MACHINE.check(order, to)
    parts = list(OrderPart.objects.select_related("brand").filter(order=order).order_by("id"))
    if not parts:  # an order written without parts (should not happen): the old way
        return ORDER_MACHINE.transition(order, to=to, actor=actor, note=note)
    # The note speaks of the whole order (e.g. "Paid 797.90 USD"): a part of a shared order
    # (which its brand's operator reads) gets its own share instead.
    for part in parts:
        if PART_MACHINE.can(part, to):
            part_note = (
                note if len(parts) == 1 else f"{money(part.total, order.currency)} of the order"
            )
            part_transition(part=part, to=to, actor=actor, note=part_note)
    return order_status_refresh(order=order, actor=actor, note=note)


def _locked(part: OrderPart) -> tuple[Order, OrderPart]:
    # The order's row is the one lock every part operation and payment listener takes.
    order = Order.objects.select_for_update().get(pk=part.order_id)
    return order, OrderPart.objects.select_related("brand").get(pk=part.pk)


# --- fulfilment -------------------------------------------------------------------------------


@transaction.atomic
def order_part_ship(*, part: OrderPart, tracking_number: str, actor: User) -> OrderPart:
    order, part = _locked(part)
    tracking_number = tracking_number.strip()[:60]
    if not tracking_number:
        raise ValidationError("Enter the tracking number.")
    if not PART_MACHINE.can(part, OrderStatus.SHIPPED):
        part_transition(part=part, to=OrderStatus.SHIPPED, actor=actor)  # raises, says why
    part.tracking_number = tracking_number
    part.save(update_fields=["tracking_number"])
    part_transition(
        part=part, to=OrderStatus.SHIPPED, actor=actor, note=f"Tracking number {tracking_number}"
    )
    audit_record(
        actor=actor,
        action="order.ship",
        obj=order,
        brand_id=part.brand_id,
        before={"status": OrderStatus.PAID},
        after={"status": OrderStatus.SHIPPED, "tracking_number": tracking_number},
    )
    order_status_refresh(order=order, actor=actor, note=f"{part.brand.name} shipped")
    lines = list(part.lines.all())
    order_email(
        order,
        "shipped",
        f"Order {order.number} is on its way",
        {"part": part, "lines": lines, "tracking_number": tracking_number},
    )
    notification_send(
        recipient_id=order.user_id,
        kind=NotificationKind.ORDER,
        title=f"Order {order.number} has shipped",
        body=f"{part.brand.name}: tracking number {tracking_number}.",
        url=order.get_absolute_url(),
    )
    return part


@transaction.atomic
def order_part_mark_delivered(*, part: OrderPart, actor: User) -> OrderPart:
    order, part = _locked(part)
    part_transition(part=part, to=OrderStatus.DELIVERED, actor=actor)
    audit_record(
        actor=actor,
        action="order.deliver",
        obj=order,
        brand_id=part.brand_id,
        before={"status": OrderStatus.SHIPPED},
        after={"status": OrderStatus.DELIVERED},
    )
    order_status_refresh(order=order, actor=actor, note=f"{part.brand.name} delivered")
    return part


def order_ship(*, order: Order, tracking_number: str, actor: User) -> Order:
    """Ship every part of the order with one tracking number (single-brand orders)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        parts = list(order.parts.order_by("id"))
        if not parts or order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_SHIPPED):
            raise TransitionError(
                f"An order that is {order.get_status_display().lower()} cannot become shipped."
            )
        for part in parts:
            if part.status == OrderStatus.PAID:
                order_part_ship(part=part, tracking_number=tracking_number, actor=actor)
    order.refresh_from_db()
    return order


@transaction.atomic
def order_mark_delivered(*, order: Order, actor: User) -> Order:
    order = Order.objects.select_for_update().get(pk=order.pk)
    for part in order.parts.filter(status=OrderStatus.SHIPPED).order_by("id"):
        order_part_mark_delivered(part=part, actor=actor)
    order.refresh_from_db()
    return order


# --- refunds ----------------------------------------------------------------------------------


def _refund_rows(order: Order) -> dict[int, list[Refund]]:
    """The provider refunds behind each OrderRefund of the order, by their keys."""
    rows: dict[int, list[Refund]] = defaultdict(list)
    for refund in Refund.objects.filter(
        idempotency_key__startswith=REFUND_KEY_PREFIX,
        payment__reference__in=order_payment_references(order),
    ):
        refund_id = int(refund.idempotency_key[len(REFUND_KEY_PREFIX) :].split("-", 1)[0])
        rows[refund_id].append(refund)
    return rows


def _live(rows: list[Refund]) -> Decimal:
    return sum((r.amount for r in rows if r.status != RefundStatus.ABANDONED), Decimal("0.00"))


def part_refund_pending(part: OrderPart, rows: dict[int, list[Refund]] | None = None) -> Decimal:
    """What refunds of the part have reserved but the provider has not refunded yet."""
    rows = _refund_rows(part.order) if rows is None else rows
    pending = Decimal("0.00")
    for refund in part.refunds.filter(status=RefundState.PENDING):
        made = rows.get(refund.pk, [])
        succeeded = sum(
            (r.amount for r in made if r.status == RefundStatus.SUCCEEDED), Decimal("0.00")
        )
        abandoned = sum(
            (r.amount for r in made if r.status == RefundStatus.ABANDONED), Decimal("0.00")
        )
        pending += refund.amount - succeeded - abandoned
    return pending


def part_refundable(part: OrderPart) -> Decimal:
    """What may still be refunded of the part: its total less refunded and pending."""
    return part.total - part.amount_refunded - part_refund_pending(part)


def order_refund_recorded(*, order: Order, payment: Payment | None = None) -> Order:
    """A refund of one of the order's payments happened or changed (here, in the admin, a
    retry, an abandon, or at the provider): recompute what was refunded of the order and of
    each part, and the states that follow. Callers hold the order row lock."""
    order = Order.objects.get(pk=order.pk)
    payments = Payment.objects.filter(reference__in=order_payment_references(order))
    refunded = sum((p.amount_refunded for p in payments), Decimal("0.00"))
    order.amount_refunded = min(refunded, order.total)
    order.save(update_fields=["amount_refunded"])
    rows = _refund_rows(order)
    for refund in order.refunds.filter(status=RefundState.PENDING):
        made = rows.get(refund.pk, [])
        done = sum((r.amount for r in made if r.status == RefundStatus.SUCCEEDED), Decimal("0"))
        settled = all(r.status in (RefundStatus.SUCCEEDED, RefundStatus.ABANDONED) for r in made)
        if made and done == refund.amount:
            refund.status = RefundState.SUCCEEDED
            order_refunded_notify(refund_id=refund.pk)  # takes points back, on commit
        elif made and settled and sum(r.amount for r in made) == refund.amount:
            refund.status = RefundState.ABANDONED
        else:
            continue
        refund.save(update_fields=["status"])
    whole = order.total > 0 and order.amount_refunded == order.total
    for part in OrderPart.objects.select_related("brand").filter(order=order).order_by("id"):
        attributed = sum(
            (
                r.amount
                for refund in part.refunds.all()
                for r in rows.get(refund.pk, [])
                if r.status == RefundStatus.SUCCEEDED
            ),
            Decimal("0.00"),
        )
        amount = part.total if whole else min(attributed, part.total)
        if amount != part.amount_refunded:
            part.amount_refunded = amount
            part.save(update_fields=["amount_refunded"])
        if part.status in _OPERABLE and part.total > 0 and part.amount_refunded == part.total:
            last = part.refunds.order_by("-id").first()
            part_transition(
                part=part,
                to=OrderStatus.REFUNDED,
                actor=last.actor if last else None,
                note="Refunded in full" + (f": {last.reason}" if last and last.reason else ""),
            )
    return order_status_refresh(order=order, note="Refunded in full" if whole else "")


def _order_payments(order: Order) -> list[Payment]:
    """The payments a refund takes from, in order: by OrderPayment position, then oldest."""
    references = order_payment_references(order)
    rank = {reference: index for index, reference in enumerate(references)}
    payments = Payment.objects.filter(
        reference__in=references,
        status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED],
    )
    return sorted(payments, key=lambda p: (rank[p.reference], p.created_at, p.pk))


def _refund_open(
    *,
    part: OrderPart,
    actor: User | None,
    key: str,
    lines: dict[int, int],
    shipping: bool,
    amount: Decimal | None,
    restock: bool,
    reason: str,
    cancel: bool = False,
) -> OrderRefund | None:
    """Step 1, under the order's lock: check, reserve the amount on the part, take the
    lines back (and restock them when asked). Returns None when nothing is left to refund
    (a cancel of a part already refunded)."""
    order, part = _locked(part)
    existing = OrderRefund.objects.filter(key=key).first()
    if existing:
        if existing.part_id != part.pk:
            raise RefundError("This refund form was already used for another part.")
        return existing
    if cancel:
        if part.status != OrderStatus.PAID:
            raise TransitionError(
                f"{part.brand.name}'s part is {part.get_status_display().lower()}: only a "
                "paid part that has not shipped can be cancelled."
            )
        lines = {line.pk: line.quantity - line.quantity_refunded for line in part.lines.all()}
    elif part.status not in _OPERABLE:
        raise RefundError(
            f"{part.brand.name}'s part is {part.get_status_display().lower()}: only a paid "
            "part can be refunded."
        )
    part_lines = {line.pk: line for line in part.lines.select_related("variant")}
    chosen: dict[int, int] = {}
    for line_id, quantity in lines.items():
        line = part_lines.get(int(line_id))
        if line is None:
            raise RefundError("Choose lines of this part only.")
        if quantity < 0 or quantity > line.quantity - line.quantity_refunded:
            raise RefundError(
                f"At most {line.quantity - line.quantity_refunded} of {line.product_name} "
                "can still be refunded."
            )
        if quantity:
            chosen[line.pk] = quantity
    shipping = shipping and not part.shipping_refunded and part.shipping_share > 0
    refundable = part_refundable(part)
    if cancel:
        amount = refundable
    elif chosen or shipping:
        # What was paid for them: a discounted line refunds its discounted price, shipping
        # what was paid of the part's share (orders.models.OrderLine.refund_amount).
        amount = sum(
            (part_lines[line_id].refund_amount(qty) for line_id, qty in chosen.items()),
            Decimal("0.00"),
        ) + (part.shipping_share - part.shipping_discount if shipping else Decimal("0.00"))
    elif amount is None:
        raise RefundError("Choose the lines and quantities to refund, or an amount.")
    if not cancel and (not amount.is_finite() or amount <= 0 or amount > refundable):
        raise RefundError(
            f"Refund between {money('0.01', order.currency)} and "
            f"{money(refundable, order.currency)}: that is what is left of "
            f"{part.brand.name}'s part of this order."
        )
    brand_check_refund(brand=part.brand, actor=actor, amount=amount)
    covered = sum((p.refundable for p in _order_payments(order)), Decimal("0.00"))
    rows = _refund_rows(order)
    others_waiting = sum(
        (
            r.amount - _live(rows.get(r.pk, []))
            for r in order.refunds.filter(status=RefundState.PENDING)
        ),
        Decimal("0.00"),
    )
    if amount > covered - others_waiting:
        raise RefundError(
            f"The order's payments have only {money(covered - others_waiting, order.currency)} "
            "left to refund."
        )
    refund = None
    if amount > 0:
        refund = OrderRefund(
            order=order,
            part=part,
            key=key,
            amount=amount,
            lines={str(line_id): qty for line_id, qty in chosen.items()},
            shipping=shipping,
            restock=restock,
            reason=reason[:200],
            actor=actor,
        )
        refund.full_clean()
        refund.save()
        audit_record(
            actor=actor,
            action="order.cancel_part" if cancel else "order.refund",
            obj=order,
            brand_id=part.brand_id,
            before={"refunded": part.amount_refunded, "status": part.status},
            after={"refunded": part.amount_refunded + amount, "refund": amount},
            note=reason,
        )
    for line_id, quantity in chosen.items():
        OrderLine.objects.filter(pk=line_id).update(
            quantity_refunded=F("quantity_refunded") + quantity
        )
    if shipping:
        part.shipping_refunded = True
        part.save(update_fields=["shipping_refunded"])
    if restock:
        restock_lines = (
            {line.pk: line.quantity - line.quantity_restocked for line in part_lines.values()}
            if cancel
            else chosen
        )
        _restock(part_lines, restock_lines)
    if cancel:
        part_transition(part=part, to=OrderStatus.CANCELLED, actor=actor, note=reason)
        order_status_refresh(order=order, actor=actor, note=f"{part.brand.name} cancelled")
    return refund


def _restock(part_lines: dict[int, OrderLine], quantities: dict[int, int]) -> None:
    products = set()
    for line_id in sorted(quantities, key=lambda i: part_lines[i].variant_id or 0):
        line, quantity = part_lines[line_id], quantities[line_id]
        if quantity <= 0:
            continue
        OrderLine.objects.filter(pk=line_id).update(
            quantity_restocked=F("quantity_restocked") + quantity
        )
        if line.variant_id:
            Variant.objects.filter(pk=line.variant_id, track_inventory=True).update(
                stock=F("stock") + quantity
            )
            products.add(line.variant.product_id)
    for product_id in sorted(products):
        product_refresh_summary(product_id=product_id)


COLLECT_LEASE = timedelta(minutes=5)


def _refund_claim(refund: OrderRefund, *, take_over_stale: bool = False) -> bool:
    """Take on step 2 for this refund; False when another process has it (a twin submit
    of the same form), so only one ever asks the provider and mails the shopper."""
    now = timezone.now()
    free = Q(collecting_since__isnull=True)
    if take_over_stale:  # the process that had it died
        free |= Q(collecting_since__lt=now - COLLECT_LEASE)
    claimed = OrderRefund.objects.filter(free, pk=refund.pk, status=RefundState.PENDING)
    return claimed.update(collecting_since=now) == 1


def _refund_collect(refund: OrderRefund) -> list[Refund]:
    """Step 2, without the order's lock, by the one process that claimed it: one provider
    refund per payment, in order, until the amount is covered. Resumable: a payment already
    asked is not asked again, and what is still needed is read afresh before each."""
    order = refund.order
    prefix = _refund_prefix(refund)
    for payment in _order_payments(order):
        made = list(Refund.objects.filter(idempotency_key__startswith=prefix))
        needed = refund.amount - _live(made)
        if needed <= 0:
            break
        if payment.pk in {r.payment_id for r in made}:
            continue
        payment.refresh_from_db()
        take = min(needed, payment.refundable)
        if take <= 0:
            continue
        try:
            refund_create(
                payment=payment,
                amount=take,
                idempotency_key=f"{prefix}{payment.pk}",
                reason=refund.reason or f"Refund of {refund.part.brand.name}'s part",
                actor=refund.actor,
            )
        except PaymentError:  # taken by another refund meanwhile: the next payment
            continue
    return list(Refund.objects.filter(idempotency_key__startswith=prefix))


def order_refunds_resume(*, older_than: timedelta = timedelta(minutes=5), limit: int = 100) -> int:
    """Sweep: a refund whose process died between recording it and asking the provider
    (step 1 committed, step 2 never ran) is asked now. Returns how many were resumed."""
    resumed = 0
    stale = OrderRefund.objects.filter(
        status=RefundState.PENDING, created_at__lt=timezone.now() - older_than
    ).select_related("order", "part__brand", "actor")
    for refund in stale.order_by("id")[:limit]:
        made = list(Refund.objects.filter(idempotency_key__startswith=_refund_prefix(refund)))
        if _live(made) >= refund.amount:
            continue  # asked already; payments retries what failed
        if not _refund_claim(refund, take_over_stale=True):
            continue  # its first process is still at it
        made = _refund_collect(refund)
        with transaction.atomic():
            _refund_finish(refund, made, "Resumed. ")
        resumed += 1
    return resumed


def _refund_prefix(refund: OrderRefund) -> str:
    return f"{REFUND_KEY_PREFIX}{refund.pk}-"


def _refund_finish(refund: OrderRefund, made: list[Refund], note: str) -> OrderRefund:
    """Step 3, under the lock: the outcome on the order, an event, the shopper's email."""
    order = Order.objects.select_for_update().get(pk=refund.order_id)
    order = order_refund_recorded(order=order)
    refund.refresh_from_db()
    part = OrderPart.objects.select_related("brand").get(pk=refund.part_id)
    done = sum((r.amount for r in made if r.status == RefundStatus.SUCCEEDED), Decimal("0.00"))
    waiting = refund.amount - done
    text = f"Refunded {money(done, order.currency)}"
    if waiting > 0:
        text += f"; {money(waiting, order.currency)} pending at the payment provider, retried"
    OrderEvent.objects.create(
        order=order,
        part=part,
        actor=refund.actor,
        from_status=part.status,
        to_status=part.status,
        note=f"{text}. {note}{refund.reason}"[:300],
    )
    lines = {
        line.pk: line for line in OrderLine.objects.filter(pk__in=[int(i) for i in refund.lines])
    }
    order_email(
        order,
        "refunded",
        f"Order {order.number}: {money(refund.amount, order.currency)} refunded",
        {
            "card": payments_card_label(references=[r.payment.reference for r in made]),
            "part": part,
            "refund": refund,
            "waiting": waiting,
            "refunded_lines": [(lines[int(i)], qty) for i, qty in refund.lines.items()],
        },
    )
    notification_send(
        recipient_id=order.user_id,
        kind=NotificationKind.ORDER,
        title=f"Order {order.number}: {money(refund.amount, order.currency)} refunded",
        body=refund.reason,
        url=order.get_absolute_url(),
    )
    return refund


def order_part_refund(
    *,
    part: OrderPart,
    actor: User | None,
    lines: dict[int, int] | None = None,
    shipping: bool = False,
    amount: Decimal | None = None,
    restock: bool = False,
    reason: str = "",
    key: str = "",
) -> OrderRefund:
    """Refund lines and quantities of one brand's part (and its shipping share), or an
    amount, never more than what is left of the part. With `restock`, the refunded units go
    back to stock. `key` (the form's token) makes a double submit land on the first."""
    key = key or uuid.uuid4().hex
    with transaction.atomic():
        refund = _refund_open(
            part=part,
            actor=actor,
            key=key,
            lines=lines or {},
            shipping=shipping,
            amount=amount,
            restock=restock,
            reason=reason,
        )
    if not _refund_claim(refund):
        return refund  # a twin submit of this form is asking the provider already
    made = _refund_collect(refund)
    with transaction.atomic():
        return _refund_finish(refund, made, "")


def order_part_cancel(*, part: OrderPart, actor: User | None, reason: str = "") -> OrderPart:
    """Cancel a paid, unshipped part: refunded in full (what is left of it) and restocked."""
    with transaction.atomic():
        refund = _refund_open(
            part=part,
            actor=actor,
            key=f"part-{part.pk}-cancel",
            lines={},
            shipping=True,
            amount=None,
            restock=True,
            reason=reason or "Cancelled",
            cancel=True,
        )
    if refund is not None and _refund_claim(refund):
        made = _refund_collect(refund)
        with transaction.atomic():
            _refund_finish(refund, made, "Cancelled. ")
    part.refresh_from_db()
    return part


def order_cancel(*, order: Order, actor: User | None, reason: str = "") -> Order:
    """Cancel the whole order: an unpaid one gives its held stock back; a paid one cancels
    every part (each refunded in full and restocked); a part already shipped refuses."""
    from orders.services import _release_holds  # services imports this module

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status == OrderStatus.PENDING_PAYMENT:
            order_transition(order=order, to=OrderStatus.CANCELLED, actor=actor, note=reason)
            _release_holds(order)
            return order
        if not ORDER_MACHINE.can(order, OrderStatus.CANCELLED):
            order_transition(order=order, to=OrderStatus.CANCELLED, actor=actor)  # says why
        parts = list(order.parts.filter(status=OrderStatus.PAID).order_by("id"))
    for part in parts:
        order_part_cancel(part=part, actor=actor, reason=reason)
    order.refresh_from_db()
    return order


def order_email(order: Order, template: str, subject: str, extra: dict) -> None:
    """Render templates/orders/email/<template>.{txt,html} for the shopper; sent on commit."""
    context = {
        "order": order,
        "lines": list(order.lines.all()),
        "site_url": settings.SITE_URL,
        **extra,
    }
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] {subject}",
        body=render_to_string(f"orders/email/{template}.txt", context),
        to=[order.email],
    )
    message.attach_alternative(
        render_to_string(f"orders/email/{template}.html", context), "text/html"
    )
    email_send_on_commit(message=message)
