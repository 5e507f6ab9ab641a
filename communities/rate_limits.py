"""Posting and commenting limits against spam, per member, counted in Redis.

Only accepted posts and comments count: `rate_limited` takes a place in the window before
the work (so two requests at once cannot both take the last place) and gives it back when the
work is refused (a bad image, a bad title, any ValidationError)."""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User

WINDOW_SECONDS = 600
NEWCOMER_SECONDS = 86_400


def _key(user: User, action: str) -> str:
    return f"communities:rate:{action}:{user.pk}"


def _limit(user: User, action: str) -> int:
    regular, newcomer = settings.COMMUNITY_RATE_LIMITS[action]
    is_new = (timezone.now() - user.date_joined).total_seconds() < NEWCOMER_SECONDS
    return newcomer if is_new else regular


def _give_back(key: str) -> None:
    with suppress(ValueError):  # the window expired meanwhile: nothing to give back
        cache.decr(key)


@contextmanager
def rate_limited(*, user: User, action: str, enabled: bool = True) -> Iterator[None]:
    """Count one `action` ("post" or "comment") if the block succeeds; ValidationError past
    the limit. Accounts younger than a day get the lower limit of the pair."""
    if not enabled:
        yield
        return
    limit, key = _limit(user, action), _key(user, action)
    cache.add(key, 0, timeout=WINDOW_SECONDS)
    try:
        taken = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS)
        taken = 1
    if taken > limit:
        _give_back(key)
        raise ValidationError(
            f"Slow down: at most {limit} {action}s every ten minutes. Please wait a little."
        )
    try:
        yield
    except BaseException:
        _give_back(key)
        raise
