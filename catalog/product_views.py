"""Product page views for the operators' funnel, counted without slowing the page: a view is
one Redis HINCRBY (no database write on the page; a Redis outage drops the count, never
the page), and a beat task folds the counters into ProductViewDay rows every minute.

Flushing renames a day's hash before reading it, so views counted meanwhile go to a fresh
hash and none is counted twice; a renamed hash whose database write failed stays under its
"flushing" name and is folded in by the next run."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from zoneinfo import ZoneInfo

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_redis import get_redis_connection

from catalog.models import Product

log = logging.getLogger(__name__)
UPSERT = (
    "INSERT INTO catalog_productviewday (product_id, day, views) VALUES (%s, %s, %s) "
    "ON CONFLICT (product_id, day) DO UPDATE SET views = catalog_productviewday.views + "
    "EXCLUDED.views"
)


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'fanhub')}:product-views"


def _today() -> date:
    return timezone.now().astimezone(ZoneInfo(settings.STORE_TIME_ZONE)).date()


def product_view_count(*, product_id: int) -> None:
    try:
        get_redis_connection("default").hincrby(f"{_prefix()}:{_today().isoformat()}", product_id)
    except (redis.RedisError, OSError):
        log.warning("product view of %s not counted: Redis is unavailable", product_id)


def product_views_flush() -> int:
    """Beat: fold every counted view into ProductViewDay; returns the views written."""
    client = get_redis_connection("default")
    prefix = _prefix()
    for key in list(client.scan_iter(match=f"{prefix}:*", count=500)):
        name = key.decode()
        if ":flushing:" in name:
            continue
        day = name.rsplit(":", 1)[1]
        try:
            client.rename(key, f"{prefix}:flushing:{day}:{uuid.uuid4().hex}")
        except redis.ResponseError:
            continue  # emptied by a concurrent flush
    written = 0
    for key in list(client.scan_iter(match=f"{prefix}:flushing:*", count=500)):
        day = date.fromisoformat(key.decode().split(":flushing:", 1)[1].split(":", 1)[0])
        counts = {int(pid): int(n) for pid, n in client.hgetall(key).items()}
        known = set(Product.objects.filter(pk__in=counts).values_list("pk", flat=True))
        rows = [(pid, day, n) for pid, n in counts.items() if pid in known and n > 0]
        if rows:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(UPSERT, rows)
        client.delete(key)
        written += sum(n for _, _, n in rows)
    return written
