"""A Celery worker that profiles the tasks it runs, for bench/preorders.py with
PREORDERS_PROFILE=<directory>: every task under cProfile, and every SQL statement timed by its
shape (verb and table), both written to the directory when the worker stops.

    python -m bench.profiled_worker -A config worker --pool=solo ...   (celery's own arguments)
"""

from __future__ import annotations

import cProfile
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from celery import signals

OUT = Path(os.environ.get("PREORDERS_PROFILE", "/tmp"))  # noqa: S108 - a developer's choice
NAME = os.environ.get("PREORDERS_PROFILE_NAME", str(os.getpid()))

_profile = cProfile.Profile()
_sql: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # shape -> [count, seconds]
_tasks: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
_started: dict[str, float] = {}
_VERB = re.compile(
    r"^\s*(WITH|SELECT|INSERT INTO|UPDATE|DELETE FROM|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK)\b"
    r'\s*"?(\w+)?',
    re.IGNORECASE,
)
_WRITE = re.compile(r'\b(INSERT INTO|UPDATE)\s+"?(\w+)', re.IGNORECASE)
_FROM = re.compile(r'\bFROM\s+"?(\w+)', re.IGNORECASE)


def _shape(sql: str) -> str:
    """SELECT <first table>, INSERT INTO <table>, UPDATE <table>...: what a statement does."""
    match = _VERB.match(sql)
    if not match:
        return sql.split(None, 1)[0].upper() if sql.strip() else "?"
    verb = match.group(1).upper()
    if verb == "WITH":  # a set-based step: named by the first table it writes
        write = _WRITE.search(sql)
        return f"WITH {write.group(1).upper()} {write.group(2)}" if write else "WITH"
    if verb in ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK"):
        return verb
    if verb == "SELECT":
        if "advisory" in sql:
            return "SELECT advisory lock/unlock"
        table = _FROM.search(sql)
        return f"SELECT {table.group(1) if table else ''}".strip()
    return f"{verb} {match.group(2) or ''}".strip()


def _timed_sql(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        entry = _sql[_shape(sql)]
        entry[0] += 1
        entry[1] += time.perf_counter() - started


def _commit_timer(connection) -> None:
    """Commits are not statements Django executes: time them by wrapping the connection's."""
    if getattr(connection, "_bench_timed", False):
        return
    original = connection._commit

    def _commit():
        started = time.perf_counter()
        try:
            return original()
        finally:
            entry = _sql["COMMIT"]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    connection._commit = _commit
    connection._bench_timed = True


@signals.task_prerun.connect
def _before(task_id=None, task=None, **_):
    from django.db import connection

    connection.ensure_connection()
    _commit_timer(connection)
    if _timed_sql not in connection.execute_wrappers:
        connection.execute_wrappers.append(_timed_sql)
    _started[task_id] = time.perf_counter()
    _profile.enable()


@signals.task_postrun.connect
def _after(task_id=None, task=None, **_):
    _profile.disable()
    entry = _tasks[task.name]
    entry[0] += 1
    entry[1] += time.perf_counter() - _started.pop(task_id, time.perf_counter())


@signals.worker_shutdown.connect
def _dump(**_):
    OUT.mkdir(parents=True, exist_ok=True)
    _profile.dump_stats(OUT / f"worker-{NAME}.pstats")
    (OUT / f"worker-{NAME}.json").write_text(
        json.dumps({"tasks": _tasks, "sql": _sql}, indent=2, sort_keys=True)
    )


if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    main()
