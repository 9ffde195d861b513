# mypy: disable-error-code="misc"
"""The worker's own health and durability steps (Celery bootsteps, added in `app/workers/celery_app.py`).

- `Heartbeat` (consumer blueprint): while the consumer is connected to the broker and its event loop turns,
  it rewrites `WORKER_HEARTBEAT_FILE` (JSON: pid, hostname, state, at) every `HEARTBEAT_INTERVAL_SECONDS`.
  A reader (the harness's `status` / `up`) calls the worker ready when the file names the worker's pid, says
  `ready` and is younger than `HEARTBEAT_STALE_SECONDS`. A frozen (SIGSTOP) or disconnected worker stops
  writing, or writes `reconnecting`, so it is reported unhealthy within that bound — no log scanning.
- Lease renewal (same step): kombu's Redis transport redelivers a message whose delivery is older than the
  visibility timeout (`CELERY_VISIBILITY_TIMEOUT`, 30 s). A live worker re-stamps the delivery time of every
  message it holds (running or prefetched) every third of that timeout, so a long task is not delivered a
  second time while it runs; a dead or frozen worker stops renewing and its messages come back within one
  timeout (plus kombu's sweep interval).
- `OutboxRelay` (worker blueprint): the outbox relay thread (app/outbox.py).
- `Consumer` (`worker_consumer`): Celery's consumer, reconnecting to a lost broker every
  `RECONNECT_INTERVAL_SECONDS` instead of backing off to 30 s, so a worker is consuming again about a second
  after Redis is back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger("app.workers.lifecycle")

HEARTBEAT_ENV = "WORKER_HEARTBEAT_FILE"
HEARTBEAT_INTERVAL_SECONDS = 2.0
HEARTBEAT_STALE_SECONDS = 10.0
RECONNECT_INTERVAL_SECONDS = 1.0


def heartbeat_path() -> Path | None:
    value = os.environ.get(HEARTBEAT_ENV, "").strip()
    return Path(value) if value else None


def write_heartbeat(path: Path, *, state: str, hostname: str) -> None:
    """Atomically (write + rename): a reader never sees half a file."""
    body = {"pid": os.getpid(), "hostname": hostname, "state": state, "at": time.time()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(body))
        os.replace(temporary, path)
    except OSError as exc:  # a full or read-only disk must not stop the worker; readers see it stale
        logger.warning("cannot write the heartbeat file %s: %s", path, exc.strerror)


def renew_leases(channel: Any, now: float | None = None) -> int:
    """Re-stamp the delivery time of every message this channel holds unacknowledged (ZADD XX: a message
    acknowledged meanwhile is not added back). Returns how many were renewed."""
    qos = getattr(channel, "qos", None)
    tags = list(getattr(qos, "_delivered", {}) or {})
    if not tags:
        return 0
    stamp = time.time() if now is None else now
    # A client of its own (from the channel's pool), never `channel.client`: the channel's BRPOP may be
    # waiting for its reply on that client's connection, and a command sent there would read the popped
    # message as its own reply — the message would be lost.
    with channel.conn_or_acquire() as client:
        client.zadd(channel.unacked_index_key, dict.fromkeys(tags, stamp), xx=True)
    return len(tags)


class Heartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.path = heartbeat_path()
        self.timer_entry: Any = None
        self.last_renewal = 0.0

    def _visibility_timeout(self, c: Any) -> float:
        options = c.app.conf.broker_transport_options or {}
        return float(options.get("visibility_timeout", 3600))

    def tick(self, c: Any) -> None:
        if self.path is not None:
            write_heartbeat(self.path, state="ready", hostname=c.hostname)
        now = time.time()
        if now - self.last_renewal >= self._visibility_timeout(c) / 3:
            self.last_renewal = now
            try:
                renew_leases(c.task_consumer.channel, now)
            except Exception as exc:  # the broker went away: the consumer reconnects, then renews again
                logger.warning("could not renew message leases (%s)", type(exc).__name__)

    def start(self, c: Any) -> None:
        self.last_renewal = 0.0
        self.tick(c)
        self.timer_entry = c.timer.call_repeatedly(HEARTBEAT_INTERVAL_SECONDS, self.tick, (c,), priority=10)

    def stop(self, c: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        if self.path is not None:
            write_heartbeat(self.path, state="reconnecting", hostname=c.hostname)

    def shutdown(self, c: Any) -> None:
        self.stop(c)
        if self.path is not None:
            write_heartbeat(self.path, state="stopped", hostname=c.hostname)


class OutboxRelay(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.relay: Any = None

    def start(self, worker: Any) -> None:
        import redis

        from app.keys import CELERY
        from app.outbox import Relay
        from app.settings import get_settings

        app = worker.app
        client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=5)
        queue = f"{CELERY}{app.conf.task_default_queue}"
        self.relay = Relay(
            lambda name, args: app.send_task(name, args=args), backlog=lambda: int(client.llen(queue))
        )
        self.relay.start()

    def stop(self, worker: Any) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = partial(
            conn.ensure_connection,
            interval_start=RECONNECT_INTERVAL_SECONDS,
            interval_step=0,
            interval_max=RECONNECT_INTERVAL_SECONDS,
        )
        return super().ensure_connected(conn)
