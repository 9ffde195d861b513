"""The worker's heartbeat file (`WORKER_HEARTBEAT_FILE`): readiness and liveness from the worker itself.

The app's worker rewrites the file every couple of seconds while it is connected to its broker and its
event loop turns (JSON: `pid`, `hostname`, `state`, `at`; written atomically). The harness reads it for
`status` and `up` instead of scanning the worker's log: a worker is healthy when the file names its
process, says `ready` and is fresh. Frozen (SIGSTOP), stuck, or reconnecting to Redis: the file goes stale
or says so, within `STALE_AFTER_SECONDS`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

HEARTBEAT_ENV = "WORKER_HEARTBEAT_FILE"
STALE_AFTER_SECONDS = 10.0


def heartbeat_problem(
    path: Path, *, pid: int | None = None, now: float | None = None, stale_after: float = STALE_AFTER_SECONDS
) -> str | None:
    """None when the heartbeat at `path` is fresh, says `ready` and (given `pid`) is that process's;
    otherwise what is wrong, in words."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return f"no heartbeat yet ({path} does not exist)"
    except OSError as exc:
        return f"unreadable heartbeat {path}: {exc}"
    return heartbeat_text_problem(text, str(path), pid=pid, now=now, stale_after=stale_after)


def heartbeat_text_problem(
    text: str,
    where: str,
    *,
    pid: int | None = None,
    now: float | None = None,
    stale_after: float = STALE_AFTER_SECONDS,
) -> str | None:
    """`heartbeat_problem` for a heartbeat already read (e.g. out of a container)."""
    try:
        beat = json.loads(text)
    except ValueError as exc:
        return f"unreadable heartbeat {where}: {exc}"
    if not isinstance(beat, dict):
        return f"unreadable heartbeat {where}: expected a JSON object"
    if pid is not None and beat.get("pid") != pid:
        return f"the heartbeat is from pid {beat.get('pid')}, not the running worker (pid {pid})"
    age = (time.time() if now is None else now) - float(beat.get("at", 0))
    if beat.get("state") != "ready":
        return f"the worker says {beat.get('state')!r} (not connected to its broker) {age:.0f} s ago"
    if age > stale_after:
        return f"the last heartbeat is {age:.0f} s old (the worker is frozen, stuck or gone)"
    return None
