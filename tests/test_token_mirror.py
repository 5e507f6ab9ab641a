"""Each process keeps the version tokens it read (config.token_mirror): a warm page asks
Redis for nothing, and a token changed by anyone else is read anew on the very next read,
without waiting (Redis's invalidation is already in this process's socket)."""

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from catalog.listing_version import LISTING_VERSION, listing_version
from communities.models import Community
from config.token_mirror import token_mirror
from orders.models import Cart
from orders.page_versions import cart_count_key
from orders.services import cart_add
from tests.factories import ProductFactory, UserFactory
from tests.services import free_port, redis_server_start, redis_server_stop


@pytest.fixture
def redis_reads(monkeypatch):
    """How many times the default cache is read (get / get_many)."""
    counts = {"reads": 0}
    for name in ("get", "get_many"):
        original = getattr(cache, name)

        def counted(*args, _original=original, **kwargs):
            counts["reads"] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(cache, name, counted)
    return counts


def _other_process() -> redis.Redis:
    """A connection of its own, as another web process or a worker has."""
    return redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])


def _token_key() -> str:
    return str(cache.make_key(LISTING_VERSION._key("")))


def test_a_token_read_twice_is_read_from_redis_once(redis_reads):
    first = listing_version()  # made now: its own write is reported back, read once more
    assert listing_version() == first
    reads = redis_reads["reads"]
    assert [listing_version() for _ in range(5)] == [first] * 5
    assert redis_reads["reads"] == reads


def test_a_token_another_process_retires_is_read_anew_at_once(redis_reads):
    old = listing_version()
    listing_version()
    _other_process().delete(_token_key())
    new = listing_version()  # no sleep: the invalidation was there before the DEL's reply
    assert new != old
    _other_process().set(_token_key(), cache.client.encode("set-elsewhere"))
    assert listing_version() == "set-elsewhere"


@pytest.mark.django_db(transaction=True)
def test_the_writers_own_retirement_shows_on_its_next_read():
    old = listing_version()
    assert listing_version() == old
    ProductFactory()  # a catalogue write retires the listing's token on commit
    assert listing_version() != old


def test_a_fetch_overtaken_by_a_change_is_not_kept():
    mirror = token_mirror()
    key = _token_key()
    held, mark = mirror.lookup([key])
    assert held == {} and mark is not None
    # Between this read's fetch and its keeping, another process changes the token.
    _other_process().set(key, cache.client.encode("newer"))
    mirror.keep({key: "what-the-fetch-saw"}, mark)
    assert mirror.lookup([key])[0] == {}
    assert listing_version() == "newer"


def test_after_redis_restarts_empty_no_token_from_before_is_served(tmp_path):
    port = free_port()
    server, url = redis_server_start(tmp_path, port=port)
    config = dict(settings.CACHES["default"], LOCATION=url + "/1")
    config["OPTIONS"] = dict(config["OPTIONS"], OUTAGE_PAUSE_SECONDS=0)
    try:
        with override_settings(CACHES={**settings.CACHES, "default": config}):
            before = listing_version()
            assert listing_version() == before
            redis_server_stop(server)
            server, _ = redis_server_start(tmp_path, port=port)
            after = listing_version()  # the lost subscription drops the copy
            assert after != before
            assert listing_version() == after
    finally:
        redis_server_stop(server)


def _page_path(page: str, product) -> str:
    community = Community.objects.create(name="Nimbus Fans", slug="nimbus-fans")
    return {
        "listing": "/products/",
        "product": product.get_absolute_url(),
        "community": community.get_absolute_url(),
    }[page]


@pytest.mark.parametrize("page", ["listing", "product", "community"])
def test_a_warm_page_for_a_visitor_asks_redis_for_nothing(client, shop, page, redis_reads):
    product = shop["product"]  # in stock: its page is cached
    path = _page_path(page, product)
    for _ in range(3):  # the tokens made, their own writes reported back, then held
        assert client.get(path).status_code == 200
    reads = redis_reads["reads"]
    assert client.get(path).status_code == 200
    assert redis_reads["reads"] == reads


@pytest.mark.parametrize("page", ["listing", "product", "community"])
def test_a_warm_page_for_a_member_asks_the_cache_for_nothing(client, shop, page, redis_reads):
    """The tokens and the header's cart count are this process's copies (the session is
    the sessions cache's)."""
    client.force_login(UserFactory())
    product = shop["product"]
    path = _page_path(page, product)
    for _ in range(3):
        assert client.get(path).status_code == 200
    reads = redis_reads["reads"]
    assert client.get(path).status_code == 200
    assert redis_reads["reads"] == reads


@pytest.mark.django_db(transaction=True)
def test_a_cart_another_process_changes_shows_in_the_header_at_once(client, shop):
    fan = UserFactory()
    client.force_login(fan)
    for _ in range(3):  # the count read, then held
        assert 'badge-cart"' not in client.get("/products/").content.decode()
    cart = Cart.objects.create(user=fan)
    cart_add(cart=cart, variant=shop["black"], quantity=2)  # its own delete drops the copy
    assert 'badge-cart" aria-hidden="true">2<' in client.get("/products/").content.decode()
    cart.lines.update(quantity=5)  # written elsewhere: a worker, another web process
    assert 'badge-cart" aria-hidden="true">2<' in client.get("/products/").content.decode()
    _other_process().delete(str(cache.make_key(cart_count_key(fan.pk))))
    assert 'badge-cart" aria-hidden="true">5<' in client.get("/products/").content.decode()
