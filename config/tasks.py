from django.core.cache import cache
from django.utils import timezone
from django_redis import get_redis_connection

from config.celery import house_task

BEAT_HEARTBEAT_KEY = "celery:beat:last-heartbeat"
WORKER_ECHO_PREFIX = "celery:echo:"


@house_task(acks_late=True)
def beat_heartbeat() -> None:
    """Beat runs this every minute; /healthz could show when it last ran."""
    cache.set(BEAT_HEARTBEAT_KEY, timezone.now().isoformat(), timeout=None)


@house_task(acks_late=True)
def worker_echo(token: str) -> None:
    """Pushes `token` onto a Redis list its caller waits on (BLPOP): proves a worker
    consumes the queue."""
    connection = get_redis_connection("default")
    key = f"{WORKER_ECHO_PREFIX}{token}"
    connection.rpush(key, token)
    connection.expire(key, 300)
