"""Version tokens that name cached renderings (fragments, whole pages): a reader gets the
current token (a new one when there is none), and a change retires it once committed (a
rolled-back change changes nothing), so the next reader renders and caches anew."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction


class VersionToken:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, scope: object) -> str:
        return f"{self.prefix}:{scope}"

    def current(self, scope: object = "") -> str:
        return cache.get_or_set(self._key(scope), lambda: uuid.uuid4().hex, timeout=None)

    def retire(self, scope: object = "") -> None:
        key = self._key(scope)
        transaction.on_commit(lambda: cache.delete(key), robust=True)
