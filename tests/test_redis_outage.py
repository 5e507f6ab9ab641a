"""Redis stops while people browse: pages are served from the database, nobody is signed out,
/healthz says what is down, and the cache works again once Redis is back.

A real redis-server on a TCP port of its own (the suite's Redis is never touched), stopped
and started again on the same port, with the cache and the sessions pointed at it."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from communities.models import Community, Membership, Role
from communities.services import post_create
from config.settings.base import celery_broker_url, redis_url_for
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.services import free_port, redis_server_start, redis_server_stop

pytestmark = pytest.mark.django_db

# No pause after a failure here (production skips Redis for 5 s), so "Redis is back" is
# noticed on the next request without the test waiting on a clock.
PAUSE_SECONDS = 0


@dataclass
class ThrowawayRedis:
    directory: Path
    port: int
    persist: bool
    process: object = None
    url: str = ""

    def start(self) -> None:
        self.process, self.url = redis_server_start(
            self.directory, port=self.port, persist=self.persist
        )

    def stop(self, *, save: bool = False) -> None:
        redis_server_stop(self.process, url=self.url, save=save)

    def keys(self, db: int) -> list[bytes]:
        return redis.Redis.from_url(redis_url_for(self.url, db)).keys("*")


def _caches_on(url: str) -> dict:
    caches_config = {}
    for alias, db in (("default", 1), ("sessions", 2)):
        config = dict(settings.CACHES[alias], LOCATION=redis_url_for(url, db))
        config["OPTIONS"] = dict(config["OPTIONS"], OUTAGE_PAUSE_SECONDS=PAUSE_SECONDS)
        caches_config[alias] = config
    return caches_config


def _throwaway(tmp_path: Path, *, persist: bool) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(directory=tmp_path, port=free_port(), persist=persist)
    server.start()
    try:
        with override_settings(
            CACHES=_caches_on(server.url),
            CELERY_BROKER_URL=celery_broker_url(redis_url_for(server.url, 0)),
        ):
            yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def throwaway_redis(tmp_path):
    yield from _throwaway(tmp_path, persist=False)


@pytest.fixture
def persistent_redis(tmp_path):
    """A server that keeps its data across a stop: as if it had only been unreachable."""
    yield from _throwaway(tmp_path, persist=True)


@pytest.fixture
def shop():
    brand = BrandFactory(name="Nimbus Mobile")
    product = ProductFactory(brand=brand, name="Nimbus Phone 3")
    VariantFactory(product=product)
    community = Community.objects.create(
        name="Nimbus Fans", slug="nimbus-fans", kind="brand", brand=brand
    )
    author = UserFactory()
    Membership.objects.create(community=community, user=author, role=Role.OWNER)
    post_create(community=community, author=author, title="Battery tips", body="Dim it.")
    return product, community


def _pages(product, community) -> dict[str, str]:
    """Each page and a text it must show."""
    return {
        reverse("home"): "Nimbus Fans",
        reverse("catalog:index"): "Nimbus Phone 3",
        reverse("communities:detail", args=[community.slug]): "Battery tips",
        reverse("storefront:product", args=[product.slug]): "Nimbus Phone 3",
    }


def _signed_in(client: Client, path: str) -> bool:
    return client.get(path).wsgi_request.user.is_authenticated


def test_pages_and_sessions_survive_a_redis_outage(throwaway_redis, shop):
    product, community = shop
    fan = UserFactory(display_name="Lin")
    member = Client()
    member.force_login(fan)
    visitor = Client()
    pages = _pages(product, community)
    for path in pages:
        assert member.get(path).status_code == 200
        assert visitor.get(path).status_code == 200
    assert throwaway_redis.keys(2), "the session was not cached in Redis"

    throwaway_redis.stop()
    for path, text in pages.items():
        for who in (member, visitor):
            response = who.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert text in response.content.decode(), (path, text)
            # The session cookie is neither deleted nor replaced.
            assert "sessionid" not in response.cookies or response.cookies["sessionid"].value
        assert member.get(path).wsgi_request.user == fan
        assert not visitor.get(path).wsgi_request.user.is_authenticated

    health = Client().get(reverse("healthz"))
    assert health.status_code == 503
    checks = health.json()["checks"]
    assert checks["database"]["status"] == "up"
    assert checks["redis"]["status"] == "down"
    assert checks["broker"]["status"] == "down"

    throwaway_redis.start()  # the same port, empty: a restarted Redis
    assert _signed_in(member, reverse("home"))
    assert throwaway_redis.keys(2), "the session is not cached again"
    assert member.get(reverse("catalog:index")).status_code == 200
    cached = {key.decode() for key in throwaway_redis.keys(1)}
    assert any("catalog:listing-count" in key for key in cached), cached
    assert Client().get(reverse("healthz")).status_code == 200


def test_signing_in_keeps_working_during_an_outage(throwaway_redis, shop, password):
    """Found by a hostile tester: with the limits failing closed nobody could sign in while
    Redis was down (429 for every attempt). The limits' counts cannot be kept then, so they
    fail open: the right password signs in, a wrong one is refused as usual."""
    fan = UserFactory()
    throwaway_redis.stop()
    client = Client()
    wrong = client.post(reverse("account_login"), {"login": fan.email, "password": "nope"})
    assert wrong.status_code == 200 and not _signed_in(client, reverse("home"))
    response = client.post(reverse("account_login"), {"login": fan.email, "password": password})
    assert response.status_code == 302
    assert _signed_in(client, reverse("home"))

    throwaway_redis.start()
    assert _signed_in(client, reverse("home"))  # and after Redis is back


def test_a_sign_out_during_an_outage_is_not_undone_when_redis_returns(persistent_redis, shop):
    """The server kept its data (a partition, a restart with persistence), so it still holds
    the cached session that was signed out meanwhile: the cache drops what it held once it
    answers again, and the old cookie stays signed out."""
    fan = UserFactory()
    browser = Client()
    browser.force_login(fan)
    assert _signed_in(browser, reverse("home"))
    stolen_cookie = browser.cookies["sessionid"].value
    assert _signed_in(_with_cookie(stolen_cookie), reverse("home"))

    persistent_redis.stop(save=True)
    assert browser.post(reverse("account_logout")).status_code == 302
    assert not _signed_in(_with_cookie(stolen_cookie), reverse("home"))

    persistent_redis.start()
    cached = persistent_redis.keys(2)
    assert any(stolen_cookie.encode() in key for key in cached), "the server lost its data"
    assert not _signed_in(_with_cookie(stolen_cookie), reverse("home"))
    assert not any(stolen_cookie.encode() in key for key in persistent_redis.keys(2))


def _with_cookie(session_key: str) -> Client:
    """Another browser holding the same session cookie (a second tab, or a stolen cookie)."""
    client = Client()
    client.cookies["sessionid"] = session_key
    return client
