import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from config.settings.base import celery_broker_url, redis_url_for
from tests.services import redis_server_start

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_server_up(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "broker": "up",
    }
    assert "no-cache" in response["Cache-Control"]


def _caches_on(url: str) -> dict:
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    for alias in caches:
        caches[alias]["LOCATION"] = redis_url_for(url, 1)
    return caches


def test_healthz_answers_503_when_redis_goes_down(client, tmp_path):
    """A real Redis, then the same Redis stopped: the page must notice, not hang or 500."""
    process, url = redis_server_start(tmp_path)
    try:
        with override_settings(CACHES=_caches_on(url), CELERY_BROKER_URL=celery_broker_url(url)):
            assert client.get(reverse("healthz")).status_code == 200
            process.terminate()
            process.wait(10)
            response = client.get(reverse("healthz"))
    finally:
        process.kill()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["broker"]["status"] == "down"


def test_healthz_only_answers_get(client):
    assert client.post(reverse("healthz")).status_code == 405
