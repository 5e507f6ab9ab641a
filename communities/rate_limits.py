"""Posting and commenting limits against spam, per member, counted in Redis."""

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User

WINDOW_SECONDS = 600
NEWCOMER_SECONDS = 86_400


def check_rate(*, user: User, action: str) -> None:
    """Count one `action` ("post" or "comment"); ValidationError past the limit. Accounts
    younger than a day get the lower limit of the pair."""
    regular, newcomer = settings.COMMUNITY_RATE_LIMITS[action]
    is_new = (timezone.now() - user.date_joined).total_seconds() < NEWCOMER_SECONDS
    limit = newcomer if is_new else regular
    key = f"communities:rate:{action}:{user.pk}"
    cache.add(key, 0, timeout=WINDOW_SECONDS)
    if cache.incr(key) > limit:
        raise ValidationError(
            f"Slow down: at most {limit} {action}s every ten minutes. Please wait a little."
        )
