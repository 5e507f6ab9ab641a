"""Several caches share one Redis database (each pytest-xdist worker its own key prefix;
a second site beside this one): clearing one leaves the others' keys alone."""

import redis
from django.conf import settings
from django.core.cache import cache


def test_clearing_the_cache_leaves_another_prefix_keys_alone():
    neighbour = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    other_key = f"{settings.CACHES['default']['KEY_PREFIX']}-neighbour:1:page"
    neighbour.set(other_key, b"theirs")
    cache.set("mine", "ours")
    try:
        cache.clear()
        assert cache.get("mine") is None
        assert neighbour.get(other_key) == b"theirs"
    finally:
        neighbour.delete(other_key)
