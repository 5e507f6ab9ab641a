"""Outgoing notifications. The bottom layer: every app calls in, this calls no app of ours."""

from django.core.mail import EmailMessage

from notifications.emails import email_serialize
from notifications.tasks import email_deliver


def email_send_on_commit(*, message: EmailMessage) -> None:
    """Queue an already rendered email; a worker sends it once the current transaction
    commits, so a request never waits on SMTP and a rolled-back signup sends nothing."""
    payload = email_serialize(message)
    email_deliver.delay_on_commit(payload)
