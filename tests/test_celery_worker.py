"""A real Celery worker process, against the same Redis broker the suite uses."""

import os
import subprocess
import uuid

import pytest
import redis
from django.conf import settings

from config.celery import app
from config.tasks import WORKER_ECHO_PREFIX, worker_echo
from tests.services import celery_worker_start, process_stop


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
