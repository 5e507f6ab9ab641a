"""Version tokens that name cached renderings (fragments, whole pages): a reader gets the
current token (a new one when there is none), and a change retires it once committed (a
rolled-back change changes nothing), so the next reader renders and caches anew."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.cache import cache
from django.db import transaction


class VersionToken:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, scope: object) -> str:
        return f"{self.prefix}:{scope}"

    def current(self, scope: object = "") -> str:
        return current_tokens((self, scope))[0]

    def retire(self, scope: object = "", *, now: bool = False) -> None:
        """`now`: at once as well, for what the writer itself reads before the commit (a
        reader meanwhile caches under a token that the commit retires again)."""
        key = self._key(scope)
        if now:
            cache.delete(key)
        transaction.on_commit(lambda: cache.delete(key), robust=True)

    def retire_many(self, scopes: Iterable[object]) -> None:
        """`retire` for several scopes at once: one round trip on commit."""
        keys = [self._key(scope) for scope in set(scopes)]
        if keys:
            transaction.on_commit(lambda: cache.delete_many(keys), robust=True)


def current_tokens(*tokens: tuple[VersionToken, object]) -> list[str]:
    """The current value of each (token, scope), in one round trip when they all exist."""
    return current_tokens_and(tokens)[0]


def current_tokens_and(
    tokens: Sequence[tuple[VersionToken, object]], also: Sequence[str] = ()
) -> tuple[list[str], dict[str, Any]]:
    """current_tokens, and what the cache holds under the keys `also` (absent: not in the
    dict), read in the same round trip."""
    keys = [token._key(scope) for token, scope in tokens]
    found = cache.get_many([*keys, *also])
    extra = {key: found[key] for key in also if key in found}
    values = []
    for key in keys:
        value = found.get(key)
        if value is None:
            value = uuid.uuid4().hex
            if not cache.add(key, value, timeout=None):  # another process made one first
                value = cache.get(key) or value
        values.append(value)
    return values, extra
