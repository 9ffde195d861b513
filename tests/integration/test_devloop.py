"""The developer's loop on the real stack: `harness mail`, `harness tenant`, `harness db reset`, `harness env
--format nextjs`, `harness snapshot`, and their refusal when the stack is down.

Ordered: the database reset and the snapshot load run last in this file (they replace the whole database).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from harness.testing import RunningStack, private_temp_dir, start_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    """This module's own stack, not the session's: it clears the mail, resets tenants and drops the whole
    database (closing every connection to it), which would pull the floor from under the session stack's
    other users (a session fixture's connection died this way in CI)."""
    running = start_stack()
    try:
        yield running
    finally:
        running.stop()


def harness(
    stack_or_state: RunningStack | Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    state = stack_or_state if isinstance(stack_or_state, Path) else stack_or_state.runner.state.root
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "--state-dir", str(state), *args],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def ok(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    done = harness(stack, *args)
    assert done.returncode == 0, f"harness {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def admin(stack: RunningStack) -> psycopg.Connection[Any]:
    return psycopg.connect(stack.admin_database_url, autocommit=True)


def tenant_id(stack: RunningStack, slug: str) -> str:
    with admin(stack) as db:
        row = db.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
    assert row is not None, slug
    return str(row[0])


def skus(stack: RunningStack, slug: str) -> set[str]:
    with admin(stack) as db:
        rows = db.execute(
            "SELECT c.sku FROM catalog_items c JOIN tenants t ON t.id = c.tenant_id WHERE t.slug = %s",
            (slug,),
        ).fetchall()
    return {r[0] for r in rows}


def add_item(stack: RunningStack, slug: str, sku: str) -> None:
    with admin(stack) as db:
        db.execute(
            "INSERT INTO catalog_items (id, tenant_id, sku, name, price_cents, currency, description, active)"
            " VALUES (%s, %s, %s, 'by hand', 100, 'USD', '', true)",
            (uuid.uuid4(), tenant_id(stack, slug), sku),
        )


# --- refusals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("mail", "list"),
        ("mail", "clear"),
        ("tenant", "list"),
        ("tenant", "reset", "acme"),
        ("db", "reset", "--yes"),
        ("env", "--format", "nextjs"),
        ("snapshot", "save", "x"),
        ("snapshot", "load", "x"),
        ("restart",),
        ("restart", "backend"),
    ],
)
def test_refuses_with_a_hint_when_the_stack_is_down(args: tuple[str, ...]) -> None:
    state = private_temp_dir()
    try:
        done = harness(state, *args, timeout=60)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == 1, done.stderr
    assert "not up" in done.stderr
    assert "harness up" in done.stderr


# --- mail ---------------------------------------------------------------------------------------------------


def test_mail_list_show_links_and_clear(stack: RunningStack) -> None:
    env = stack.env("backend")
    ses = stack.client("sesv2")
    to = f"dev-{uuid.uuid4().hex[:8]}@example.test"
    link = "http://localhost:3000/invites/accept?token=abc123"
    sent = ses.send_email(
        FromEmailAddress=env["SES_SENDER"],
        Destination={"ToAddresses": [to]},
        Content={
            "Simple": {
                "Subject": {"Data": "You're invited"},
                "Body": {
                    "Text": {"Data": f"Accept the invite: {link}\n"},
                    "Html": {"Data": f'<p><a href="{link}&amp;x=1">Accept</a></p>'},
                },
            }
        },
    )
    message_id = sent["MessageId"]

    listed = json.loads(ok(stack, "mail", "list", "--to", to, "--json").stdout)
    assert [m["id"] for m in listed] == [message_id]
    entry = listed[0]
    assert entry["to"] == [to] and entry["subject"] == "You're invited" and entry["timestamp"]
    assert link in entry["links"] and f"{link}&x=1" in entry["links"]

    text = ok(stack, "mail", "show", message_id)
    assert text.stdout.strip() == f"Accept the invite: {link}"
    assert link in text.stderr  # the links, printed to follow
    html = ok(stack, "mail", "show", message_id, "--html")
    assert html.stdout.strip().startswith("<p><a href=")
    raw = ok(stack, "mail", "show", message_id[:12], "--raw")
    assert f"To: {to}" in raw.stdout and "Subject: You're invited" in raw.stdout

    missing = harness(stack, "mail", "show", "no-such-message")
    assert missing.returncode == 1 and "mail list" in missing.stderr

    ok(stack, "mail", "clear")
    assert json.loads(ok(stack, "mail", "list", "--json").stdout) == []


