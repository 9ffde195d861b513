"""`ManagedProcess.stop` counts a process that has exited but is not reaped yet (a zombie) as stopped.

A stack's processes outlive the harness that started them, so their parent is whoever adopted them (init, or a
container's PID 1), which may reap only every few seconds; waiting for the pid to disappear made every `down`
and `restart` wait for that reaper. Here the parent never reaps while the test runs: a stop that waited for the
pid to vanish would wait out the whole (hour-long) timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.process import ManagedProcess, is_gone, wait_gone

# A parent that starts a child (in a session of its own, as ManagedProcess does: stop() ends that session's
# process group, not the parent) and never reaps it (it sleeps until killed).
NEGLECTFUL_PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def unreaped_child() -> Iterator[psutil.Process]:
    parent = subprocess.Popen(
        [sys.executable, "-c", NEGLECTFUL_PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        yield child
    finally:
        parent.kill()
        parent.wait(timeout=30)
        if not is_gone(child):
            child.kill()


def test_stop_returns_once_the_process_exited_even_if_nobody_reaped_it(
    tmp_path: Path, unreaped_child: psutil.Process
) -> None:
    pid_file = tmp_path / "child.pid"
    record = {"pid": unreaped_child.pid, "create_time": unreaped_child.create_time(), "argv0": sys.executable}
    pid_file.write_text(json.dumps(record))
    process = ManagedProcess("child", [sys.executable], log_file=tmp_path / "child.log", pid_file=pid_file)

    assert process.stop(timeout=3600) is True
    assert unreaped_child.status() == psutil.STATUS_ZOMBIE  # exited, still waiting for its parent
    assert is_gone(unreaped_child)
    assert wait_gone([unreaped_child], timeout=3600) == []
    assert process.running() is None
    assert not pid_file.exists()


def test_wait_gone_returns_the_processes_still_running_at_the_deadline(
    unreaped_child: psutil.Process,
) -> None:
    assert wait_gone([unreaped_child], timeout=0) == [unreaped_child]
