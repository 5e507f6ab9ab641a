"""The Redis cache backend: a Redis outage makes pages slower, never error pages.

Every cache user here treats a miss as "read the database" (listing totals, the home and feed
fragments, badge counts, cached_db sessions). So when Redis cannot be reached, a read answers
as a miss and a write is dropped, with one warning per outage instead of one per call. After a
failure this process does not try that server again for `OUTAGE_PAUSE_SECONDS` (OPTIONS), so a
page that touches the cache ten times does not wait for ten connect timeouts.

Writes dropped during an outage may include invalidations (a deleted feed-version token, a
session saved to the database but not to the cache). A server that kept its data through the
outage (a network partition, a restart with persistence) would then serve stale entries: so
once Redis answers again, the process that dropped a write first deletes this cache's keys
(its own KEY_PREFIX only), and every reader falls back to the database once.

Raw clients (`get_redis_connection`: settlement pacing, /healthz) are not covered: they see the
error and decide themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django_redis.cache import RedisCache

logger = logging.getLogger("fanhub.cache")

# What "Redis cannot be reached" looks like (BusyLoadingError, while a restarted server loads
# its data, is a ConnectionError). A ResponseError (wrong type, out of memory) is a bug or a
# full server and is raised as usual.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
DEFAULT_PAUSE_SECONDS = 5.0
_UNREACHABLE = object()


@dataclass
class _Outage:
    down_until: float = 0.0
    down_since: float | None = None
    writes_dropped: bool = False


# One record per server and key prefix, shared by the threads of a process (the cache objects
# themselves are per thread).
_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self._pause_seconds = float(options.pop("OUTAGE_PAUSE_SECONDS", DEFAULT_PAUSE_SECONDS))
        # Errors must reach _guard, not be swallowed (and logged per call) by django-redis.
        options["IGNORE_EXCEPTIONS"] = False
        super().__init__(server, {**params, "OPTIONS": options})
        name = f"{server}|{params.get('KEY_PREFIX', '')}"
        with _outages_lock:
            self._outage = _outages.setdefault(name, _Outage())
        self._name = name

    def _guard(self, call: Callable[[], Any], fallback: Any, *, write: bool) -> Any:
        outage = self._outage
        if outage.down_since is not None and time.monotonic() < outage.down_until:
            outage.writes_dropped = outage.writes_dropped or write
            return fallback
        try:
            if outage.writes_dropped:
                # Back after dropping writes: what we hold may be stale; start empty.
                super().delete_pattern("*")
                outage.writes_dropped = False
            result = call()
        except UNREACHABLE as exc:
            if outage.down_since is None:
                outage.down_since = time.monotonic()
                logger.warning(
                    "cache %s unreachable (%s: %s); reading through to the database",
                    self._name,
                    exc.__class__.__name__,
                    exc,
                )
            outage.down_until = time.monotonic() + self._pause_seconds
            outage.writes_dropped = outage.writes_dropped or write
            return fallback
        if outage.down_since is not None:
            logger.warning(
                "cache %s reachable again after %.1f s",
                self._name,
                time.monotonic() - outage.down_since,
            )
            outage.down_since = None
        return result

    def _super(self, name: str) -> Callable[..., Any]:
        return getattr(super(), name)

    # Reads answer as misses: the cache looks empty.
    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        return self._guard(
            lambda: self._super("get")(key, default, version, client), default, write=False
        )

    def get_many(self, *args: Any, **kwargs: Any) -> dict:
        return self._guard(lambda: self._super("get_many")(*args, **kwargs), {}, write=False)

    def has_key(self, *args: Any, **kwargs: Any) -> bool:
        return self._guard(lambda: self._super("has_key")(*args, **kwargs), False, write=False)

    # `add` answers False (nothing stored: a lock is not taken, a "once per period" guard does
    # not fire); `incr`/`decr` raise ValueError as for a missing key, which their callers
    # handle anyway.
    def add(self, *args: Any, **kwargs: Any) -> bool:
        # Unreachable: as if added. Locks taken with add (allauth's rate limits) are then
        # granted, so sign-in keeps working through an outage; the limits, whose counts
        # cannot be kept meanwhile, fail open (as posting limits do) instead of refusing all.
        return self._guard(lambda: self._super("add")(*args, **kwargs), True, write=False)

    def incr(self, *args: Any, **kwargs: Any) -> int:
        return self._counter("incr", *args, **kwargs)

    def decr(self, *args: Any, **kwargs: Any) -> int:
        return self._counter("decr", *args, **kwargs)

    def _counter(self, name: str, *args: Any, **kwargs: Any) -> int:
        result = self._guard(lambda: self._super(name)(*args, **kwargs), _UNREACHABLE, write=False)
        if result is _UNREACHABLE:
            raise ValueError("the cache is unreachable: no counter")
        return result

    def touch(self, *args: Any, **kwargs: Any) -> bool:
        return self._guard(lambda: self._super("touch")(*args, **kwargs), False, write=False)

    # Overwrites and deletes leave a stale entry behind when dropped (write=True).
    def set(self, *args: Any, **kwargs: Any) -> bool:
        return self._guard(lambda: self._super("set")(*args, **kwargs), False, write=True)

    def set_many(self, *args: Any, **kwargs: Any) -> list:
        return self._guard(lambda: self._super("set_many")(*args, **kwargs), [], write=True)

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        return self._guard(lambda: self._super("delete")(*args, **kwargs), False, write=True)

    def delete_many(self, *args: Any, **kwargs: Any) -> None:
        return self._guard(lambda: self._super("delete_many")(*args, **kwargs), None, write=True)

    def clear(self) -> None:
        """This cache's keys (its KEY_PREFIX), not the whole Redis database: django-redis
        would FLUSHDB, emptying whatever else shares the database (the other test workers'
        caches, another site's), and Redis then reports every tracked key changed."""
        self._guard(lambda: self._super("delete_pattern")("*"), None, write=True)
