"""The worker probe: did a task enqueued during this run, for this tenant, complete (or fail)?

Local target: the tasks come from the Redis MONITOR stream (see monitor.py), their state from Celery's result
backend in the same Redis. A deployed stack offers neither (ElastiCache refuses MONITOR and is private), so
`expect_task` is refused at load time there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from harness.scenarios.monitor import RedisMonitor

STATES = {"SUCCESS": "completed", "FAILURE": "failed", "RETRY": "retrying", "STARTED": "started"}


@dataclass(frozen=True)
class TaskRun:
    id: str
    name: str
    tenant_id: str | None
    state: str  # pending | started | retrying | completed | failed
    result: Any = None

    def outcome(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state, "result": self.result}


class TaskProbe(Protocol):
    def runs(self, name: str, tenant_id: str, since: str) -> list[TaskRun]:
        """Tasks named `name` enqueued for `tenant_id` after marker `since`, with their current state."""
        ...


class CeleryTaskProbe:
    def __init__(self, monitor: RedisMonitor, admin_url: str) -> None:
        self.monitor = monitor
        self.client: redis.Redis = redis.Redis.from_url(admin_url, decode_responses=True, socket_timeout=5)

    def runs(self, name: str, tenant_id: str, since: str) -> list[TaskRun]:
        activity = self.monitor.activity(since)
        found: list[TaskRun] = []
        for task in activity.tasks:
            if task.name != name or task.tenant_id != tenant_id.lower():
                continue
            state, result = "pending", None
            raw = self.client.get(task.result_key)
            if raw:
                try:
                    meta = json.loads(str(raw))
                    state = STATES.get(str(meta.get("status")), str(meta.get("status", "pending")).lower())
                    result = meta.get("result")
                except ValueError:
                    state = "unknown"
            found.append(TaskRun(task.id, task.name, task.tenant_id, state, result))
        return found

    def close(self) -> None:
        self.client.close()
