"""The signed-in user, read once per change of their row instead of once per request.

Every request of a signed-in fan loads their row (AuthenticationMiddleware, through the
session's backend). Here a process keeps the row it read, pickled, under the user's version
token; `User.save()` and `delete()` retire the token once committed, so the next request of
every session reads the row anew: a password change (the session hash check) or a
deactivation signs other sessions out on their next request, a new display name shows at
once. One cache round trip (the token) instead of one query.
"""

from __future__ import annotations

import pickle

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser

from config.version_tokens import VersionToken

USER_ROW = VersionToken("accounts:user-row")

_LOCAL_SIZE = 4096
_local: dict[tuple[int, str], bytes | None] = {}


def user_row_changed(*, user_id: int) -> None:
    """Every session of the user reads their row again, the writer's own at once (the rest
    of its request shows the change) and everyone's after the commit."""
    USER_ROW.retire(user_id, now=True)


def user_cached(*, user_id: int) -> AbstractBaseUser | None:
    """The user's current row (None: there is none), a fresh copy for each request (a view
    may change or annotate it, and Django caches permissions on it)."""
    key = (user_id, USER_ROW.current(user_id))
    if key in _local:
        data = _local[key]
    else:
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        data = None if user is None else pickle.dumps(user, pickle.HIGHEST_PROTOCOL)
        if len(_local) >= _LOCAL_SIZE:
            _local.clear()
        _local[key] = data
    return None if data is None else pickle.loads(data)  # noqa: S301 (pickled here, above)


class CachedUserMixin:
    def get_user(self, user_id):
        user = user_cached(user_id=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


class CachedModelBackend(CachedUserMixin, ModelBackend):
    pass


class CachedAuthenticationBackend(CachedUserMixin, AuthenticationBackend):
    pass
