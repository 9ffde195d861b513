"""What reached Redis while a scenario ran: every key written and every Celery task enqueued.

A `RedisMonitor` holds one `MONITOR` connection (admin user, local target only: ElastiCache refuses MONITOR)
and parses the stream in a background thread. A scenario brackets its run with markers (`ECHO` commands that
appear in the same stream), so `activity(begin, end)` is exactly what Redis executed in between, whoever sent
it: the backend, the worker, or anything else.

Tasks are read from the broker's own traffic: the kombu Redis transport `LPUSH`es each message (JSON, with the
task name and id in `headers` and `[args, kwargs, embed]` base64-encoded in `body`) onto a queue key under the
Celery key prefix (app/workers/config.py). The app passes the tenant id as every task's first argument
(app/api/tasks.py); the result backend key `<prefix>celery-task-meta-<id>` tells whether a task completed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

MARKER_PREFIX = "harness-scenarios:"
PUSH_COMMANDS = frozenset({"lpush", "rpush", "lpushx", "rpushx"})
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

_LINE = re.compile(rb"^(?P<ts>\d+\.\d+) \[(?P<db>\d+) (?P<client>[^\]]*)\] (?P<args>.*)$", re.DOTALL)
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("a"): b"\a", ord("b"): b"\b"}


@dataclass(frozen=True)
class MonitorEntry:
    timestamp: float
    db: int
    client: str
    args: tuple[bytes, ...]

    @property
    def command(self) -> str:
        return self.args[0].decode("ascii", "replace").lower() if self.args else ""


def parse_monitor_line(line: bytes) -> MonitorEntry | None:
    """`1700000000.123456 [0 127.0.0.1:5000] "SET" "k" "v\\x00"` -> the command and its raw arguments."""
    match = _LINE.match(line)
    if match is None:
        return None
    try:
        args = tuple(_split_quoted(match.group("args")))
    except ValueError:
        return None
    client = match.group("client").decode("ascii", "replace")
    return MonitorEntry(float(match.group("ts")), int(match.group("db")), client, args)


def _split_quoted(text: bytes) -> Iterator[bytes]:
    """The arguments of a MONITOR line: double-quoted, escaped like Redis's sdscatrepr()."""
    position, length = 0, len(text)
    while position < length:
        if text[position] == 0x20:
            position += 1
            continue
        if text[position] != 0x22:
            raise ValueError("expected a quoted argument")
        position += 1
        out = bytearray()
        while True:
            if position >= length:
                raise ValueError("unterminated argument")
            char = text[position]
            if char == 0x22:
                position += 1
                break
            if char == 0x5C and position + 1 < length:
                nxt = text[position + 1]
                if nxt == ord("x") and position + 3 < length:
                    try:
                        out.append(int(text[position + 2 : position + 4], 16))
                    except ValueError:
                        raise ValueError("bad \\x escape") from None
                    position += 4
                    continue
                out += _ESCAPES.get(nxt, bytes([nxt]))
                position += 2
                continue
            out.append(char)
            position += 1
        yield bytes(out)


@dataclass(frozen=True)
class WrittenKey:
    key: str
    command: str


@dataclass(frozen=True)
class EnqueuedTask:
    id: str
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue_key: str
    key_prefix: str  # the Celery global key prefix this message was sent under

    @property
    def tenant_id(self) -> str | None:
        """The tenant the task runs for: its first argument, or a `tenant_id` keyword; None if neither is a uuid."""
        candidate = self.args[0] if self.args else self.kwargs.get("tenant_id")
        if isinstance(candidate, str) and UUID_RE.match(candidate):
            return candidate.lower()
        return None

    @property
    def result_key(self) -> str:
        return f"{self.key_prefix}celery-task-meta-{self.id}"

    def describe(self) -> str:
        args = json.dumps(list(self.args), default=str)
        return f"{self.name}[{self.id}] args={args[:200]} kwargs={json.dumps(self.kwargs, default=str)[:200]}"


