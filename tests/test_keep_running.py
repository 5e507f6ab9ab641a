"""bin/keep-running, which wraps every process of the Procfile under `make run`: a process
that exits is started again; SIGTERM/SIGINT (honcho on Ctrl-C) stops it and the loop."""

import os
import signal
import subprocess

import pytest

from tests.services import BASE_DIR, wait_until

KEEP_RUNNING = BASE_DIR / "bin" / "keep-running"

# Appends its pid to runs.txt; exits 3 on its first run (a crash), then stays up.
CRASHES_ONCE = 'echo $$ >> runs.txt; [ "$(wc -l < runs.txt)" -ge 2 ] && exec sleep 300; exit 3'


def _runs(directory) -> list[int]:
    path = directory / "runs.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone too
        return stat.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_crashed_process_is_started_again_and_a_signal_stops_it(tmp_path, stop_signal):
    wrapper = subprocess.Popen(
        [str(KEEP_RUNNING), "bash", "-c", CRASHES_ONCE],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(_runs(tmp_path)) == 2, timeout=15, what="the second start")
        first, second = _runs(tmp_path)
        assert not _alive(first)
        assert _alive(second)
        assert wrapper.poll() is None

        wrapper.send_signal(stop_signal)
        wrapper.wait(10)
        errors = wrapper.stderr.read()
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert "exited with status 3" in errors
    wait_until(lambda: not _alive(second), timeout=5, what="the child to stop")
    assert len(_runs(tmp_path)) == 2, "started again after the stop signal"


def test_every_procfile_process_is_kept_running():
    lines = [line for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.strip()]
    assert {line.split(":", 1)[0] for line in lines} == {"web", "worker", "beat"}
    for line in lines:
        assert line.split(":", 1)[1].split()[0] == "bin/keep-running", line
