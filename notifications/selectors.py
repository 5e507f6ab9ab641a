from django.core.cache import cache
from django.db.models import QuerySet

from notifications.models import Notification
from notifications.services import unread_cache_key


def unread_count(*, user_id: int) -> int:
    """Cached until a notification arrives or is read (the header asks on every page)."""
    key = unread_cache_key(user_id)
    count = cache.get(key)
    if count is None:
        count = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True).count()
        cache.set(key, count, timeout=3600)
    return count


def notifications_for(*, user_id: int) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient_id=user_id).order_by("-created_at", "-id")
