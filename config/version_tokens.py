"""Version tokens that name cached renderings (fragments, whole pages): a reader gets the
current token (a new one when there is none), and a change retires it once committed (a
rolled-back change changes nothing), so the next reader renders and caches anew.

Every process keeps the tokens it read (config.token_mirror), which Redis invalidates when
they change: a token read costs no round trip until it is retired. Every retirement goes
through `_delete`, which also drops the writer's own copy at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.cache import cache
from django.db import transaction

from config.token_mirror import PREFIX, token_mirror


def _delete(keys: list[str]) -> None:
    cache.delete_many(keys)
    token_mirror().forget(cache.make_key(key) for key in keys)


def mirrored_key(name: str) -> str:
    """The cache key for a small value that pages read on every request (the header's cart
    count): under the mirror's prefix, so each process keeps its copy until Redis reports a
    change (`current_tokens_and(also=...)`). Set it with `cache.set`; delete it with
    `mirrored_delete`, which also drops the writer's own copy at once."""
    return f"{PREFIX}{name}"


def mirrored_delete(*keys: str) -> None:
    _delete(list(keys))


def mirrored_get(key: str) -> Any:
    """The value under a `mirrored_key` (None: not in the cache), from this process's copy
    when it holds one."""
    return current_tokens_and((), also=[key])[1].get(key)


class VersionToken:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, scope: object) -> str:
        return f"{PREFIX}{self.prefix}:{scope}"

    def current(self, scope: object = "") -> str:
        return current_tokens((self, scope))[0]

    def retire(self, scope: object = "", *, now: bool = False) -> None:
        """`now`: at once as well, for what the writer itself reads before the commit (a
        reader meanwhile caches under a token that the commit retires again)."""
        keys = [self._key(scope)]
        if now:
            _delete(keys)
        transaction.on_commit(lambda: _delete(keys), robust=True)

    def retire_many(self, scopes: Iterable[object], *, on_commit: bool = True) -> None:
        """`retire` for several scopes in one round trip; `on_commit=False`: at once (for a
        caller that runs after its own commit)."""
        keys = sorted({self._key(scope) for scope in scopes}, key=str)
        if not keys:
            return
        if on_commit:
            transaction.on_commit(lambda: _delete(keys), robust=True)
        else:
            _delete(keys)


def current_tokens(*tokens: tuple[VersionToken, object]) -> list[str]:
    """The current value of each (token, scope), in one round trip when they all exist."""
    return current_tokens_and(tokens)[0]


def current_tokens_and(
    tokens: Sequence[tuple[VersionToken, object]], also: Sequence[str] = ()
) -> tuple[list[str], dict[str, Any]]:
    """current_tokens, and what the cache holds under the keys `also` (absent: not in the
    dict), read in the same round trip. Tokens this process holds are not read again, nor
    are the `also` keys it holds (those under the prefix: `mirrored_key`)."""
    keys = [token._key(scope) for token, scope in tokens]
    full = {key: str(cache.make_key(key)) for key in (*keys, *also)}
    mirror = token_mirror()
    held, mark = mirror.lookup(full.values())
    values = {key: held[full[key]] for key in keys if full[key] in held}
    extra = {key: held[full[key]] for key in also if full[key] in held}
    wanted = [key for key in keys if key not in values]
    unheld = [key for key in also if key not in extra]
    found = cache.get_many([*wanted, *unheld]) if wanted or unheld else {}
    fetched = {}
    for key in unheld:
        if key in found:
            extra[key] = found[key]
            if key.startswith(PREFIX):  # Redis reports its changes: keep it
                fetched[full[key]] = found[key]
    for key in wanted:
        value = found.get(key)
        if value is None:
            value = uuid.uuid4().hex
            if not cache.add(key, value, timeout=None):  # another process made one first
                value = cache.get(key) or value
        else:
            fetched[full[key]] = value
        values[key] = value
    mirror.keep(fetched, mark)
    return [values[key] for key in keys], extra
