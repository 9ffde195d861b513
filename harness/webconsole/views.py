"""What each console page shows, as JSON-ready data: the same readers as the CLI and the scenario probes.

- mail: `harness.devloop.mail` (`list_mail`, `show_mail`, `links`, `part`) — the email probe's `LocalInbox`;
- tenants: `harness.devloop.tenants.list_tenants`; rows: the database probe's `AppUserDatabase` (as
  `app_user`, inside the tenant's RLS context, read-only);
- objects: the object probe's `ObjectStore`; keys: the Redis probe's `RedisKeys`;
- tasks: Celery's own inspect API, run with the worker's env contract (`harness.webconsole.celery_inspect`),
  and the result backend's keys.

Every function takes a `LocalRunner` of the stack and returns lists/dicts; the pages and `/api/` render them.
A secret is never returned: the env contract is shown by name only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.errors import HarnessError

PAGE_SIZE = 50
MAX_KEYS = 500
MAX_OBJECTS = 500
PRESIGN_SECONDS = 300
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
T = TypeVar("T")


class ConsoleInputError(HarnessError):
    """A request named something that does not exist (a tenant, a table): a 4xx, never a 5xx."""

    status = 404


@dataclass
class _Cached:
    at: float
    value: Any


_cache: dict[str, _Cached] = {}


def cached(key: str, seconds: float, compute: Callable[[], T]) -> T:
    """`compute()`, reused for `seconds` (the tenant list is asked for by every page)."""
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit.at < seconds:
        return hit.value  # type: ignore[no-any-return]
    value = compute()
    _cache[key] = _Cached(time.monotonic(), value)
    return value


# --- overview ----------------------------------------------------------------------------------------------


def overview(runner: Any) -> dict[str, Any]:
    """Components (state, health, endpoint), the env contract's names per app component, never a value."""
    components = [row.as_json() for row in runner.status()]
    contract: dict[str, list[str]] = {}
    try:
        for name in runner.topology.services:
            contract[name] = sorted(runner.env(name).keys())
    except HarnessError as exc:
        contract = {"(not provisioned)": [str(exc)]}
    return {
        "project": runner.topology.project.name,
        "env": runner.topology.env,
        "tier": runner.describe(),
        "state_dir": str(runner.state.root),
        "components": components,
        "env_contract": contract,
    }


# --- tenants -----------------------------------------------------------------------------------------------


def tenants(runner: Any) -> list[dict[str, Any]]:
    from harness.devloop.tenants import list_tenants

    return cached(f"tenants:{runner.state.root}", 3.0, lambda: [t.as_json() for t in list_tenants(runner)])


def tenant_id(runner: Any, slug: str) -> str:
    """The id of the tenant `slug` (a slug or an id); ConsoleInputError when there is none."""
    for tenant in tenants(runner):
        if slug in (tenant["slug"], tenant["id"]):
            return str(tenant["id"])
    known = ", ".join(t["slug"] for t in tenants(runner)) or "none"
    raise ConsoleInputError(f"no tenant {slug!r} (tenants: {known})", hint="pick one from the tenant list")


def _app_db(runner: Any) -> Any:
    from harness.scenarios.probes.database import AppUserDatabase

    return AppUserDatabase(runner.env("backend")["DATABASE_URL"])


# --- mail --------------------------------------------------------------------------------------------------


def _aws_url(runner: Any) -> str:
    return str(runner.admin_connections()[2].url)


