"""The audits of a load run, once at the end over everything it did (not after every iteration: the object
listing and the MONITOR windows would become the bottleneck).

- redis-namespaces, task-tenant: one Redis MONITOR window over the whole run (harness/scenarios/audits.py);
- object-prefix: every object version written to the media bucket since the run began;
- row-tenant: no row refers across tenants — for every foreign key between two tables that both carry
  `tenant_id`, the referring and the referred row have the same tenant (read as the superuser, RLS off).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from harness.scenarios import audits
from harness.scenarios.monitor import Activity
from harness.scenarios.report import AuditFinding
from harness.scenarios.targets import Target

ROW_TENANT = "row-tenant"

_TENANT_FKS = """
SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
       array_agg(a.attname ORDER BY k.n), array_agg(fa.attname ORDER BY k.n)
  FROM pg_constraint c
  CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, fcol, n)
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col
  JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.fcol
 WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
   AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.conrelid AND t.attname = 'tenant_id')
   AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.confrelid AND t.attname = 'tenant_id')
 GROUP BY c.oid, c.conrelid, c.confrelid
"""


def audit_rows(admin_database_url: str) -> list[AuditFinding]:
    import psycopg
    from psycopg import sql

    findings: list[AuditFinding] = []
    with psycopg.connect(admin_database_url, autocommit=True, connect_timeout=10) as db:
        for table, referred, columns, referred_columns in db.execute(_TENANT_FKS).fetchall():
            join = sql.SQL(" AND ").join(
                sql.SQL("r.{} = f.{}").format(sql.Identifier(c), sql.Identifier(fc))
                for c, fc in zip(columns, referred_columns, strict=True)
            )
            query = sql.SQL(
                "SELECT count(*) FROM {} r JOIN {} f ON {} WHERE r.tenant_id IS DISTINCT FROM f.tenant_id"
            ).format(sql.SQL(table), sql.SQL(referred), join)
            row = db.execute(query).fetchone()
            count = int(row[0]) if row else 0
            if count:
                findings.append(
                    AuditFinding(
                        ROW_TENANT,
                        f"{table}({', '.join(columns)}) -> {referred}",
                        f"{count} row(s) refer to a row of another tenant",
                    )
                )
    return findings


def final_audits(
    target: Target,
    activity: Activity | None,
    since: datetime,
    admin_database_url: str | None,
) -> tuple[list[AuditFinding], list[str], dict[str, str]]:
    """(findings, audits run, audits skipped with the reason)."""
    findings: list[AuditFinding] = []
    ran: list[str] = []
    skipped: dict[str, str] = {}
    if activity is not None:
        namespaces = [ns.prefix for ns in target.topology.redis.namespaces]
        findings += audits.audit_redis_keys(activity, namespaces)
        findings += audits.audit_tasks(activity)
        ran += [audits.REDIS_NAMESPACES, audits.TASK_TENANT]
    else:
        why = "no Redis MONITOR on this target (the deployed Redis is not reachable from here)"
        skipped |= {audits.REDIS_NAMESPACES: why, audits.TASK_TENANT: why}
    if target.monitor is not None:
        users = list(target.topology.redis.users)
        findings += audits.audit_refusals(target.monitor.refusals(users, since))
        ran.append(audits.REDIS_REFUSALS)
    else:
        skipped[audits.REDIS_REFUSALS] = "the deployed Redis's ACL LOG is not reachable from here"
    if target.objects is not None:
        findings += audits.audit_objects(target.objects, since)
        ran.append(audits.OBJECT_PREFIX)
    else:
        skipped[audits.OBJECT_PREFIX] = "the media bucket is not readable from here"
    if admin_database_url:
        findings += audit_rows(admin_database_url)
        ran.append(ROW_TENANT)
    else:
        skipped[ROW_TENANT] = "no admin database connection to this target"
    return findings, ran, skipped


def finding_json(finding: AuditFinding) -> dict[str, Any]:
    return {"audit": finding.audit, "offending": finding.offending, "detail": finding.detail}
