"""`harness psql`: the real psql binary (pgserver's) on the stack's database, as a role and inside a tenant's
RLS context; and its refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.connections import PostgresConnection
from harness.errors import HarnessError
from harness.psql import psql_invocation
from harness.testing import RunningStack
from harness.topology import load_topology

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def harness_psql(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "--state-dir", str(stack.runner.state.root), "psql", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def query(stack: RunningStack, sql: str, *options: str) -> str:
    done = harness_psql(stack, *options, "-X", "-A", "-t", "-c", sql)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_tenant_sees_only_itself_and_no_tenant_sees_nothing(stack: RunningStack) -> None:
    assert query(stack, "SELECT current_user") == "app_user"
    assert query(stack, "SELECT slug FROM tenants", "--tenant", "acme") == "acme"
    acme_members = int(query(stack, "SELECT count(*) FROM memberships", "--tenant", "acme"))
    assert acme_members >= 1
    assert query(stack, "SELECT count(*) FROM tenants") == "0"  # RLS: no tenant set, no rows
    assert int(query(stack, "SELECT count(*) FROM tenants", "--role", "admin")) >= 2
    acme_id = query(stack, "SELECT id FROM tenants WHERE slug = 'acme'", "--role", "admin")
    assert query(stack, "SELECT slug FROM tenants", "--tenant", acme_id) == "acme"  # an id works too
    assert query(stack, "SELECT current_user", "--role", "app_migrator") == "app_migrator"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "nobody"), "no Postgres role 'nobody' in the topology"),
        (("--role", "admin", "--tenant", "acme"), "bypasses row-level security"),
        (("--tenant", "no-such-tenant"), "no tenant with slug 'no-such-tenant'"),
    ],
)
def test_refusals_say_what_to_do(stack: RunningStack, args: tuple[str, ...], message: str) -> None:
    done = harness_psql(stack, *args, "-c", "SELECT 1")
    assert done.returncode == 1
    assert message in done.stderr
    assert "hint:" in done.stderr


def test_the_password_is_passed_in_the_environment_never_in_argv(tmp_path: Path) -> None:
    topology = load_topology(ROOT / "topology.toml")
    fake_psql = tmp_path / "psql"
    fake_psql.write_text("")
    admin = PostgresConnection("127.0.0.1", 5432, "postgres", "super-secret-1")
    invocation = psql_invocation(
        topology,
        admin,
        lambda role: f"pw-of-{role}",
        fake_psql,
        role="app_user",
        tenant=None,
        args=["-c", "x"],
    )
    assert invocation.argv == [str(fake_psql), "-c", "x"]
    assert invocation.env["PGPASSWORD"] == "pw-of-app_user"
    assert not any("pw-of" in arg or "super-secret" in arg for arg in invocation.argv)
    with pytest.raises(HarnessError, match="no psql binary"):
        psql_invocation(topology, admin, str, tmp_path / "missing", role="admin", tenant=None)
