"""/healthz: is each server this process depends on reachable? For load balancers and
uptime checks: 200 when all are up, 503 naming the one that is down.

Each check talks to its server directly (never through the cache backend, which hides an
outage from pages), with short timeouts and no backoff, so the page answers within seconds
while Redis is down. Pages keep working then (config/redis_cache.py): a load balancer that
should keep a web process in service during a Redis outage reads `checks.database`."""

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    if not caches["default"].client.get_client(write=True).ping():
        raise ConnectionError("no PONG")


def check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; report its type
            results[name] = {"status": "down", "error": exc.__class__.__name__}
        else:
            results[name] = {
                "status": "up",
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
    healthy = all(result["status"] == "up" for result in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": results},
        status=200 if healthy else 503,
    )
