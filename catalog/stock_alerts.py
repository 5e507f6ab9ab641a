"""Back-in-stock alerts: a signed-in fan asks to be told when an out-of-stock variant is
back; a beat sweep tells each fan once, then the alert is done.

Why a sweep and not a hook where stock is raised: stock goes up in many places (the admin,
a CSV import, an order refunded and restocked, a hold that expires), and a hook missed in
one of them would silently never tell anyone. The sweep reads only the waiting rows (a
partial index), works in chunks, and claims each chunk under `skip_locked` row locks, so
two sweeps never tell the same fan twice; the email is an outbox row of the same
transaction as the `sent` status, so a crash tells nobody or tells them once."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from catalog.models import ProductStatus, StockAlert, StockAlertStatus, Variant
from markup.text import text_clean_line
from notifications.models import NotificationKind
from notifications.services import email_send_on_commit, notification_send

SWEEP_CHUNK = 200


def _back_in_stock() -> Q:
    """The alert's variant can be bought again."""
    return (
        Q(variant__is_active=True)
        & Q(variant__product__status=ProductStatus.ACTIVE)
        & (Q(variant__track_inventory=False) | Q(variant__stock__gt=0))
    )


def stock_alert_waiting(*, user: User, variant: Variant) -> StockAlert | None:
    if not user.is_authenticated:
        return None
    return StockAlert.objects.filter(
        user=user, variant=variant, status=StockAlertStatus.WAITING
    ).first()


@transaction.atomic
def stock_alert_subscribe(*, user: User, variant: Variant) -> StockAlert:
    """Ask to be told when `variant` is back. Asking twice (or twice at once) leaves one
    waiting row; asking again after being told or cancelling reopens it."""
    if variant.is_available:
        raise ValidationError("This option is in stock: you can buy it now.", code="in_stock")
    alert = StockAlert(user=user, variant=variant, status=StockAlertStatus.WAITING)
    alert.full_clean(validate_unique=False, validate_constraints=False)
    # One INSERT ... ON CONFLICT DO UPDATE: safe when the same form is submitted twice at once.
    (alert,) = StockAlert.objects.bulk_create(
        [alert],
        update_conflicts=True,
        unique_fields=["user", "variant"],
        update_fields=["status", "sent_at"],
    )
    return alert


@transaction.atomic
def stock_alert_cancel(*, user: User, variant: Variant) -> bool:
    """Stop waiting; True when a waiting alert was cancelled now."""
    return bool(
        StockAlert.objects.filter(
            user=user, variant=variant, status=StockAlertStatus.WAITING
        ).update(status=StockAlertStatus.CANCELLED)
    )


def _alert_email(alert: StockAlert) -> EmailMessage:
    variant = alert.variant
    context = {
        "user": alert.user,
        "variant": variant,
        "product": variant.product,
        "url": f"{settings.SITE_URL}{variant.product.get_absolute_url()}?variant={variant.pk}",
        "site_name": settings.SITE_NAME,
    }
    return EmailMessage(
        subject=text_clean_line(f"[{settings.SITE_NAME}] {variant} is back in stock"),
        body=render_to_string("catalog/email/back_in_stock.txt", context),
        to=[alert.user.email],
    )


@transaction.atomic
def stock_alerts_send_due(*, limit: int = SWEEP_CHUNK) -> int:
    """One chunk of the sweep: tell up to `limit` waiting fans whose variant is back, each
    once. Returns how many were told (the task runs the next chunk when it got a full one)."""
    alerts = list(
        StockAlert.objects.filter(_back_in_stock(), status=StockAlertStatus.WAITING)
        .select_related("user", "variant__product")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("id")[:limit]
    )
    if not alerts:
        return 0
    StockAlert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(
        status=StockAlertStatus.SENT, sent_at=timezone.now()
    )
    for alert in alerts:
        variant = alert.variant
        # In the notification centre (the shop's kind); the email goes out anyway, as the
        # fan asked for exactly this one message.
        notification_send(
            recipient_id=alert.user_id,
            kind=NotificationKind.BACK_IN_STOCK,
            title=f"{variant} is back in stock",
            body="You asked us to tell you. Stock may be short: it is first come, first served.",
            url=f"{variant.product.get_absolute_url()}?variant={variant.pk}",
        )
        if alert.user.is_active and alert.user.email:
            email_send_on_commit(message=_alert_email(alert))
    return len(alerts)
