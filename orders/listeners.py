"""Hooks for apps above orders that react to a purchase (points in the brand's fan club, ...)
without orders importing them: they register here in their AppConfig.ready() (storefront
composes orders and communities), orders calls these on commit. An explicit registry, called
explicitly; not Django signals. The same pattern as payments/listeners.py."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

_paid: list[Callable[..., None]] = []
_refunded: list[Callable[..., None]] = []
_voided: list[Callable[..., None]] = []


def order_paid_register(listener: Callable[..., None]) -> None:
    """`listener(order_id=...)`, once the order's payment has committed."""
    if listener not in _paid:
        _paid.append(listener)


def order_refunded_register(listener: Callable[..., None]) -> None:
    """`listener(refund_id=...)` (an OrderRefund), once its refund has succeeded."""
    if listener not in _refunded:
        _refunded.append(listener)


def order_paid_notify(*, order_id: int) -> None:
    for listener in _paid:
        transaction.on_commit(lambda listener=listener: listener(order_id=order_id))


def order_refunded_notify(*, refund_id: int) -> None:
    for listener in _refunded:
        transaction.on_commit(lambda listener=listener: listener(refund_id=refund_id))


def order_voided_register(listener: Callable[..., None]) -> None:
    """`listener(order_id=...)`, inside the transaction, when the whole order became
    cancelled or refunded (a voucher gives its use back)."""
    if listener not in _voided:
        _voided.append(listener)


def order_voided_notify(*, order_id: int) -> None:
    for listener in _voided:
        listener(order_id=order_id)
