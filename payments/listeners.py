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


# --- cards that a commitment still needs ----------------------------------------------------
# A held reservation or pledge will be charged with its saved card at the close, so deleting
# that card must be refused with the reason. Each app registers a function that, for a card,
# names what still needs it (an empty list when nothing does).

_card_uses: list[Callable[..., list[str]]] = []


def card_use_register(checker: Callable[..., list[str]]) -> None:
    if checker not in _card_uses:
        _card_uses.append(checker)


def card_uses(card) -> list[str]:
    """What still needs this card, e.g. ["your pre-order of Nimbus X2 (closes 3 Dec)"]."""
    return [use for checker in _card_uses for use in checker(card=card)]
