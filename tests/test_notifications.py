import pytest
from django.core import mail
from django.urls import reverse

from notifications.models import Notification, NotificationKind, NotificationPreference
from notifications.services import (
    notification_fan_out,
    notification_send,
    notifications_mark_read,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_send_follows_each_kinds_defaults(django_capture_on_commit_callbacks):
    fan = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(
            recipient_id=fan.pk,
            kind=NotificationKind.REPLY,
            title="Maya replied to your post",
            url="/c/nimbus/posts/1/",
        )
        notification_send(
            recipient_id=fan.pk, kind=NotificationKind.LIKE, title="Omar liked your post"
        )
    assert Notification.objects.filter(recipient=fan).count() == 2
    # Replies come by email by default, likes do not.
    assert [m.subject for m in mail.outbox] == ["[Fanhub] Maya replied to your post"]
    assert "http://127.0.0.1:8000/c/nimbus/posts/1/" in mail.outbox[0].body


def test_preferences_turn_channels_off(client, django_capture_on_commit_callbacks):
    fan = UserFactory()
    client.force_login(fan)
    data = {f"{kind}_app": "on" for kind in NotificationKind}
    data.pop("reply_app")
    response = client.post(reverse("notifications:preferences"), data)
    assert response.status_code == 302
    assert NotificationPreference.objects.get(user=fan, kind="reply").in_app is False
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(recipient_id=fan.pk, kind=NotificationKind.REPLY, title="Hi")
    assert not Notification.objects.exists() and mail.outbox == []


def test_fan_out_goes_in_chunks_after_the_commit(monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr("notifications.services.FAN_OUT_CHUNK", 2)
    members = [UserFactory().pk for _ in range(5)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        chunks = notification_fan_out(
            recipient_ids=iter(members), kind=NotificationKind.ANNOUNCEMENT, title="New phone!"
        )
    assert chunks == 3 and len(callbacks) == 3  # 2 + 2 + 1, each a Celery task
    assert not Notification.objects.exists()  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == members


def test_badge_counts_unread_and_the_cache_follows(client, django_capture_on_commit_callbacks):
    fan = UserFactory()
    client.force_login(fan)
    assert client.get(reverse("notifications:badge")).content.strip() == b""
    with django_capture_on_commit_callbacks(execute=True):  # the cached count drops on commit
        notification_send(recipient_id=fan.pk, kind=NotificationKind.BADGE, title="Early bird")
        notification_send(recipient_id=fan.pk, kind=NotificationKind.BADGE, title="First post")
    assert b"2" in client.get(reverse("notifications:badge")).content
    with django_capture_on_commit_callbacks(execute=True):
        notifications_mark_read(user_id=fan.pk)
    assert client.get(reverse("notifications:badge")).content.strip() == b""


def test_opening_marks_read_and_follows_the_link(client):
    fan = UserFactory()
    notification_send(
        recipient_id=fan.pk, kind=NotificationKind.ORDER, title="Paid", url="/orders/FH-ABC/"
    )
    notification = Notification.objects.get()
    client.force_login(UserFactory())
    assert client.post(reverse("notifications:open", args=[notification.pk])).status_code == 404
    client.force_login(fan)
    page = client.get(reverse("notifications:index")).content.decode()
    assert "Paid" in page and "New" in page
    response = client.post(reverse("notifications:open", args=[notification.pk]))
    assert response["Location"] == "/orders/FH-ABC/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_an_offsite_link_is_not_followed(client):
    fan = UserFactory()
    notification_send(
        recipient_id=fan.pk, kind=NotificationKind.ORDER, title="x", url="https://evil.example/"
    )
    client.force_login(fan)
    response = client.post(reverse("notifications:open", args=[Notification.objects.get().pk]))
    assert response["Location"] == reverse("notifications:index")
