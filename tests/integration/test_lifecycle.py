"""Lifecycle of a stack of its own (infrastructure only, free ports, temporary state dir):
`up` twice changes nothing, state survives `down`/`up`, `down` leaves no process, a killed component heals,
a taken port is a clear error, and the real `harness` command drives it all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from harness.errors import PortInUseError
from harness.provision.apply import provision
from harness.runner import LocalRunner
from harness.state import StateDir
from harness.testing import RunningStack, private_temp_dir, start_stack
from harness.topology import load_topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_stack() -> Iterator[RunningStack]:
    running = start_stack(ROOT / "topology.toml", with_app=False)
    try:
        yield running
    finally:
        running.stop()


def _stack_processes(stack: RunningStack) -> list[psutil.Process]:
    """Every live process whose command line or cwd points into this stack's state dir, plus children."""
    root = str(stack.state.root)
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if root in cmd or (proc.info["cwd"] or "").startswith(root):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except psutil.Error:
            continue
    return [p for p in found.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_up_twice_changes_nothing(own_stack: RunningStack) -> None:
    report = own_stack.runner.up(with_app=False)
    assert report.started == [] and report.restarted == []
    assert sorted(report.already_running) == ["aws", "postgres", "redis"]
    assert report.provision_changes is None, "a healthy, unchanged stack must not be provisioned again"
    # Provisioning itself is idempotent: applying the topology again reports no change.
    again = provision(own_stack.topology, own_stack.runner.infrastructure(), own_stack.state)
    assert again.changes == []


def test_state_survives_down_and_up_and_down_leaves_no_process(own_stack: RunningStack) -> None:
    mark = uuid.uuid4().hex
    env = own_stack.env()
    s3, idp, sm = own_stack.client("s3"), own_stack.client("cognito-idp"), own_stack.client("secretsmanager")
    bucket = own_stack.topology.s3.bucket
    s3.put_object(Bucket=bucket, Key=f"{mark}/file.txt", Body=mark.encode())
    email = f"{mark[:12]}@example.test"
    user = idp.admin_create_user(
        UserPoolId=env["COGNITO_USER_POOL_ID"], Username=email, MessageAction="SUPPRESS"
    )
    sub = next(a["Value"] for a in user["User"]["Attributes"] if a["Name"] == "sub")
    sm.create_secret(Name=f"test/{mark}", SecretString=mark)
    with psycopg.connect(own_stack.admin_database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE survive_{mark[:8]} (v text)")
        conn.execute(f"INSERT INTO survive_{mark[:8]} VALUES (%s)", (mark,))
    redis.Redis.from_url(own_stack.redis_admin_url).set(f"ai:quota:{mark}", 42)

    before = _stack_processes(own_stack)
    assert len(before) >= 3
    stopped = own_stack.runner.down()
    assert sorted(stopped) == ["aws", "postgres", "redis"]
    psutil.wait_procs(before, timeout=5)
    assert _stack_processes(own_stack) == [], "down left processes behind"
    assert all(s.state == "stopped" for s in own_stack.runner.status(include_app=False))

    report = own_stack.runner.up(with_app=False)
    assert sorted(report.started) == ["aws", "postgres", "redis"]
    assert report.provision_changes is None, "restored state must not need provisioning again"
    assert s3.get_object(Bucket=bucket, Key=f"{mark}/file.txt")["Body"].read() == mark.encode()
    got = idp.admin_get_user(UserPoolId=env["COGNITO_USER_POOL_ID"], Username=email)
    assert next(a["Value"] for a in got["UserAttributes"] if a["Name"] == "sub") == sub
    assert sm.get_secret_value(SecretId=f"test/{mark}")["SecretString"] == mark
    with psycopg.connect(own_stack.admin_database_url) as conn:
        assert conn.execute(f"SELECT v FROM survive_{mark[:8]}").fetchone() == (mark,)
    assert redis.Redis.from_url(own_stack.redis_admin_url).get(f"ai:quota:{mark}") == b"42"
    assert own_stack.env() == env, "ports, passwords and ids are stable across down/up"


@pytest.mark.parametrize("component", ["redis", "postgres", "aws"])
def test_a_killed_component_is_reported_and_healed_by_up(own_stack: RunningStack, component: str) -> None:
    status = {s.name: s for s in own_stack.runner.status(include_app=False)}
    pid = status[component].pid
    assert pid is not None and status[component].healthy
    os.kill(pid, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(pid)], timeout=5) if psutil.pid_exists(pid) else None
    status = {s.name: s for s in own_stack.runner.status(include_app=False)}
    assert status[component].state == "stopped" and not status[component].healthy
    report = own_stack.runner.up(with_app=False)
    assert component in report.started
    status = {s.name: s for s in own_stack.runner.status(include_app=False)}
    assert all(s.healthy for s in status.values()), status


def test_a_taken_port_names_the_port_and_the_component(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        text = (ROOT / "topology.toml").read_text().replace("port = 6379", f"port = {port}", 1)
        topology_file = tmp_path / "topology.toml"
        topology_file.write_text(text)
        runner = LocalRunner(load_topology(topology_file), StateDir(private_temp_dir()), "topology")
        try:
            with pytest.raises(PortInUseError) as info:
                runner.up(with_app=False)
        finally:
            runner.down()
            runner.state.wipe()
    message = str(info.value)
    assert f"port {port} for redis is already in use" in message
    assert "redis.port" in message and "--ports auto" in message


def _harness(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_STATE_DIR": str(state), "HARNESS_PORTS": "auto"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_harness_command_end_to_end() -> None:
    """`harness up/status/env/down/reset` as separate processes (down works after the `up` process is gone)."""
    state = private_temp_dir()
    try:
        up = _harness(state, "up", "--no-app")
        assert up.returncode == 0, up.stderr
        assert "endpoints" in up.stderr
        env = json.loads(_harness(state, "env", "--format", "json").stdout)
        generated = json.loads((state / "secrets.json").read_text()).values()
        assert oct((state / "secrets.json").stat().st_mode & 0o777) == "0o600"
        for secret_value in (env["COGNITO_CLIENT_SECRET"], *generated):
            assert secret_value not in up.stdout + up.stderr, "up printed a secret"
        status = json.loads(_harness(state, "status", "--json").stdout)
        infra = [c for c in status if c["name"] in ("postgres", "redis", "aws")]
        assert all(c["state"] == "running" and c["healthy"] and c["pid"] for c in infra), status
        assert {"name", "state", "pid", "endpoint", "healthy"} <= set(status[0])
        again = _harness(state, "up", "--no-app")
        assert again.returncode == 0 and "already running" in again.stderr
        down = _harness(state, "down")
        assert down.returncode == 0, down.stderr
        for c in infra:
            assert (
                not psutil.pid_exists(c["pid"]) or psutil.Process(c["pid"]).status() == psutil.STATUS_ZOMBIE
            )
        reset = _harness(state, "reset", "--yes")
        assert reset.returncode == 0 and not state.exists()
    finally:
        _harness(state, "down")
        _harness(state, "reset", "--yes")


def test_env_before_up_says_what_to_do() -> None:
    state = private_temp_dir()
    result = _harness(state, "env")
    state.rmdir()
    assert result.returncode == 1
    assert "not been provisioned" in result.stderr and "harness up" in result.stderr
    assert "Traceback" not in result.stderr
