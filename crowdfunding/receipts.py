"""Receipts of pledges: one email (and an in-app notice) for every pledge made, changed or
cancelled, every charge, and every failed charge (with the link to pay again). Called by the
services at the one place each happens, after its state check, so a path that runs twice
(a re-delivered settlement chunk, a replayed webhook) finds the state moved and mails nobody.
Texts: templates/crowdfunding/email/<name>.{txt,html}."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from crowdfunding.models import Pledge
from formatting.formats import money
from notifications.models import NotificationKind
from notifications.services import emails_send_on_commit, notifications_in_app
from payments.models import Payment
from payments.selectors import card_label, card_labels


def _message(*, address: str, template: str, subject: str, context: dict) -> EmailMultiAlternatives:
    context = {**context, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=f"[{settings.SITE_NAME}] {subject}",
        body=render_to_string(f"crowdfunding/email/{template}.txt", context),
        to=[address],
    )
    message.attach_alternative(
        render_to_string(f"crowdfunding/email/{template}.html", context), "text/html"
    )
    return message


def _send(pledge: Pledge, template: str, subject: str, **extra) -> None:
    emails_send_on_commit(
        messages=[
            _message(
                address=pledge.user.email,
                template=template,
                subject=subject,
                context={"pledge": pledge, "campaign": pledge.campaign, **extra},
            )
        ]
    )
    notifications_in_app(
        kind=NotificationKind.CAMPAIGN,
        items=[(pledge.user_id, subject, "", pledge.get_absolute_url())],
    )


def pledge_receipt(*, pledge: Pledge, what: str) -> None:
    """`what`: made, changed or cancelled."""
    campaign = pledge.campaign
    amount = money(pledge.amount, campaign.currency)
    subject = {
        "made": _("You pledged %(amount)s to %(title)s"),
        "changed": _("Your pledge to %(title)s is now %(amount)s"),
        "cancelled": _("You cancelled your pledge to %(title)s"),
    }[what] % {"amount": amount, "title": campaign.title}
    _send(pledge, "pledge", subject, what=what, card=card_label(pledge.saved_card))


def charged_receipts(*, pledges: list[Pledge], payments: dict[int, Payment]) -> int:
    """One receipt per charged pledge, in bulk for a settlement chunk."""
    if not pledges:
        return 0
    labels = card_labels(card_ids=[p.saved_card_id for p in payments.values() if p.saved_card_id])
    messages, notices = [], []
    for pledge in pledges:
        payment = payments[pledge.pk]
        subject = _("Your pledge to %(title)s is paid: %(amount)s") % {
            "title": pledge.campaign.title,
            "amount": money(payment.amount, payment.currency),
        }
        messages.append(
            _message(
                address=pledge.user.email,
                template="charged",
                subject=subject,
                context={
                    "pledge": pledge,
                    "campaign": pledge.campaign,
                    "payment": payment,
                    "card": labels.get(payment.saved_card_id) or card_label(None),
                    "order": pledge.order,
                },
            )
        )
        notices.append((pledge.user_id, subject, "", pledge.get_absolute_url()))
    emails_send_on_commit(messages=messages)
    notifications_in_app(kind=NotificationKind.CAMPAIGN, items=notices)
    return len(messages)


def payment_failed_email(*, pledge: Pledge, reminder: bool = False) -> None:
    subject = (
        _("Reminder: your pledge to %(title)s needs a payment")
        if reminder
        else _("Your pledge to %(title)s needs a payment")
    ) % {"title": pledge.campaign.title}
    emails_send_on_commit(
        messages=[
            _message(
                address=pledge.user.email,
                template="payment_failed",
                subject=subject,
                context={"pledge": pledge, "campaign": pledge.campaign, "reminder": reminder},
            )
        ]
    )
