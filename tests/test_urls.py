"""The URL map resolves each route to its own view: the root's app includes, tried only for
paths under their own first segments (config.urls.app_urls), hide none of their routes."""

import re

from django.urls import URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern

from config.urls import app_urls

SAMPLES = {
    "int": "7",
    "slug": "x-7",
    "str": "x7",
    "path": "x/7",
    "uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
}


def _sample(route: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m[1] or "str", "7"), route)


def _routes(patterns, prefix=""):
    """(sample path, callback) of every route given as a path() under the root's includes."""
    for entry in patterns:
        if not isinstance(entry.pattern, RoutePattern) and not str(entry.pattern).startswith(
            "^(?="
        ):
            continue  # a regex of its own (allauth's, the info pages): not sampled here
        own = "" if str(entry.pattern).startswith("^(?=") else str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + own)
        else:
            yield "/" + _sample(prefix + own), entry.callback


def test_every_route_resolves_to_its_own_view():
    routes = list(_routes(get_resolver().url_patterns))
    assert len(routes) > 150
    wrong = [path for path, callback in routes if resolve(path).func != callback]
    assert wrong == []


def test_an_app_is_tried_only_under_its_own_first_segments():
    communities = app_urls("communities.urls")
    assert communities.pattern.regex.match("c/nimbus-fans/")
    assert communities.pattern.regex.match("u/lin/")
    assert not communities.pattern.regex.match("cart/")  # "c" is a segment, not a prefix
    assert not communities.pattern.regex.match("products/x/")
