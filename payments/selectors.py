"""Reads of payments that other apps show (receipts, pages)."""

from __future__ import annotations

from payments.models import Payment, PaymentStatus, SavedCard


def card_label(card: SavedCard | None) -> str:
    """ "Visa •••• 4242": the one way a card is named to the shopper."""
    if card is None:
        return "your card"
    return f"{card.brand.title()} •••• {card.last4}"


def payment_card_label(payment: Payment | None) -> str:
    """The card a payment was (or is being) charged to."""
    if payment is None:
        return card_label(None)
    return card_label(payment.saved_card if payment.saved_card_id else None)


def payments_card_label(*, references: list[str]) -> str:
    """The card(s) behind the succeeded payments of these references, e.g. a pre-order's
    deposit and final charge: "Visa •••• 4242" (or two names joined when they differ)."""
    labels: list[str] = []
    for payment in (
        Payment.objects.filter(
            reference__in=references,
            saved_card__isnull=False,
            status__in=[
                PaymentStatus.SUCCEEDED,
                PaymentStatus.PARTIALLY_REFUNDED,
                PaymentStatus.REFUNDED,
            ],
        )
        .select_related("saved_card")
        .order_by("pk")
    ):
        label = card_label(payment.saved_card)
        if label not in labels:
            labels.append(label)
    return " and ".join(labels) or card_label(None)


def card_labels(*, card_ids: list[int]) -> dict[int, str]:
    """Many cards' labels in one query (a settlement chunk's receipts), by card id."""
    return {
        card.pk: card_label(card)
        for card in SavedCard.objects.filter(pk__in=set(card_ids)).only("brand", "last4")
    }