def mail(runner: Any, to: str | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
    """Captured messages, newest first; `to` keeps one recipient's, `tenant` those to its members or naming
    the tenant's id."""
    from harness.devloop.mail import list_mail

    messages = list_mail(_aws_url(runner), to=to or None)
    if tenant:
        tid = tenant_id(runner, tenant)
        members = {str(r["email"]).lower() for r in _query(runner, tid, "SELECT email FROM memberships", {})}
        messages = [
            m
            for m in messages
            if members.intersection(a.lower() for a in (*m.to, *m.cc, *m.bcc))
            or tid in (m.text or "") + (m.html or "") + m.subject
        ]
    return [m.summary() for m in reversed(messages)]


def mail_message(runner: Any, message_id: str) -> dict[str, Any]:
    """One message: headers, text, HTML (rendered sandboxed by the page), raw source, links, and the ids in
    it that name a row of a tenant table (for the Data page's links)."""
    from harness.devloop.mail import part, show_mail

    endpoint = _aws_url(runner)
    list_mail_or_fail = mail(runner)  # the emulator not answering is the stack's problem (503), not the id's
    try:
        message = show_mail(endpoint, message_id)
    except HarnessError as exc:
        raise ConsoleInputError(exc.message, hint=f"{len(list_mail_or_fail)} message(s) on /mail") from exc
    data = message.as_json()
    data["text"] = part(message, "text")
    data["raw"] = part(message, "raw")
    data["configuration_set"] = message.configuration_set
    data["ids"] = sorted(set(UUID.findall(f"{message.subject}\n{message.text or ''}\n{message.html or ''}")))
    return data


def clear_mail(runner: Any) -> int:
    from harness.devloop.mail import clear_mail as clear

    return clear(_aws_url(runner))


# --- data --------------------------------------------------------------------------------------------------


def _query(runner: Any, tid: str, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    db = _app_db(runner)
    try:
        rows: list[dict[str, Any]] = db.query(tid, sql, params)
        return rows
    finally:
        db.close()


def tables(runner: Any) -> list[str]:
    """The tables `app_user` can read that hold tenant rows (a `tenant_id` column), and `tenants`."""
    schema = runner.topology.postgres.schema_name

    def compute() -> list[str]:
        rows = _query(
            runner,
            "00000000-0000-0000-0000-000000000000",
            "SELECT DISTINCT c.table_name AS name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = %(schema)s AND t.table_type = 'BASE TABLE'"
            " AND (c.column_name = 'tenant_id' OR c.table_name = 'tenants') ORDER BY 1",
            {"schema": schema},
        )
        return [str(r["name"]) for r in rows if _IDENTIFIER.match(str(r["name"]))]

    return cached(f"tables:{runner.state.root}", 30.0, compute)


def rows(runner: Any, table: str, tenant: str, page: int = 1, row_id: str | None = None) -> dict[str, Any]:
    """One page of `table` as `app_user` sees it inside tenant `tenant`'s RLS context (read-only); with
    `row_id`, only the row with that id."""
    known = tables(runner)
    if table not in known:
        raise ConsoleInputError(
            f"no tenant table {table!r} (tables: {', '.join(known)})", hint="pick one from the table list"
        )
    tid = tenant_id(runner, tenant)
    page = max(1, page)
    where = "WHERE id::text = %(id)s" if row_id else ""
    params: dict[str, Any] = {"limit": PAGE_SIZE + 1, "offset": (page - 1) * PAGE_SIZE}
    if row_id:
        params["id"] = row_id
    # `table` is one of the names above (a checked identifier), so quoting it is enough
    found = _query(
        runner, tid, f'SELECT * FROM "{table}" {where} ORDER BY 1 LIMIT %(limit)s OFFSET %(offset)s', params
    )
    return {
        "table": table,
        "tenant": tenant,
        "tenant_id": tid,
        "page": page,
        "page_size": PAGE_SIZE,
        "more": len(found) > PAGE_SIZE,
        "columns": list(found[0]) if found else [],
        "rows": found[:PAGE_SIZE],
    }


def find_row(runner: Any, row_id: str) -> list[dict[str, str]]:
    """Which tenant table holds a row with this id, per tenant (each tenant asked in its own RLS context)."""
    if not UUID.fullmatch(row_id):
        raise ConsoleInputError(f"{row_id!r} is not a row id (a UUID)")
    found = []
    for tenant in tenants(runner):
        for table in tables(runner):
            hit = _query(
                runner,
                tenant["id"],
                f'SELECT 1 AS hit FROM "{table}" WHERE id::text = %(id)s',
                {"id": row_id},
            )
            if hit:
                found.append({"tenant": tenant["slug"], "table": table, "id": row_id})
    return found


# --- objects -----------------------------------------------------------------------------------------------


def objects(runner: Any, tenant: str) -> list[dict[str, Any]]:
    """Every version and delete marker under the tenant's prefix of the media bucket, newest first per key,
    with size, content type and a short-lived presigned download URL."""
    from harness.scenarios.probes.objects import ObjectStore

    tid = tenant_id(runner, tenant)
    s3 = runner.admin_connections()[2].client("s3")
    store = ObjectStore(s3, runner.env("backend")["S3_BUCKET"], runner.topology.s3.tenant_prefix)
    found = []
    for version in store.versions(store.tenant_prefix(tid), limit=MAX_OBJECTS):
        entry = version.as_json()
        if not version.delete_marker:
            entry["download"] = store.presigned_get(version.key, version.version_id, PRESIGN_SECONDS)
        found.append(entry)
    return found


# --- redis -------------------------------------------------------------------------------------------------


def redis_keys(runner: Any, prefix: str | None = None) -> list[dict[str, Any]]:
    """Keys with their type and TTL: under `prefix` (a declared namespace), or every key when None, each
    with its namespace (None: outside every declared namespace, flagged by the page)."""
    from harness.scenarios.probes.redis import RedisKeys, _escape

    declared = [ns.prefix for ns in runner.topology.redis.namespaces]
    if prefix and prefix not in declared:
        raise ConsoleInputError(
            f"{prefix!r} is not a declared Redis namespace ({', '.join(declared)})",
            hint="redis.namespaces in topology.toml",
        )
    keys = RedisKeys(runner.admin_connections()[1].url)
    try:
        names = keys.scan(f"{_escape(prefix)}*" if prefix else "*", limit=MAX_KEYS)
        described = keys.describe(names)
    finally:
        keys.close()
    found = []
    for state in described:
        namespace = runner.topology.redis.namespace_of(state.key)
        found.append(
            {
                "key": state.key,
                "type": state.type,
                "ttl": state.ttl,
                "namespace": namespace.prefix if namespace else None,
            }
        )
    return found


def redis_namespaces(runner: Any) -> list[dict[str, Any]]:
    return [
        {"prefix": ns.prefix, "purpose": ns.purpose, "users": list(ns.users)}
        for ns in runner.topology.redis.namespaces
    ]


# --- identity ----------------------------------------------------------------------------------------------


def identity_users(runner: Any) -> list[dict[str, Any]]:
    """Users of the Cognito pool: status, groups, MFA enrolment, and the tenants they are members of (the
    app's own membership lookup, as `app_user`).

    The pool is read while the app (or a test) signs users up and deletes them: a user listed and gone by the
    time its groups or MFA are asked for is left out (it no longer exists), never an error of the page."""
    cognito = runner.admin_connections()[2].client("cognito-idp")
    pool = runner.env("backend")["COGNITO_USER_POOL_ID"]
    listed: list[dict[str, Any]] = []
    for page in cognito.get_paginator("list_users").paginate(UserPoolId=pool):
        listed.extend(page.get("Users", []))
    found = []
    for user in listed:
        name = user["Username"]
        try:
            groups = [
                g["GroupName"]
                for g in cognito.admin_list_groups_for_user(UserPoolId=pool, Username=name).get("Groups", [])
            ]
            detail = cognito.admin_get_user(UserPoolId=pool, Username=name)
        except cognito.exceptions.UserNotFoundException:
            continue  # deleted since the listing
        attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
        found.append(
            {
                "username": name,
                "email": attributes.get("email"),
                "sub": attributes.get("sub", name),
                "status": user.get("UserStatus"),
                "enabled": user.get("Enabled", True),
                "groups": sorted(groups),
                "mfa": list(detail.get("UserMFASettingList") or []),
                "preferred_mfa": detail.get("PreferredMfaSetting"),
                "tenants": [],
                "created": _iso(user.get("UserCreateDate")),
            }
        )
    memberships = _memberships(runner, [str(u["sub"]) for u in found])
    slugs = {t["id"]: t["slug"] for t in tenants(runner)}
    if any(t not in slugs for ids in memberships.values() for t in ids):  # newer than the cached list
        _cache.pop(f"tenants:{runner.state.root}", None)
        slugs = {t["id"]: t["slug"] for t in tenants(runner)}
    for user in found:
        user["tenants"] = sorted(slugs.get(t, t) for t in memberships.get(str(user["sub"]), set()))
    return sorted(found, key=lambda u: str(u["email"] or u["username"]))


def _memberships(runner: Any, subs: list[str]) -> dict[str, set[str]]:
    """Tenant ids of each user sub, through the app's own membership lookup (one connection for all)."""
    db = _app_db(runner)
    try:
        return {sub: db.tenants_of([sub]) for sub in subs}
    finally:
        db.close()


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


# --- tasks -------------------------------------------------------------------------------------------------


def tasks(runner: Any) -> list[dict[str, Any]]:
    """The worker's active, reserved and scheduled tasks (Celery inspect, with the worker's env contract)
    and recent results from the result backend, each with its tenant id."""
    from harness.backends.app import app_process_env

    found: list[dict[str, Any]] = []
    for name, service in runner.topology.services.items():
        if service.kind != "celery":
            continue
        result = subprocess.run(
            [sys.executable, "-m", "harness.webconsole.celery_inspect", service.app],
            env=app_process_env(runner.env(name)),
            cwd=runner.project_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise HarnessError(
                f"celery inspect for {name} failed: {(result.stderr or result.stdout).strip()[-300:]}"
            )
        for entry in json.loads(result.stdout or "[]"):
            entry["service"] = name
            entry["tenant_id"] = _tenant_of(entry.get("args"), entry.get("kwargs"))
            found.append(entry)
    found.extend(_recent_results(runner))
    return found


def _tenant_of(args: Any, kwargs: Any) -> str | None:
    if isinstance(kwargs, dict) and kwargs.get("tenant_id"):
        return str(kwargs["tenant_id"])
    match = UUID.search(json.dumps(args, default=str)) if args else None
    return match.group(0) if match else None


def _recent_results(runner: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Results Celery kept in the backend (`celery-task-meta-<id>` under the Celery namespace)."""
    from harness.scenarios.probes.redis import RedisKeys

    keys = RedisKeys(runner.admin_connections()[1].url)
    client: Any = keys.client
    found = []
    try:
        for key in keys.scan("*celery-task-meta-*", limit=MAX_KEYS):
            raw = client.get(key)
            try:
                meta = json.loads(str(raw)) if raw else {}
            except ValueError:
                continue
            args = meta.get("args")
            found.append(
                {
                    "state": str(meta.get("status", "")).lower() or "unknown",
                    "id": meta.get("task_id") or key.rsplit("celery-task-meta-", 1)[-1],
                    "name": meta.get("name"),
                    "args": args,
                    "kwargs": meta.get("kwargs"),
                    "tenant_id": _tenant_of(args, meta.get("kwargs"))
                    or _tenant_of([meta.get("result")], None),
                    "result": meta.get("result") if meta.get("status") != "FAILURE" else None,
                    "error": (meta.get("result") or {}).get("exc_message")
                    if meta.get("status") == "FAILURE" and isinstance(meta.get("result"), dict)
                    else None,
                    "traceback": meta.get("traceback"),
                    "date_done": meta.get("date_done"),
                    "service": None,
                }
            )
    finally:
        keys.close()
    found.sort(key=lambda e: str(e.get("date_done") or ""), reverse=True)
    return found[:limit]


# --- scenarios ---------------------------------------------------------------------------------------------


def scenario_reports(runner: Any) -> list[dict[str, Any]]:
    """The last run's report per scenario file, when a run left one (`<state>/scenario-reports/*.json`)."""
    folder = runner.state.root / "scenario-reports"
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append(data)
    return found