def parse_task_message(queue_key: str, raw: bytes) -> EnqueuedTask | None:
    """A Celery task message (protocol 2, or 1) pushed onto `queue_key`; None for anything else."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    headers = message.get("headers") or {}
    properties = message.get("properties") or {}
    body: Any = message.get("body")
    if properties.get("body_encoding") == "base64" and isinstance(body, str):
        try:
            body = base64.b64decode(body)
        except (binascii.Error, ValueError):
            return None
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    routing_key = str((properties.get("delivery_info") or {}).get("routing_key") or "")
    prefix = queue_key[: -len(routing_key)] if routing_key and queue_key.endswith(routing_key) else ""
    if isinstance(headers, dict) and headers.get("task") and headers.get("id"):
        args: Any = []
        kwargs: Any = {}
        if isinstance(body, list) and len(body) >= 2:
            args, kwargs = body[0], body[1]
        return EnqueuedTask(
            str(headers["id"]), str(headers["task"]), tuple(args or ()), dict(kwargs or {}), queue_key, prefix
        )
    if isinstance(body, dict) and body.get("task") and body.get("id"):  # protocol 1
        return EnqueuedTask(
            str(body["id"]),
            str(body["task"]),
            tuple(body.get("args") or ()),
            dict(body.get("kwargs") or {}),
            queue_key,
            prefix,
        )
    return None


@dataclass
class Activity:
    """What Redis executed between two markers."""

    keys: list[WrittenKey] = field(default_factory=list)
    tasks: list[EnqueuedTask] = field(default_factory=list)


class MonitorLost(RuntimeError):
    """The MONITOR connection dropped; what was observed after that is unknown."""


PROBE_CLIENT_NAME = "harness-acl-probe"  # a test that tries refused commands on purpose names its client so
ACL_LOG_READ = 1000


@dataclass(frozen=True)
class AclRefusal:
    """One ACL LOG entry: `user` was refused `object` (a command, key or channel) `count` times."""

    user: str
    reason: str  # command | key | channel | auth
    object: str
    context: str  # toplevel | multi | lua | module
    count: int


class RedisMonitor:
    """One MONITOR connection per process, with markers to cut the stream into scenario runs.

    `db`: only writes to this logical database count (the app's, from its REDIS_URL); None: every database.
    """

    def __init__(self, admin_url: str, db: int | None = None) -> None:
        self.admin_url = admin_url
        self.db = db
        self._admin: redis.Redis = redis.Redis.from_url(admin_url, socket_timeout=5)
        self._commands: dict[str, dict[str, Any]] = {}
        self._events: list[
            tuple[str, Any]
        ] = []  # ("key", WrittenKey) | ("task", EnqueuedTask) | ("mark", str)
        self._marks: dict[str, int] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self._monitor_client: redis.Redis | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._recording = 0  # open windows: outside any, nothing but markers is kept
        self._open: set[str] = set()  # their begin markers

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._commands = {str(name).lower(): info for name, info in self._admin.command().items()}
        # Keep the client: when it is garbage-collected its pool closes the MONITOR connection.
        self._monitor_client = redis.Redis.from_url(self.admin_url, socket_timeout=None)
        connection: Any = self._monitor_client.connection_pool.get_connection()
        connection.send_command("MONITOR")
        if connection.read_response() not in (b"OK", "OK"):
            raise MonitorLost("Redis did not accept MONITOR")
        self._connection = connection
        self._thread = threading.Thread(target=self._read, name="harness-redis-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing = True
        if self._connection is not None:
            try:
                self._connection.disconnect()
            except Exception:  # closing a socket another thread reads from: any error is fine here
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._admin.close()

    # -- ACL refusals ------------------------------------------------------------------------------------
    def refusals(self, users: Sequence[str], since: datetime) -> list[AclRefusal]:
        """What Redis refused `users` (component ACL users) since `since`: its ACL LOG, newest entries last
        updated after `since`, except clients named `PROBE_CLIENT_NAME` (tests that try refused commands on
        purpose). An empty list on a server without ACL LOG (ElastiCache does not offer it)."""
        try:
            entries = self._admin.acl_log(count=ACL_LOG_READ)
        except redis.ResponseError:
            return []
        cutoff_ms = since.timestamp() * 1000
        found = []
        for raw in entries:
            entry: dict[str, Any] = dict(raw)
            user = str(entry.get("username", ""))
            client = entry.get("client-info") or {}
            name = client.get("name", "") if isinstance(client, dict) else ""
            updated = float(entry.get("timestamp-last-updated") or 0)
            if user not in users or name == PROBE_CLIENT_NAME or (updated and updated < cutoff_ms):
                continue
            found.append(
                AclRefusal(
                    user=user,
                    reason=str(entry.get("reason", "")),
                    object=str(entry.get("object", "")),
                    context=str(entry.get("context", "")),
                    count=int(entry.get("count", 1)),
                )
            )
        return found

    # -- windows -----------------------------------------------------------------------------------------
    def begin(self, label: str) -> str:
        """Open a window: from now on keys and tasks are recorded (until `end`)."""
        with self._cond:
            self._recording += 1
        begin = self.mark(f"{label}:begin")
        with self._cond:
            self._open.add(begin)
        return begin

    def end(self, begin: str) -> Activity:
        """Close the window opened by `begin`: what happened in it; the recording is then dropped."""
        end = self.mark(begin.removesuffix(":begin") + ":end")
        activity = self.activity(begin, end)
        with self._cond:
            self._recording = max(0, self._recording - 1)
            self._open.discard(begin)
            # Windows overlap (a load run's users, and its own window over the whole run): keep what an
            # open window still needs.
            still_open = [b for b in self._open if b in self._marks]
            keep_from = min(still_open, key=self._marks.__getitem__) if still_open else end
        self.forget_before(keep_from)
        return activity

    # -- markers -----------------------------------------------------------------------------------------
    def mark(self, label: str | None = None, *, timeout: float = 10.0) -> str:
        """Put a marker in the stream and wait until the reader has seen it (and so everything before)."""
        label = label or uuid.uuid4().hex
        self._admin.echo(MARKER_PREFIX + label)
        deadline = time.monotonic() + timeout
        with self._cond:
            while label not in self._marks:
                if self._error is not None:
                    raise MonitorLost(f"the Redis MONITOR connection failed: {self._error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MonitorLost(f"marker {label} not seen on the MONITOR stream within {timeout}s")
                self._cond.wait(remaining)
        return label

    def activity(self, begin: str, end: str | None = None) -> Activity:
        """Keys written and tasks enqueued after marker `begin` (up to `end`, or up to now)."""
        end = end or self.mark()
        with self._cond:
            start, stop = self._marks[begin], self._marks[end]
            events = self._events[start:stop]
        activity = Activity()
        seen_tasks: set[str] = set()
        for kind, payload in events:
            if kind == "key":
                activity.keys.append(payload)
            elif kind == "task" and payload.id not in seen_tasks:
                seen_tasks.add(payload.id)
                activity.tasks.append(payload)
        return activity

    def forget_before(self, label: str) -> None:
        """Drop what was recorded before marker `label` (a long session would otherwise keep it all)."""
        with self._cond:
            cut = self._marks.get(label)
            if cut is None:
                return
            self._events = self._events[cut:]
            self._marks = {k: v - cut for k, v in self._marks.items() if v >= cut}

    # -- reader ------------------------------------------------------------------------------------------
    def _read(self) -> None:
        lines = 0
        try:
            while True:
                lines += 1
                if lines % 64 == 0:
                    # Yield now and then: under gevent (a load run's processes) this reader is a greenlet
                    # that would otherwise never give way while the stream has data buffered, and starve
                    # the process (Locust's heartbeats stopped for a minute). A thread just releases the GIL.
                    time.sleep(0)
                line = self._connection.read_response()
                if isinstance(line, str):
                    line = line.encode("latin-1", "replace")
                entry = parse_monitor_line(line)
                if entry is not None:
                    self._ingest(entry)
        except BaseException as exc:
            with self._cond:
                if not self._closing:
                    self._error = exc
                self._cond.notify_all()

    def _ingest(self, entry: MonitorEntry) -> None:
        command = entry.command
        if command == "echo" and len(entry.args) == 2 and entry.args[1].startswith(MARKER_PREFIX.encode()):
            label = entry.args[1][len(MARKER_PREFIX) :].decode("ascii", "replace")
            with self._cond:
                self._marks[label] = len(self._events)
                self._events.append(("mark", label))
                self._cond.notify_all()
            return
        if not self._recording or (self.db is not None and entry.db != self.db):
            return
        keys = self._written_keys(command, entry.args)
        if not keys:
            return
        events: list[tuple[str, Any]] = [("key", WrittenKey(key, command.upper())) for key in keys]
        if command in PUSH_COMMANDS and len(entry.args) >= 3:
            queue_key = entry.args[1].decode("utf-8", "replace")
            for value in entry.args[2:]:
                task = parse_task_message(queue_key, value)
                if task is not None:
                    events.append(("task", task))
        with self._cond:
            self._events.extend(events)

    def _written_keys(self, command: str, args: tuple[bytes, ...]) -> list[str]:
        info = self._commands.get(command)
        if info is None or "write" not in info.get("flags", ()):
            return []
        if "movablekeys" in info.get("flags", ()):
            try:
                raw = self._admin.command_getkeys(*args)
            except redis.RedisError:
                return []
            return [k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in raw or []]
        first, last, step = int(info["first_key_pos"]), int(info["last_key_pos"]), int(info["step_count"])
        if first <= 0 or step <= 0:
            return []
        last = len(args) + last if last < 0 else last
        return [args[i].decode("utf-8", "replace") for i in range(first, min(last, len(args) - 1) + 1, step)]