# --- tenants ------------------------------------------------------------------------------------------------


def test_tenant_list_marks_the_seeded_tenants(stack: RunningStack) -> None:
    tenants = {t["slug"]: t for t in json.loads(ok(stack, "tenant", "list", "--json").stdout)}
    assert {"acme", "globex", "initech"} <= set(tenants)
    assert tenants["acme"]["seeded"] is True
    assert tenants["acme"]["id"] == tenant_id(stack, "acme")
    assert tenants["acme"]["members"] == 4


def test_tenant_reset_puts_acme_back_and_leaves_globex_alone(stack: RunningStack) -> None:
    acme, globex = tenant_id(stack, "acme"), tenant_id(stack, "globex")
    seeded_acme = skus(stack, "acme")
    env = stack.env("backend")
    # acme: a hand-made row, a deleted seeded row, a renamed tenant
    add_item(stack, "acme", "HAND-ACME")
    with admin(stack) as db:
        db.execute("DELETE FROM catalog_items WHERE sku = 'MUG' AND tenant_id = %s", (acme,))
        db.execute("UPDATE tenants SET name = 'Renamed' WHERE id = %s", (acme,))
    add_item(stack, "globex", "HAND-GLOBEX")
    # objects: two versions under acme's prefix, one under globex's
    s3 = stack.client("s3")
    bucket = env["S3_BUCKET"]
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=bucket, Key=f"{acme}/media/logo.png", Body=body)
    s3.put_object(Bucket=bucket, Key=f"{globex}/media/logo.png", Body=b"g")
    # Redis: a key of each tenant
    admin_redis = redis.Redis.from_url(stack.redis_admin_url)
    admin_redis.set(f"ai:limit:{acme}", "1")
    admin_redis.set(f"ai:limit:{globex}", "1")
    # Cognito: a hand-made member of acme only, and a seeded owner in one group too many
    cognito = stack.client("cognito-idp")
    pool = env["COGNITO_USER_POOL_ID"]
    extra = f"hand-{uuid.uuid4().hex[:6]}@acme.test"
    sub = cognito.admin_create_user(UserPoolId=pool, Username=extra, MessageAction="SUPPRESS")["User"][
        "Username"
    ]
    with admin(stack) as db:
        db.execute(
            "INSERT INTO memberships (id, tenant_id, user_sub, email, role) VALUES (%s, %s, %s, %s, 'member')",
            (uuid.uuid4(), acme, sub, extra),
        )
    cognito.admin_add_user_to_group(UserPoolId=pool, Username="olivia.owner@acme.test", GroupName="Member")

    done = ok(stack, "tenant", "reset", "acme")
    assert "reset to the seed" in done.stderr

    assert skus(stack, "acme") == seeded_acme
    assert tenant_id(stack, "acme") == acme
    with admin(stack) as db:
        row = db.execute("SELECT name FROM tenants WHERE id = %s", (acme,)).fetchone()
        emails = {r[0] for r in db.execute("SELECT email FROM memberships WHERE tenant_id = %s", (acme,))}
    assert row is not None and row[0] == "Acme Outfitters"
    assert extra not in emails and "olivia.owner@acme.test" in emails
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"{acme}/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    assert admin_redis.exists(f"ai:limit:{acme}") == 0
    with pytest.raises(cognito.exceptions.UserNotFoundException):
        cognito.admin_get_user(UserPoolId=pool, Username=extra)
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username="olivia.owner@acme.test")["Groups"]
    assert [g["GroupName"] for g in groups] == ["Owner"]
    # globex untouched
    assert "HAND-GLOBEX" in skus(stack, "globex")
    assert s3.get_object(Bucket=bucket, Key=f"{globex}/media/logo.png")["Body"].read() == b"g"
    assert admin_redis.exists(f"ai:limit:{globex}") == 1


