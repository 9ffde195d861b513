"""The worker heartbeat (harness/heartbeat.py reads what app/workers/lifecycle.py writes) and lease renewal."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.workers.lifecycle import renew_leases, write_heartbeat
from harness.heartbeat import STALE_AFTER_SECONDS, heartbeat_problem


def test_a_fresh_ready_heartbeat_of_the_process_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "worker.heartbeat"
    write_heartbeat(path, state="ready", hostname="worker@host")
    assert heartbeat_problem(path, pid=os.getpid()) is None
    assert json.loads(path.read_text())["hostname"] == "worker@host"
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed, not left behind


def test_stale_foreign_reconnecting_missing_and_torn_heartbeats_are_named(tmp_path: Path) -> None:
    path = tmp_path / "worker.heartbeat"
    assert "does not exist" in (heartbeat_problem(path) or "")
    write_heartbeat(path, state="ready", hostname="w")
    at = json.loads(path.read_text())["at"]
    stale = heartbeat_problem(path, now=at + STALE_AFTER_SECONDS + 5)
    assert stale is not None and "15 s old" in stale
    assert "not the running worker" in (heartbeat_problem(path, pid=os.getpid() + 1) or "")
    write_heartbeat(path, state="reconnecting", hostname="w")
    assert "'reconnecting'" in (heartbeat_problem(path) or "")
    path.write_text('{"pid": 1, "at"')
    assert "unreadable" in (heartbeat_problem(path) or "")


class FakeRedis:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def zadd(self, key: str, mapping: dict[str, float], xx: bool = False) -> None:
        self.calls.append((key, mapping, xx))


class FakeChannel:
    unacked_index_key = "unacked_index"

    def __init__(self, delivered: dict[str, object]) -> None:
        self.client = FakeRedis()
        self.qos = type("QoS", (), {"_delivered": delivered})()
        self.acquired = 0

    @contextmanager
    def conn_or_acquire(self) -> Iterator[FakeRedis]:
        self.acquired += 1  # a client of its own, never the one whose connection waits in BRPOP
        yield self.client


def test_lease_renewal_restamps_only_held_messages_without_adding_acked_ones() -> None:
    channel = FakeChannel({"tag-1": object(), "tag-2": object()})
    assert renew_leases(channel, now=1000.0) == 2
    assert channel.client.calls == [("unacked_index", {"tag-1": 1000.0, "tag-2": 1000.0}, True)]
    assert channel.acquired == 1
    idle = FakeChannel({})
    assert renew_leases(idle) == 0
    assert idle.client.calls == []
