"""The signed-in user read from a cache (accounts.user_cache): no query for their row on
each request, and whatever changes the row shows on every session's next request."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tests.factories import TEST_PASSWORD, UserFactory


def _signed_in(client: Client) -> bool:
    response = client.get("/")
    assert response.status_code == 200
    return b"Sign out" in response.content


def _signed_in_twice(user: User) -> tuple[Client, Client]:
    one, two = Client(), Client()
    for client in (one, two):
        assert client.login(email=user.email, password=TEST_PASSWORD)
        assert _signed_in(client)
    return one, two


def test_a_members_request_reads_no_user_row(client, db):
    fan = UserFactory(display_name="Lin Zhou")
    client.force_login(fan)
    _signed_in(client)
    with CaptureQueriesContext(connection) as queries:
        assert _signed_in(client)
    assert not [q for q in queries.captured_queries if '"accounts_user"' in q["sql"]]


def test_a_password_change_signs_out_the_other_sessions(db, django_capture_on_commit_callbacks):
    fan = UserFactory()
    changer, other = _signed_in_twice(fan)
    with django_capture_on_commit_callbacks(execute=True):
        response = changer.post(
            "/accounts/password/change/",
            {
                "oldpassword": TEST_PASSWORD,
                "password1": "n3w-Secret-pass",
                "password2": "n3w-Secret-pass",
            },
        )
    assert response.status_code == 302
    assert not _signed_in(other)
    assert _signed_in(changer)  # the changer's own session carries the new hash


def test_a_deactivation_signs_out_on_the_next_request(db, django_capture_on_commit_callbacks):
    fan = UserFactory()
    one, two = _signed_in_twice(fan)
    with django_capture_on_commit_callbacks(execute=True):
        fan.is_active = False
        fan.save(update_fields=["is_active"])
    assert not _signed_in(one) and not _signed_in(two)


def test_bulk_writes_sign_out_too(db, django_capture_on_commit_callbacks):
    deactivated, deleted = UserFactory(), UserFactory()
    first, _ = _signed_in_twice(deactivated)
    second, _ = _signed_in_twice(deleted)
    with django_capture_on_commit_callbacks(execute=True):
        User.objects.filter(pk=deactivated.pk).update(is_active=False)  # an admin action
        User.objects.filter(pk=deleted.pk).delete()
    assert not _signed_in(first) and not _signed_in(second)


def test_a_new_display_name_shows_in_the_header_at_once(client, db):
    fan = UserFactory(display_name="Lin Zhou")
    client.force_login(fan)
    assert b"Lin Zhou" in client.get("/").content
    fan.display_name = "Lin Z."
    fan.save(update_fields=["display_name"])
    page = client.get("/").content
    assert b"Lin Z." in page and b"Lin Zhou" not in page
