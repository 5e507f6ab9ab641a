"""Outgoing notifications. The bottom layer: every app calls in, this calls no app of ours.

`notification_send` for one person; `notification_fan_out` for many (an announcement to a
community of 100,000): it splits the recipients into chunks that Celery workers deliver after
the commit, never a loop in the request."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from markup.text import text_clean_line
from notifications.emails import email_deserialize, email_serialize
from notifications.models import (
    DEFAULT_CHANNELS,
    Notification,
    NotificationKind,
    NotificationPreference,
    OutboxEmail,
)
from notifications.tasks import email_deliver, notifications_deliver_chunk

FAN_OUT_CHUNK = 1000
logger = logging.getLogger(__name__)


def unread_cache_key(user_id: int) -> str:
    return f"notifications:unread:{user_id}"


def email_send_on_commit(*, message: EmailMessage) -> None:
    """Queue an already rendered email; a worker sends it once the current transaction
    commits, so a request never waits on SMTP and a rolled-back signup sends nothing.
    The email is a row of the same transaction: if the broker is down at the commit, the
    request still succeeds and emails_outbox_flush sends it when the broker is back."""
    outbox = OutboxEmail.objects.create(payload=email_serialize(message))
    after_commit_robust(lambda: email_deliver.delay(outbox.pk))


def emails_send_on_commit(*, messages: list[EmailMessage]) -> int:
    """Many rendered emails at once (a settlement chunk's receipts): one INSERT for their
    outbox rows, and each is sent by a worker after the commit, as email_send_on_commit."""
    rows = OutboxEmail.objects.bulk_create(
        [OutboxEmail(payload=email_serialize(message)) for message in messages]
    )
    ids = [row.pk for row in rows]
    after_commit_robust(lambda: [email_deliver.delay(pk) for pk in ids])
    return len(ids)


def notifications_in_app(*, kind: NotificationKind, items: list[tuple[int, str, str, str]]) -> int:
    """In-app notices only, many at once: (recipient_id, title, body, url) each, for those
    whose preference keeps the notification centre on. For what has its own email already
    (a receipt), so nobody gets that email twice."""
    if not items:
        return 0
    channels = channels_for(user_ids=list({item[0] for item in items}), kind=kind)
    rows = [
        Notification(recipient_id=uid, kind=kind, title=title[:200], body=body[:500], url=url[:300])
        for uid, title, body, url in items
        if channels[uid][0]
    ]
    Notification.objects.bulk_create(rows)
    keys = list({unread_cache_key(row.recipient_id) for row in rows})
    after_commit_robust(lambda: cache.delete_many(keys))
    return len(rows)


def after_commit_robust(func: Callable[[], object]) -> None:
    """Work for after the commit (publish a task, drop a cache key) that must never turn a
    committed change into an error page: a failure is logged; what needs doing again is
    redone by a sweep (emails) or expires by itself (cache entries)."""
    transaction.on_commit(func, robust=True)


def email_outbox_deliver(*, outbox_id: int) -> bool:
    """Send one outbox email unless it was sent already; True when sent now. The row stays
    locked while sending, so a task and the sweep never send it twice at once."""
    failure: OSError | None = None
    with transaction.atomic():
        outbox = (
            OutboxEmail.objects.select_for_update(skip_locked=True)
            .filter(pk=outbox_id, sent_at=None)
            .first()
        )
        if outbox is None:  # sent, or being sent by another worker
            return False
        try:
            email_deserialize(outbox.payload).send(fail_silently=False)
        except OSError as exc:  # SMTP down: counted below, and tried again
            failure = exc
        else:
            OutboxEmail.objects.filter(pk=outbox.pk).update(
                sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
            )
    if failure is not None:
        OutboxEmail.objects.filter(pk=outbox_id).update(
            attempts=F("attempts") + 1, last_error=str(failure)[:300]
        )
        raise failure
    return True


OUTBOX_GRACE = timedelta(minutes=1)  # younger rows are still on their way through the broker
OUTBOX_MAX_ATTEMPTS = 20


def emails_outbox_flush(*, limit: int = 200) -> int:
    """Beat sweep: send the emails whose task never ran (broker down at the commit, a worker
    lost). Returns how many were sent."""
    due = list(
        OutboxEmail.objects.filter(
            sent_at=None,
            created_at__lt=timezone.now() - OUTBOX_GRACE,
            attempts__lt=OUTBOX_MAX_ATTEMPTS,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for outbox_id in due:
        try:
            sent += email_outbox_deliver(outbox_id=outbox_id)
        except OSError:
            logger.warning("outbox email %s could not be sent yet", outbox_id)
    return sent


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
    keys = [unread_cache_key(uid) for uid in in_app]
    after_commit_robust(lambda: cache.delete_many(keys))
    by_email = [uid for uid, (_, email) in channels.items() if email]
    link = f"{settings.SITE_URL}{url}" if url.startswith("/") else url
    for address in (
        get_user_model()
        .objects.filter(pk__in=by_email, is_active=True)
        .values_list("email", flat=True)
    ):
        email_send_on_commit(
            message=EmailMessage(
                subject=text_clean_line(f"[{settings.SITE_NAME}] {title}"),
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
    key = unread_cache_key(user_id)
    after_commit_robust(lambda: cache.delete(key))
    return changed


@transaction.atomic
def preferences_save(*, user_id: int, choices: dict[str, tuple[bool, bool]]) -> None:
    for kind, (in_app, email) in choices.items():
        NotificationPreference.objects.update_or_create(
            user_id=user_id, kind=kind, defaults={"in_app": in_app, "email": email}
        )
