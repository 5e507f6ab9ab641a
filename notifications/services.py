"""Outgoing notifications. The bottom layer: every app calls in, this calls no app of ours.

`notification_send` for one person; `notification_fan_out` for many (an announcement to a
community of 100,000): it splits the recipients into chunks that Celery workers deliver after
the commit, never a loop in the request."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from notifications.emails import email_serialize
from notifications.models import (
    DEFAULT_CHANNELS,
    Notification,
    NotificationKind,
    NotificationPreference,
)
from notifications.tasks import email_deliver, notifications_deliver_chunk

FAN_OUT_CHUNK = 1000


def unread_cache_key(user_id: int) -> str:
    return f"notifications:unread:{user_id}"


def email_send_on_commit(*, message: EmailMessage) -> None:
    """Queue an already rendered email; a worker sends it once the current transaction
    commits, so a request never waits on SMTP and a rolled-back signup sends nothing."""
    payload = email_serialize(message)
    email_deliver.delay_on_commit(payload)


def channels_for(*, user_ids: list[int], kind: str) -> dict[int, tuple[bool, bool]]:
    """(in app, by email) for each user: their preference, else the kind's default."""
    default = DEFAULT_CHANNELS[kind]
    chosen = {
        user_id: (in_app, email)
        for user_id, in_app, email in NotificationPreference.objects.filter(
            user_id__in=user_ids, kind=kind
        ).values_list("user_id", "in_app", "email")
    }
    return {user_id: chosen.get(user_id, default) for user_id in user_ids}


def notifications_deliver(
    *, recipient_ids: list[int], kind: str, title: str, body: str = "", url: str = ""
) -> int:
    """Create the in-app notifications and queue the emails for one chunk of recipients."""
    channels = channels_for(user_ids=recipient_ids, kind=kind)
    in_app = [uid for uid, (app, _) in channels.items() if app]
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=uid, kind=kind, title=title[:200], body=body[:500], url=url[:300]
            )
            for uid in in_app
        ]
    )
    cache.delete_many([unread_cache_key(uid) for uid in in_app])
    by_email = [uid for uid, (_, email) in channels.items() if email]
    link = f"{settings.SITE_URL}{url}" if url.startswith("/") else url
    for address in (
        get_user_model()
        .objects.filter(pk__in=by_email, is_active=True)
        .values_list("email", flat=True)
    ):
        email_send_on_commit(
            message=EmailMessage(
                subject=f"[{settings.SITE_NAME}] {title}",
                body=f"{body}\n\n{link}\n\nChange which emails you get: "
                f"{settings.SITE_URL}/notifications/preferences/",
                to=[address],
            )
        )
    return len(in_app)


def notification_send(
    *, recipient_id: int, kind: NotificationKind, title: str, body: str = "", url: str = ""
) -> None:
    notifications_deliver(recipient_ids=[recipient_id], kind=kind, title=title, body=body, url=url)


def notification_fan_out(
    *,
    recipient_ids: Iterable[int],
    kind: NotificationKind,
    title: str,
    body: str = "",
    url: str = "",
) -> int:
    """Queue delivery to many recipients in chunks of FAN_OUT_CHUNK, after the commit.
    Returns the number of chunks."""
    chunk: list[int] = []
    chunks = 0
    for recipient_id in recipient_ids:
        chunk.append(recipient_id)
        if len(chunk) == FAN_OUT_CHUNK:
            notifications_deliver_chunk.delay_on_commit(chunk, kind, title, body, url)
            chunk, chunks = [], chunks + 1
    if chunk:
        notifications_deliver_chunk.delay_on_commit(chunk, kind, title, body, url)
        chunks += 1
    return chunks


def notifications_mark_read(*, user_id: int, ids: list[int] | None = None) -> int:
    queryset = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    changed = queryset.update(read_at=timezone.now())
    cache.delete(unread_cache_key(user_id))
    return changed


@transaction.atomic
def preferences_save(*, user_id: int, choices: dict[str, tuple[bool, bool]]) -> None:
    for kind, (in_app, email) in choices.items():
        NotificationPreference.objects.update_or_create(
            user_id=user_id, kind=kind, defaults={"in_app": in_app, "email": email}
        )
