"""The audits' inputs (Redis MONITOR lines, Celery messages) and the audits themselves, without a stack."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness.scenarios.audits import audit_objects, audit_redis_keys, audit_tasks
from harness.scenarios.monitor import (
    Activity,
    EnqueuedTask,
    WrittenKey,
    parse_monitor_line,
    parse_task_message,
)
from harness.scenarios.probes.objects import ObjectStore

NAMESPACES = ["ai:quota:", "ai:limit:", "ai:catalog:", "rl:", "celery:"]
TENANT = "6f0805b3-cc91-4e2d-87d2-7e4473566db9"


def kombu_message(
    task: str, args: list[Any], kwargs: dict[str, Any] | None = None, queue: str = "celery"
) -> bytes:
    """What kombu's Redis transport LPUSHes for `task.apply_async(args)` (Celery protocol 2)."""
    body = base64.b64encode(json.dumps([args, kwargs or {}, {"callbacks": None}]).encode()).decode()
    message = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": str(uuid.uuid4()), "argsrepr": repr(tuple(args))},
        "properties": {
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": queue},
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(message).encode()


def test_monitor_lines_are_parsed_with_redis_escapes() -> None:
    line = rb'1795624510.471335 [0 127.0.0.1:57452] "LPUSH" "celery:celery\x06\x163" "{\"a\": \"b\\\\c\"}" "x\ny"'
    entry = parse_monitor_line(line)
    assert entry is not None
    assert entry.command == "lpush"
    assert entry.client == "127.0.0.1:57452"
    assert entry.args == (b"LPUSH", b"celery:celery\x06\x163", b'{"a": "b\\\\c"}', b"x\ny")
    lua = parse_monitor_line(b'1795624510.5 [0 lua] "set" "k" "v"')
    assert lua is not None and lua.client == "lua" and lua.args == (b"set", b"k", b"v")
    assert parse_monitor_line(b"OK") is None


def test_a_celery_message_gives_the_task_and_its_tenant() -> None:
    raw = kombu_message("emails.order_confirmation", [TENANT, "order-1"])
    task = parse_task_message("celery:celery", raw)
    assert task is not None
    assert (task.name, task.args, task.tenant_id) == (
        "emails.order_confirmation",
        (TENANT, "order-1"),
        TENANT,
    )
    assert task.key_prefix == "celery:"
    assert task.result_key == f"celery:celery-task-meta-{task.id}"
    by_keyword = parse_task_message("celery:celery", kombu_message("x", [], {"tenant_id": TENANT}))
    assert by_keyword is not None and by_keyword.tenant_id == TENANT
    assert parse_task_message("celery:celery", b"not json") is None
    assert parse_task_message("celery:celery", b'{"no": "task"}') is None


def test_keys_outside_the_namespaces_are_findings() -> None:
    activity = Activity(
        keys=[
            WrittenKey(f"ai:quota:{TENANT}:2026-11", "HINCRBY"),
            WrittenKey("celery:unacked", "HSET"),
            WrittenKey("session:42", "SET"),
            WrittenKey("session:42", "EXPIRE"),
            WrittenKey("ai:quotas", "SET"),  # "ai:quota:" needs the colon
        ]
    )
    findings = audit_redis_keys(activity, NAMESPACES)
    assert [(f.audit, f.offending) for f in findings] == [
        ("redis-namespaces", "'session:42'"),
        ("redis-namespaces", "'ai:quotas'"),
    ]
    assert "written by SET, outside the declared namespaces ai:quota:" in findings[0].detail


def test_tasks_without_a_tenant_are_findings() -> None:
    def task(args: list[Any]) -> EnqueuedTask:
        parsed = parse_task_message("celery:celery", kombu_message("emails.invite", args))
        assert parsed is not None
        return parsed

    good, bad, wrong = task([TENANT, "i-1"]), task([]), task(["acme", "i-1"])
    findings = audit_tasks(Activity(tasks=[good, bad, wrong]))
    assert [f.offending for f in findings] == [f"emails.invite[{bad.id}]", f"emails.invite[{wrong.id}]"]
    assert "without a tenant id (args [], kwargs {})" in findings[0].detail


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="media")
        s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
        yield s3


def test_objects_outside_a_tenant_prefix_are_findings(bucket: Any) -> None:
    store = ObjectStore(bucket, "media", "{tenant_id}/")
    since = datetime.now(UTC) - timedelta(seconds=1)
    bucket.put_object(Bucket="media", Key=f"{TENANT}/a/hello.txt", Body=b"hi")
    bucket.put_object(Bucket="media", Key="loose.txt", Body=b"oops")
    bucket.put_object(Bucket="media", Key=f"{TENANT}", Body=b"no slash")
    bucket.delete_object(Bucket="media", Key="loose.txt")  # deleting it leaves a marker: still found
    findings = audit_objects(store, since)
    assert sorted({f.offending for f in findings}) == [repr(TENANT), "'loose.txt'"]
    assert store.tenant_of(f"{TENANT}/a/hello.txt") == TENANT
    assert store.tenant_of("loose.txt") is None
    assert store.delete_prefix(f"{TENANT}/") == 1
    assert store.keys(f"{TENANT}/") == []


def test_a_scenario_relying_on_an_unproven_behaviour_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fidelity ledger reaches collection: such a scenario gets the `fidelity_unproven` marker locally."""
    from pathlib import Path

    from harness import fidelity
    from harness.scenarios.collect import unproven_behaviours

    monkeypatch.setattr(
        fidelity,
        "SCENARIO_DEPENDENCIES",
        {"scenarios/media.yaml": ("cognito.secret-hash", "s3.header-signed-requests")},
    )
    assert unproven_behaviours(Path("scenarios/media.yaml")) == ("s3.header-signed-requests",)
    assert unproven_behaviours(Path("scenarios/orders.yaml")) == ()
