import io
import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from PIL import Image

from accounts.models import User
from notifications.services import email_send_on_commit
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _signup(client, django_capture_on_commit_callbacks, email="new.fan@example.com"):
    name = email.split("@")[0].replace(".", " ")
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            reverse("account_signup"),
            {
                "display_name": name,
                "email": email,
                "password1": TEST_PASSWORD,
                "password2": TEST_PASSWORD,
            },
        )


def _confirmation_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_signup_sends_verification_mail_and_blocks_login_until_verified(
    client, django_capture_on_commit_callbacks
):
    response = _signup(client, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="new.fan@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.fan@example.com"]
    assert "[Fanhub]" in mail.outbox[0].subject
    assert "Hello from Fanhub!" in mail.outbox[0].body
    # Not verified yet: signing in is refused and sends the user to the "check your mail" page.
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "new.fan@example.com", "password": TEST_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session


def test_verification_link_then_login_and_logout(client, django_capture_on_commit_callbacks):
    _signup(client, django_capture_on_commit_callbacks)
    link = _confirmation_link(mail.outbox[0])

    page = client.get(link)
    assert page.status_code == 200
    assert b"new.fan@example.com" in page.content
    response = client.post(link)
    assert response.status_code == 302
    assert EmailAddress.objects.get(email="new.fan@example.com").verified

    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "new.fan@example.com", "password": TEST_PASSWORD}
    )
    assert response.status_code == 302
    home = client.get(reverse("home"))
    assert b"Sign out" in home.content
    assert int(client.session["_auth_user_id"]) == User.objects.get(email="new.fan@example.com").pk

    # Logout is a POST (a GET shows the confirmation page and keeps the session).
    client.get(reverse("account_logout"))
    assert "_auth_user_id" in client.session
    client.post(reverse("account_logout"))
    assert "_auth_user_id" not in client.session


def test_signup_rejects_duplicate_email_case_insensitively(
    client, django_capture_on_commit_callbacks
):
    UserFactory(email="taken@example.com")
    response = _signup(client, django_capture_on_commit_callbacks, email="TAKEN@example.com")
    # Enumeration prevention: the form "succeeds" but no second account exists and the
    # owner of the address is told by mail instead.
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert response.status_code == 302


def test_mail_leaves_only_when_the_transaction_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            email_send_on_commit(message=EmailMessage("rolled back", "body", to=["a@example.com"]))
            raise RuntimeError("the signup failed after queueing its mail")
        with transaction.atomic():
            email_send_on_commit(message=EmailMessage("kept", "body", to=["b@example.com"]))
        assert mail.outbox == []  # queued, not sent, until the outer transaction commits
    assert [message.subject for message in mail.outbox] == ["kept"]


def test_failed_logins_are_rate_limited_per_account(client, user):
    for _ in range(5):
        response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
        assert response.status_code == 200
        assert b"not correct" in response.content
    response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    assert b"Too many failed login attempts" in response.content
    # Even the right password is refused from this address while the limit holds (it is
    # per account and address: tests/test_identity.py shows others and elsewhere are not).
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD}
    )
    assert "_auth_user_id" not in client.session


def test_password_reset_mail(client, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def _png(size=(64, 64), colour="orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def test_profile_requires_login(client):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_profile_updates_display_name_and_avatar(user_client, user):
    upload = SimpleUploadedFile("me.png", _png((900, 600)), content_type="image/png")
    response = user_client.post(
        reverse("accounts:profile"), {"display_name": "  Mi   Fan  ", "avatar": upload}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.display_name == "Mi Fan"
    assert user.avatar.name.endswith(".jpg")  # re-encoded, not stored as uploaded
    with user.avatar.open("rb") as stored, Image.open(stored) as image:
        assert image.format == "JPEG"
        assert max(image.size) == 512
    page = user_client.get(reverse("accounts:profile"))
    assert b"Mi Fan" in page.content


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.png", b"this is a text file, not a picture", b"valid image"),
        ("empty.png", b"", b"empty"),
    ],
)
def test_profile_refuses_non_images(user_client, user, name, content, message):
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    response = user_client.post(
        reverse("accounts:profile"), {"display_name": "Changed", "avatar": upload}
    )
    assert response.status_code == 400
    assert message in response.content
    user.refresh_from_db()
    assert user.display_name != "Changed"
    assert not user.avatar


@pytest.mark.parametrize("side", [6_000, 20_000])
def test_profile_refuses_oversized_images(user_client, user, side):
    """6,000² is above our 25-megapixel cap; 20,000² is a decompression bomb for Pillow."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG")
    upload = SimpleUploadedFile("huge.png", out.getvalue(), content_type="image/png")
    response = user_client.post(
        reverse("accounts:profile"), {"display_name": "Changed", "avatar": upload}
    )
    assert response.status_code == 400
    assert b"pixels" in response.content or b"valid image" in response.content
    user.refresh_from_db()
    assert user.display_name != "Changed"
    assert not user.avatar


def test_profile_avatar_can_be_removed(user_client, user):
    user_client.post(
        reverse("accounts:profile"),
        {"display_name": "A", "avatar": SimpleUploadedFile("a.png", _png(), "image/png")},
    )
    user.refresh_from_db()
    assert user.avatar
    user_client.post(reverse("accounts:profile"), {"display_name": "A", "avatar-clear": "on"})
    user.refresh_from_db()
    assert not user.avatar


def test_signups_are_rate_limited_per_address(client, settings, django_capture_on_commit_callbacks):
    limit = int(settings.ACCOUNT_RATE_LIMITS["signup"].split("/")[0])
    for n in range(limit):
        _signup(client, django_capture_on_commit_callbacks, email=f"bot{n}@example.com")
        client.logout()
    response = _signup(client, django_capture_on_commit_callbacks, email="one.more@example.com")
    assert response.status_code == 429
    assert not User.objects.filter(email="one.more@example.com").exists()
    assert User.objects.filter(email__startswith="bot").count() == limit
