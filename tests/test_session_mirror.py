"""Each process keeps the sessions it read (accounts.sessions): a signed-in fan's warm page
asks Redis for nothing, and a session ended or changed anywhere else (another web process, a
worker, its expiry) counts on the very next request, without waiting."""

import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_reads(monkeypatch):
    """How many times the sessions cache is read."""
    sessions = caches[settings.SESSION_CACHE_ALIAS]
    counts = {"reads": 0}
    original = sessions.get

    def counted(*args, **kwargs):
        counts["reads"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(sessions, "get", counted)
    return counts


def _other_process() -> redis.Redis:
    return redis.Redis.from_url(settings.CACHES[settings.SESSION_CACHE_ALIAS]["LOCATION"])


def _session_key_in_redis(client) -> str:
    sessions = caches[settings.SESSION_CACHE_ALIAS]
    return str(sessions.make_key(KEY_PREFIX + client.session.session_key))


def _signed_in(client) -> bool:
    return client.get("/orders/").status_code == 200  # a sign-in page's redirect otherwise


def test_a_warm_page_reads_the_session_from_redis_once(client, session_reads):
    client.force_login(UserFactory())
    for _ in range(3):
        assert _signed_in(client)
    reads = session_reads["reads"]
    for _ in range(3):
        assert _signed_in(client)
    assert session_reads["reads"] == reads


def test_signing_out_in_this_process_counts_at_once(client):
    client.force_login(UserFactory())
    for _ in range(3):
        assert _signed_in(client)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.post("/accounts/logout/")
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie  # the old cookie, replayed
    assert not _signed_in(client)


def test_a_session_ended_by_another_process_counts_on_the_next_request(client):
    client.force_login(UserFactory())
    for _ in range(3):
        assert _signed_in(client)
    key = client.session.session_key
    # What another process's sign-out does: the row, then the cache entry.
    Session.objects.filter(session_key=key).delete()
    assert _signed_in(client)  # the cache entry counts first, as with Django's cached_db
    _other_process().delete(_session_key_in_redis(client))
    assert not _signed_in(client)  # no sleep: the invalidation came before the DEL's reply


def test_a_session_changed_by_another_process_is_read_anew(client):
    user = UserFactory()
    other = UserFactory()
    client.force_login(user)
    for _ in range(3):
        assert _signed_in(client)
    # Another process writes the session (here: signs in someone else under the same key).
    store = client.session
    store["_auth_user_id"] = str(other.pk)
    store["_auth_user_hash"] = other.get_session_auth_hash()
    data = store._session
    sessions = caches[settings.SESSION_CACHE_ALIAS]
    _other_process().set(_session_key_in_redis(client), sessions.client.encode(data), ex=3600)
    response = client.get("/orders/")
    assert response.wsgi_request.user.pk == other.pk


def test_an_expired_session_counts_once_redis_expires_it(client):
    client.force_login(UserFactory())
    for _ in range(3):
        assert _signed_in(client)
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    _other_process().pexpire(_session_key_in_redis(client), 50)
    deadline = time.monotonic() + 10  # Redis expires keys in its background cycle
    while _signed_in(client):
        assert time.monotonic() < deadline, "the expired session was still honoured"
        time.sleep(0.05)
