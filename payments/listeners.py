"""How a payment's outcome reaches the app that asked for it, without payments importing
that app: each app registers a listener for its reference prefix ("order:", "preorder-res:",
...) in its AppConfig.ready(). An explicit registry, called explicitly; not Django signals."""

from collections.abc import Callable

_listeners: dict[str, Callable[..., None]] = {}


def payment_listener_register(prefix: str, listener: Callable[..., None]) -> None:
    _listeners[prefix] = listener


def payment_listener_notify(payment) -> None:
    """Call the listener of the payment's reference prefix (inside the caller's transaction)."""
    prefix = payment.reference.split(":", 1)[0]
    listener = _listeners.get(prefix)
    if listener is not None:
        listener(payment=payment)
