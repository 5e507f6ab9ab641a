"""This process's copy of the version tokens (config.version_tokens), kept fresh by Redis.

A page served from the cache still asked Redis for its tokens on every request: one round
trip, which on two busy cores cost a visitor's listing about as much as the rest of the
request. Redis's client-side caching ("tracking") removes it: in BCAST mode Redis tells a
subscribed connection about every change to a key under a prefix (`token:`), so a process
keeps the tokens it has read and drops each one that Redis reports changed.

Before every read of the copy, the invalidations that have arrived are taken in without
waiting (a non-blocking poll of that connection's socket, a few microseconds). Redis writes
a key's invalidation in the same turn of its event loop as its reply to the command that
changed it, before it runs any other command: whatever learns of the change through Redis (a
worker's answer, any later read) finds the invalidation in this process's socket, and the
fan's next request after the writer's response comes an HTTP round trip later, long after
those microseconds. The writer's own process does not rely on that: it drops the keys it
deletes itself (`forget`).

A read that missed fetches the tokens from Redis; if an invalidation is taken in meanwhile,
what it fetched is not kept (the fetch may have run before that change).

Without the subscription (Redis down, a reply not understood, a lost connection: a restart,
or Redis closing a subscriber that fell behind) the copy is dropped, since invalidations may
have been missed, and every read goes to Redis as before; connecting is tried again at most
once every RETRY_SECONDS. redis-py's own client-side cache is not used: it needs Redis 7.4.

`cache_mirror` gives the same for another cache's keys under a prefix: accounts.sessions keeps
the signed-in fans' sessions so.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping

import redis
from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger("fanhub.cache")

PREFIX = "token:"  # every version token's key starts so (config.version_tokens)
CHANNEL = "__redis__:invalidate"
RETRY_SECONDS = 5.0
MAX_VALUES = 50_000  # then the copy starts afresh: memory stays bounded
_UNREACHABLE = (redis.RedisError, OSError)


class _Unexpected(Exception):
    pass


class TokenMirror:
    def __init__(self, location: str, full_prefix: str, timeout: float) -> None:
        self._location = location
        self._prefix = full_prefix  # the cache's key for PREFIX: "<KEY_PREFIX>:<version>:token:"
        self._timeout = timeout
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self._seq = 0  # invalidations taken in so far
        self._conn: redis.connection.AbstractConnection | None = None
        self._pid = 0
        self._retry_at = 0.0

    # --- reads ----------------------------------------------------------------------------

    def lookup(self, keys: Iterable[str]) -> tuple[dict[str, str], int | None]:
        """The copies held of `keys` (cache keys), and the mark to `keep` a fetch with;
        None: no copy is kept now (read Redis)."""
        with self._lock:
            if not self._fresh():
                return {}, None
            values = self._values
            return {key: values[key] for key in keys if key in values}, self._seq

    def keep(self, fetched: Mapping[str, str], mark: int | None) -> None:
        """Keep what a read fetched after `lookup` gave `mark`, unless a change came since."""
        if mark is None or not fetched:
            return
        with self._lock:
            if self._fresh() and self._seq == mark:
                if len(self._values) >= MAX_VALUES:
                    self._values.clear()
                self._values.update(fetched)

    def forget(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._seq += 1
            for key in keys:
                self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._seq += 1
            self._values.clear()

    # --- the subscription -----------------------------------------------------------------

    def _fresh(self) -> bool:
        """Under the lock: take in what Redis reported; False when there is no subscription."""
        if self._pid != os.getpid():  # a forked child does not share its parent's socket
            self._conn, self._pid = None, os.getpid()
            self._values.clear()
        if self._conn is None and not self._subscribe():
            return False
        try:
            while self._conn.can_read(timeout=0):
                self._take(self._conn.read_response())
        except (*_UNREACHABLE, _Unexpected) as exc:
            logger.warning("token mirror lost its subscription (%s); reading Redis", exc)
            self._drop()
            return False
        return True

    def _take(self, message: object) -> None:
        # RESP2 pub/sub: [b"message", b"__redis__:invalidate", [keys] or None (a flush)]
        if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"):
            raise _Unexpected(f"not an invalidation: {message!r}")
        self._seq += 1
        if message[2] is None:
            self._values.clear()
            return
        for key in message[2]:
            self._values.pop(key.decode(), None)

    def _subscribe(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        self._retry_at = time.monotonic() + RETRY_SECONDS
        pool = redis.ConnectionPool.from_url(
            self._location,
            protocol=2,  # pub/sub replies as arrays; RESP3 pushes need redis-py's handlers
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
        )
        conn = pool.make_connection()
        try:
            conn.connect()
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
            conn.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", self._prefix
            )
            if conn.read_response() != b"OK":
                raise _Unexpected("CLIENT TRACKING refused")
            conn.send_command("SUBSCRIBE", CHANNEL)
            conn.read_response()
        except (*_UNREACHABLE, _Unexpected) as exc:
            conn.disconnect()
            logger.warning("token mirror cannot subscribe (%s); reading Redis", exc)
            return False
        self._conn = conn
        self._values.clear()
        self._seq += 1
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
        self._conn = None
        self._values.clear()
        self._seq += 1
        self._retry_at = time.monotonic() + RETRY_SECONDS


_mirrors: dict[tuple[str, str], TokenMirror] = {}
_mirrors_lock = threading.Lock()


def token_mirror() -> TokenMirror:
    """The mirror of the default cache's tokens."""
    return cache_mirror("default", PREFIX)


def cache_mirror(alias: str, prefix: str) -> TokenMirror:
    """The mirror of the keys of cache `alias` that start with `prefix` (one per server and
    full key prefix: a test that points the cache elsewhere gets its own)."""
    config = settings.CACHES[alias]
    location = config["LOCATION"]
    full_prefix = str(caches[alias].make_key(prefix))
    mirror = _mirrors.get((location, full_prefix))
    if mirror is None:
        timeout = float(config.get("OPTIONS", {}).get("SOCKET_TIMEOUT", 2))
        with _mirrors_lock:
            mirror = _mirrors.setdefault(
                (location, full_prefix), TokenMirror(location, full_prefix, timeout)
            )
    return mirror
