"""Audits run after every scenario, whatever its steps: a failing audit fails the scenario with the offenders.

- redis-namespaces: every key written while the scenario ran lies in a namespace of topology.toml
  ([[redis.namespaces]]), whoever wrote it;
- task-tenant: every Celery task enqueued while it ran carried a tenant id (first argument or `tenant_id`);
- object-prefix: every object written to the media bucket while it ran lies under a tenant prefix
  (topology.toml `s3.tenant_prefix`);
- redis-refusals: Redis refused no component user anything while it ran (its ACL LOG): a command missing
  from a user's allow-list ([redis.acl.*]) fails the scenario that needed it, even where the app swallows the
  error (the rate limiter fails open, the seed's cache clear is best effort).

The first two read the Redis MONITOR stream (local target), the last the ACL LOG (local target); the third
lists the bucket's versions (both).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from harness.scenarios.monitor import AclRefusal, Activity
from harness.scenarios.probes.objects import ObjectStore
from harness.scenarios.report import AuditFinding

REDIS_NAMESPACES = "redis-namespaces"
TASK_TENANT = "task-tenant"
OBJECT_PREFIX = "object-prefix"
REDIS_REFUSALS = "redis-refusals"
CLOCK_SLACK = timedelta(seconds=5)  # S3's LastModified is the server's clock, and whole seconds


def audit_redis_keys(activity: Activity, namespaces: Sequence[str]) -> list[AuditFinding]:
    findings: dict[str, AuditFinding] = {}
    for written in activity.keys:
        if written.key in findings or any(written.key.startswith(prefix) for prefix in namespaces):
            continue
        findings[written.key] = AuditFinding(
            REDIS_NAMESPACES,
            repr(written.key),
            f"written by {written.command}, outside the declared namespaces {', '.join(namespaces)}",
        )
    return list(findings.values())


def audit_refusals(refusals: Sequence[AclRefusal]) -> list[AuditFinding]:
    findings = []
    for refused in refusals:
        where = {"lua": " inside a script", "multi": " inside MULTI"}.get(refused.context, "")
        hint = (
            f"add {refused.object!r} to redis.acl.{refused.user}.commands in topology.toml if the app needs it"
            if refused.reason == "command"
            else f"the {refused.reason} is outside user {refused.user}'s namespaces ([[redis.namespaces]])"
        )
        findings.append(
            AuditFinding(
                REDIS_REFUSALS,
                f"{refused.user}: {refused.reason} {refused.object}",
                f"Redis refused it {refused.count} time(s){where}; {hint}",
            )
        )
    return findings


def audit_tasks(activity: Activity) -> list[AuditFinding]:
    return [
        AuditFinding(
            TASK_TENANT,
            f"{task.name}[{task.id}]",
            f"enqueued on {task.queue_key!r} without a tenant id (args {list(task.args)!r}, "
            f"kwargs {task.kwargs!r}); every task must take the tenant id first",
        )
        for task in activity.tasks
        if task.tenant_id is None
    ]


def audit_objects(store: ObjectStore, since: datetime) -> list[AuditFinding]:
    findings: list[AuditFinding] = []
    for version in store.versions_since(since - CLOCK_SLACK):
        if store.tenant_of(version.key) is None:
            what = "deleted" if version.delete_marker else "written"
            findings.append(
                AuditFinding(
                    OBJECT_PREFIX,
                    repr(version.key),
                    f"{what} at {version.last_modified.isoformat()} outside every tenant prefix "
                    f"({store.template!r}) of bucket {store.bucket}",
                )
            )
    return findings
