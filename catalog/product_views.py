"""Product page views for the operators' funnel, counted without slowing the page: a process
adds its views up in memory and sends them as HINCRBYs at most once a second (no database
write and no round trip on the page; a Redis outage drops the counts, never the page; a
process that dies loses its last second of views), and a beat task folds the counters into
ProductViewDay rows every minute.

Flushing renames a day's hash before reading it, so views counted meanwhile go to a fresh
hash and none is counted twice; a renamed hash whose database write failed stays under its
"flushing" name and is folded in by the next run."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections import Counter
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


SEND_EVERY = 1.0  # seconds: how far a process's counts may lag behind its views

_pending: Counter[tuple[str, int]] = Counter()  # (day, product id) -> views not yet sent
_pending_lock = threading.Lock()
_sent_at = time.monotonic()


def product_view_count(*, product_id: int) -> None:
    global _sent_at
    now = time.monotonic()
    with _pending_lock:
        _pending[(_today().isoformat(), product_id)] += 1
        due = now - _sent_at >= SEND_EVERY
        if due:
            _sent_at = now
    if due:
        product_views_send()


def product_views_send() -> None:
    """This process's counted views to Redis (one pipelined round trip)."""
    with _pending_lock:
        counts = dict(_pending)
        _pending.clear()
    if not counts:
        return
    prefix = _prefix()
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for (day, product_id), views in counts.items():
            pipe.hincrby(f"{prefix}:{day}", product_id, views)
        pipe.execute()
    except (redis.RedisError, OSError):
        log.warning("%s product views not counted: Redis is unavailable", sum(counts.values()))


atexit.register(product_views_send)


def product_views_flush() -> int:
    """Beat: fold every counted view into ProductViewDay; returns the views written."""
    product_views_send()  # this process's own (a worker's are its pages': none)
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
