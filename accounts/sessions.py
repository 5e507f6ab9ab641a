"""Django's cached_db sessions, each process keeping the sessions it read until they change.

Every request of a signed-in fan reads their session: with cached_db, one Redis round trip,
about a fifth of a cached member page's time on two busy cores. Here a process keeps each
session it read (pickled: the request gets a fresh copy to change), and Redis's client-side
tracking on the sessions' key prefix (config.token_mirror.cache_mirror) reports every change
to it made anywhere: a save, a sign-out or a sign-in's new key (a delete), an expiry. The
writer drops its own copy at once; another process finds the invalidation in its socket
before its next read, as for the version tokens. Without the subscription (Redis down), every
read goes to the cache and the database as before.

Writes are Django's own: the database row, then the cache.
"""

from __future__ import annotations

import pickle
from typing import Any

from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore

from config.token_mirror import TokenMirror, cache_mirror


def _mirror() -> TokenMirror:
    from django.conf import settings

    return cache_mirror(settings.SESSION_CACHE_ALIAS, KEY_PREFIX)


class SessionStore(CachedDBStore):
    def _mirror_key(self, session_key: str | None = None) -> str:
        return str(self._cache.make_key(KEY_PREFIX + (session_key or self._session_key)))

    def load(self) -> dict[str, Any]:
        mirror = _mirror()
        key = self._mirror_key()
        held, mark = mirror.lookup([key])
        if key in held:
            return pickle.loads(held[key])  # noqa: S301 (pickled below, by this process)
        data = super().load()
        if data:  # an unknown or expired key reads as {} and is not kept
            mirror.keep({key: pickle.dumps(data, pickle.HIGHEST_PROTOCOL)}, mark)
        return data

    def save(self, must_create: bool = False) -> None:
        super().save(must_create)
        _mirror().forget([self._mirror_key()])

    async def asave(self, must_create: bool = False) -> None:
        await super().asave(must_create)
        _mirror().forget([self._mirror_key()])

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        super().delete(session_key)
        if key:
            _mirror().forget([self._mirror_key(key)])

    async def adelete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        await super().adelete(session_key)
        if key:
            _mirror().forget([self._mirror_key(key)])
