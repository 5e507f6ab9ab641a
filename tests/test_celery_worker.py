"""A real Celery worker process, against the suite's Redis broker, or a throwaway one that
is restarted under it."""

import os
import subprocess
import uuid

import pytest
import redis
from django.conf import settings
from kombu import Connection

from config.celery import app
from config.settings.base import celery_broker_url, redis_url_for
from config.tasks import WORKER_ECHO_PREFIX, worker_echo
from tests.services import (
    celery_worker_start,
    free_port,
    process_stop,
    redis_server_start,
    redis_server_stop,
    wait_until,
)


@pytest.fixture
def live_worker():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    process = celery_worker_start(env=env, log=subprocess.PIPE)
    yield process
    process_stop(process)


@pytest.fixture
def real_queue():
    """The producer side sends to the broker instead of running tasks in-process."""
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = True


@pytest.mark.worker
def test_worker_runs_a_task_end_to_end(live_worker, real_queue):
    token = uuid.uuid4().hex
    worker_echo.delay(token)

    # Block until the worker pushes the token (or give up after 60 s): no polling.
    # A client of its own: the cache's connections time out reads after 2 s.
    waiting = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=70)
    answer = waiting.blpop(f"{WORKER_ECHO_PREFIX}{token}", timeout=60)
    assert live_worker.poll() is None, live_worker.stdout.read()
    assert answer is not None, "the worker never ran the task"
    assert answer[1].decode() == token


@pytest.mark.worker
def test_worker_reconnects_after_redis_restarts(tmp_path, real_queue):
    """Its broker stops under it and comes back on the same port, empty: the worker keeps
    running, reconnects, and runs a task queued after the restart."""
    port = free_port()
    server, url = redis_server_start(tmp_path, port=port)
    log_path = tmp_path / "worker.log"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", REDIS_URL=url)
    with open(log_path, "w") as log:
        worker = celery_worker_start(env=env, log=log)
    broker = celery_broker_url(redis_url_for(url, settings.REDIS_DB_OFFSET))
    # worker_echo answers in the cache's database (the test settings' offset + 1).
    answers = redis_url_for(url, settings.REDIS_DB_OFFSET + 1)

    def echo(token: str) -> bytes | None:
        with Connection(broker) as producer:
            worker_echo.apply_async(args=[token], connection=producer)
        waiting = redis.Redis.from_url(answers, socket_timeout=70)
        answer = waiting.blpop(f"{WORKER_ECHO_PREFIX}{token}", timeout=60)
        return answer[1] if answer else None

    try:
        assert echo("before") == b"before", log_path.read_text()
        redis_server_stop(server)
        wait_until(
            lambda: "Connection to broker lost" in log_path.read_text(),
            timeout=30,
            what="the worker to notice",
            explain=log_path.read_text,
        )
        wait_until(  # it tried to reconnect, and failed, while Redis was down
            lambda: "Trying again" in log_path.read_text(),
            timeout=30,
            what="a failed reconnection attempt",
            explain=log_path.read_text,
        )
        server, url = redis_server_start(tmp_path, port=port)
        assert echo("after") == b"after", log_path.read_text()
        assert worker.poll() is None, log_path.read_text()
    finally:
        process_stop(worker)
        redis_server_stop(server)