def test_tenant_reset_refuses_a_tenant_not_in_the_seed_and_deletes_it_with_delete(
    stack: RunningStack,
) -> None:
    hand = str(uuid.uuid4())
    with admin(stack) as db:
        db.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, 'by-hand', 'By hand')", (hand,))
    add_item(stack, "by-hand", "X")
    refused = harness(stack, "tenant", "reset", "by-hand")
    assert refused.returncode == 1
    assert "not in the seed" in refused.stderr and "--delete" in refused.stderr
    ok(stack, "tenant", "reset", "by-hand", "--delete")
    with admin(stack) as db:
        assert db.execute("SELECT count(*) FROM tenants WHERE id = %s", (hand,)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM catalog_items WHERE tenant_id = %s", (hand,)).fetchone() == (
            0,
        )


# --- restart and combined logs -------------------------------------------------------------------------------


def pids(stack: RunningStack) -> dict[str, int]:
    return {row["name"]: row["pid"] for row in json.loads(ok(stack, "status", "--json").stdout)}


def test_restart_restarts_exactly_the_named_components_while_logs_follow_every_one(
    stack: RunningStack,
) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "--state-dir", str(stack.runner.state.root), "logs", "-f", "-n", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(follower.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        before = pids(stack)
        done = ok(stack, "restart", "backend")
        assert "restarted backend in" in done.stderr
        after = pids(stack)
        assert after["backend"] != before["backend"]
        assert {k: v for k, v in after.items() if k != "backend"} == {
            k: v for k, v in before.items() if k != "backend"
        }
        ok(stack, "restart", "redis")
        assert pids(stack)["redis"] != before["redis"]
        import httpx

        health = stack.runner.topology.services["backend"].health_path
        assert httpx.get(stack.api_url + health, timeout=30).status_code == 200
        unknown = harness(stack, "restart", "nope")
        assert unknown.returncode == 1 and "components: postgres" in unknown.stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = "".join(seen)
            if "--- harness: starting backend" in text and "redis" in {line.split(" ")[0] for line in seen}:
                break
            time.sleep(0.2)
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    prefixes = {line.split("|", 1)[0].strip() for line in seen if "|" in line}
    assert {"postgres", "redis", "aws", "backend", "worker"} <= prefixes, seen[:20]
    started = [line for line in seen if "--- harness: starting backend" in line]
    assert started and all(line.startswith("backend ") for line in started)
    assert not any("\x1b[" in line for line in seen)  # no colour when not on a terminal


# --- frontend env -------------------------------------------------------------------------------------------


def secret_values(stack: RunningStack) -> dict[str, str]:
    """Every secret of the stack: the topology's Secrets Manager values, the AWS key, the state dir's secrets."""
    env = stack.env("backend")
    found = {s.env: env[s.env] for s in stack.topology.secrets if env.get(s.env)}
    found["AWS_SECRET_ACCESS_KEY"] = env["AWS_SECRET_ACCESS_KEY"]
    secrets_file = stack.runner.state.root / "secrets.json"
    if secrets_file.exists():
        for key, value in json.loads(secrets_file.read_text()).items():
            if isinstance(value, str) and len(value) >= 8:
                found[f"state:{key}"] = value
    return found


def test_nextjs_env_public_has_no_secret_value(stack: RunningStack) -> None:
    env = stack.env("backend")
    public = ok(stack, "env", "--format", "nextjs", "--public").stdout
    values = dict(line.split("=", 1) for line in public.splitlines() if line and not line.startswith("#"))
    assert values["NEXT_PUBLIC_API_URL"] == env["API_URL"]
    assert values["NEXT_PUBLIC_COGNITO_USER_POOL_ID"] == env["COGNITO_USER_POOL_ID"]
    assert values["NEXT_PUBLIC_COGNITO_CLIENT_ID"] == env["COGNITO_CLIENT_ID"]
    assert {"NEXT_PUBLIC_AWS_REGION", "NEXT_PUBLIC_TENANT_BASE_DOMAIN"} <= set(values)
    assert all(name.startswith("NEXT_PUBLIC_") for name in values)
    secrets = secret_values(stack)
    assert "COGNITO_CLIENT_SECRET" in secrets
    leaked = [name for name, value in secrets.items() if value in public]
    assert leaked == []

    full = ok(stack, "env", "--format", "nextjs").stdout
    lines = dict(line.split("=", 1) for line in full.splitlines() if line and not line.startswith("#"))
    assert lines["COGNITO_CLIENT_SECRET"] == env["COGNITO_CLIENT_SECRET"]
    assert not any(
        name.startswith("NEXT_PUBLIC_") and value == env["COGNITO_CLIENT_SECRET"]
        for name, value in lines.items()
    )


# --- whole-database operations: last in this file ------------------------------------------------------------


def test_db_reset_drops_migrates_and_reseeds(stack: RunningStack) -> None:
    add_item(stack, "globex", "HAND-BEFORE-DB-RESET")
    refused = harness(stack, "db", "reset")  # not a terminal: needs --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert "HAND-BEFORE-DB-RESET" in skus(stack, "globex")
    done = ok(stack, "db", "reset", "--yes")
    assert "3 tenant(s) seeded" in done.stderr
    assert "HAND-BEFORE-DB-RESET" not in skus(stack, "globex")
    assert skus(stack, "initech") == {"STAPLER"}
    status = json.loads(ok(stack, "status", "--json").stdout)
    assert all(row["healthy"] for row in status), status
    import httpx

    health = stack.runner.topology.services["backend"].health_path
    assert httpx.get(stack.api_url + health, timeout=30).status_code == 200


# --- snapshots: after the database reset (a load replaces the whole database) ------------------------------


def snapshot_probe(stack: RunningStack) -> dict[str, Any]:
    """What a snapshot must bring back: rows, object versions, Redis keys, Cognito users, captured mail."""
    env = stack.env("backend")
    bucket = env["S3_BUCKET"]
    versions = stack.client("s3").list_object_versions(Bucket=bucket)
    users = stack.client("cognito-idp").list_users(UserPoolId=env["COGNITO_USER_POOL_ID"])["Users"]
    client = redis.Redis.from_url(stack.redis_admin_url)
    # Celery's own keys (broker bindings) are the worker's business, not the app's data
    keys = {
        k: client.dump(k) for k in client.scan_iter(count=1000) if b"celery" not in k and b"kombu" not in k
    }
    mail = json.loads(ok(stack, "mail", "list", "--json").stdout)
    return {
        "skus": {slug: skus(stack, slug) for slug in ("acme", "globex", "initech")},
        "objects": sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", [])),
        "redis": keys,
        "users": sorted(u["Username"] for u in users),
        "mail": [m["id"] for m in mail],
    }


def test_snapshot_save_break_load_brings_everything_back(stack: RunningStack) -> None:
    env = stack.env("backend")
    s3, cognito = stack.client("s3"), stack.client("cognito-idp")
    bucket, pool = env["S3_BUCKET"], env["COGNITO_USER_POOL_ID"]
    acme = tenant_id(stack, "acme")
    s3.put_object(Bucket=bucket, Key=f"{acme}/kept.txt", Body=b"kept")
    redis.Redis.from_url(stack.redis_admin_url).set(f"ai:limit:{acme}", "7", ex=3600)
    stack.client("sesv2").send_email(
        FromEmailAddress=env["SES_SENDER"],
        Destination={"ToAddresses": ["snap@example.test"]},
        Content={"Simple": {"Subject": {"Data": "kept"}, "Body": {"Text": {"Data": "kept"}}}},
    )
    before = snapshot_probe(stack)
    saved = ok(stack, "snapshot", "save", "before")
    assert "snapshot before saved" in saved.stderr
    exists = harness(stack, "snapshot", "save", "before")
    assert exists.returncode == 1 and "--force" in exists.stderr

    # break every store
    add_item(stack, "globex", "BROKEN")
    with admin(stack) as db:
        db.execute("DELETE FROM catalog_items WHERE tenant_id = %s", (acme,))
    s3.put_object(Bucket=bucket, Key=f"{acme}/kept.txt", Body=b"overwritten")
    s3.put_object(Bucket=bucket, Key=f"{acme}/new.txt", Body=b"new")
    client = redis.Redis.from_url(stack.redis_admin_url)
    client.delete(f"ai:limit:{acme}")
    client.set("ai:quota:broken", "1")
    cognito.admin_delete_user(UserPoolId=pool, Username="olivia.owner@acme.test")
    cognito.admin_create_user(UserPoolId=pool, Username="intruder@example.test", MessageAction="SUPPRESS")
    ok(stack, "mail", "clear")
    assert snapshot_probe(stack) != before

    loaded = ok(stack, "snapshot", "load", "before")
    assert "snapshot before loaded" in loaded.stderr
    after = snapshot_probe(stack)
    assert after == before
    assert s3.get_object(Bucket=bucket, Key=f"{acme}/kept.txt")["Body"].read() == b"kept"
    assert 0 < client.ttl(f"ai:limit:{acme}") <= 3600
    status = json.loads(ok(stack, "status", "--json").stdout)
    assert all(row["healthy"] for row in status), status
    import httpx

    health = stack.runner.topology.services["backend"].health_path
    assert httpx.get(stack.api_url + health, timeout=30).status_code == 200
    listed = json.loads(ok(stack, "snapshot", "list", "--json").stdout)
    assert [(s["name"], s["fits"]) for s in listed] == [("before", True)]


def test_snapshot_export_import_round_trip(stack: RunningStack, tmp_path: Path) -> None:
    file = tmp_path / "before.tgz"
    ok(stack, "snapshot", "export", "before", str(file))
    assert file.stat().st_mode & 0o077 == 0  # it holds the stack's dev secrets
    ok(stack, "snapshot", "delete", "before")
    assert json.loads(ok(stack, "snapshot", "list", "--json").stdout) == []
    with admin(stack) as db:
        assert db.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%%_snap_before'"
        ).fetchone() == (0,)
    ok(stack, "snapshot", "import", str(file))
    again = harness(stack, "snapshot", "import", str(file))
    assert again.returncode == 1 and "--name" in again.stderr
    ok(stack, "snapshot", "import", str(file), "--name", "copy")
    add_item(stack, "initech", "AFTER-EXPORT")
    ok(stack, "snapshot", "load", "copy")
    assert "AFTER-EXPORT" not in skus(stack, "initech")
    assert "STAPLER" in skus(stack, "initech")
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"not a tar")
    refused = harness(stack, "snapshot", "import", str(garbage))
    assert refused.returncode == 1 and "not a snapshot export" in refused.stderr


