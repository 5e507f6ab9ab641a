"""A real Celery worker process, against the same Redis broker the suite uses."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from django.core.cache import cache

from config.celery import app
from config.tasks import WORKER_ECHO_PREFIX, worker_echo
from tests.services import BASE_DIR


@pytest.fixture
def live_worker():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


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

    deadline = time.monotonic() + 60
    while cache.get(f"{WORKER_ECHO_PREFIX}{token}") is None:
        assert live_worker.poll() is None, live_worker.stdout.read()
        assert time.monotonic() < deadline, "the worker never ran the task"
        time.sleep(0.1)
    assert cache.get(f"{WORKER_ECHO_PREFIX}{token}") == token