def test_snapshot_load_refuses_another_topology_or_harness_version(stack: RunningStack) -> None:
    root = stack.runner.state.root / "snapshots"
    ok(stack, "snapshot", "save", "base", "--force")
    for name, change, expected in [
        ("other-topology", {"topology_sections": "cognito"}, "another topology"),
        ("other-version", {"harness_version": "0.0.0-other"}, "harness 0.0.0-other"),
    ]:
        shutil.copytree(root / "base", root / name)
        manifest = json.loads((root / name / "manifest.json").read_text())
        if "topology_sections" in change:
            manifest["topology_sections"]["cognito"] = "0" * 16
            manifest["topology_digest"] = "f" * 16
        else:
            manifest.update(change)
        (root / name / "manifest.json").write_text(json.dumps(manifest))
        add_item(stack, "initech", f"KEEP-{name}")
        refused = harness(stack, "snapshot", "load", name)
        assert refused.returncode == 1, refused.stderr
        assert expected in refused.stderr and "hint:" in refused.stderr
        if "topology_sections" in change:
            assert "differing: cognito" in refused.stderr
        assert f"KEEP-{name}" in skus(stack, "initech")  # nothing was replaced
        listed = {s["name"]: s for s in json.loads(ok(stack, "snapshot", "list", "--json").stdout)}
        assert listed[name]["fits"] is False
    missing = harness(stack, "snapshot", "load", "no-such")
    assert missing.returncode == 1 and "snapshot save no-such" in missing.stderr
    bad = harness(stack, "snapshot", "save", "Bad Name")
    assert bad.returncode == 1 and "not valid" in bad.stderr
