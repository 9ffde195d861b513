"""The Docker tier as a user drives it: containers labelled with the state dir, the app from its image, the shipped
scenarios, state across `down`/`up`, `down` leaving no container, healing, and the errors (port taken, a
container that exits, an image missing, no engine)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from harness.backends.docker.components import RedisContainer
from harness.backends.docker.engine import app_image_name, docker_client
from harness.backends.docker.project import LABEL_PROJECT
from harness.errors import PortInUseError, ServiceNotReady
from harness.runner import LocalRunner, UpReport
from harness.state import StateDir
from harness.testing import RunningStack, private_temp_dir
from harness.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
INFRA = ["aws", "postgres", "redis"]
EVERYTHING = ["aws", "backend", "console", "postgres", "redis", "worker"]
CONTAINERS = [
    name for name in EVERYTHING if name != "console"
]  # the console runs on the host (docs/console.md)
docker = pytest.mark.docker


def harness(state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `harness` command, as a user runs it (no --backend: the state dir remembers it)."""
    full_env = {**os.environ, "HARNESS_STATE_DIR": str(state), **env}
    full_env.pop("HARNESS_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def our_containers(stack: RunningStack) -> list[Any]:
    return list(
        docker_client().containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={stack.state.root}"})
    )


@docker
def test_status_lists_containers_labelled_with_the_state_dir(docker_stack: RunningStack) -> None:
    result = harness(docker_stack.state.root, "status", "--json")
    assert result.returncode == 0, result.stderr
    everything = {c["name"]: c for c in json.loads(result.stdout)}
    assert sorted(everything) == EVERYTHING
    assert everything["console"]["healthy"] and everything["console"]["container_id"] is None
    status = {name: c for name, c in everything.items() if name in CONTAINERS}
    assert all(c["state"] == "running" and c["healthy"] and c["container_id"] for c in status.values()), (
        status
    )
    containers = {c.id: c for c in our_containers(docker_stack)}
    for component in status.values():
        container = containers[component["container_id"]]
        assert container.labels[LABEL_PROJECT] == str(docker_stack.state.root)
        assert container.labels["harness.component"] == component["name"]
    images = {c["name"]: containers[c["container_id"]].image.tags for c in status.values()}
    topology = docker_stack.topology
    assert f"postgres:{topology.postgres.version}" in images["postgres"]
    assert f"redis:{topology.redis.version}" in images["redis"]


@docker
def test_the_app_is_healthy_from_its_image(docker_stack: RunningStack) -> None:
    image = app_image_name(ROOT)
    by_component = {c.labels["harness.component"]: c for c in our_containers(docker_stack)}
    for name in ("backend", "worker", "aws"):
        assert image in by_component[name].image.tags, f"{name} does not run the project image {image}"
        assert by_component[name].attrs["Config"]["User"] == "app"
    service = docker_stack.topology.services["backend"]
    health = httpx.get(f"{docker_stack.api_url}{service.health_path}", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    # The stores by name on the stack's network, as the app containers see them.
    env = by_component["backend"].attrs["Config"]["Env"]
    assert any(e.startswith("DATABASE_URL=") and "@postgres:5432/" in e for e in env)
    assert any(e.startswith("REDIS_URL=") and "@redis:6379/" in e for e in env)


@docker
def test_the_shipped_scenarios_pass(docker_stack: RunningStack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "--stack", "attach", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "HARNESS_STATE_DIR": str(docker_stack.state.root)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout, result.stdout[-500:]


@docker
def test_up_twice_changes_nothing(docker_stack: RunningStack) -> None:
    report = docker_stack.runner.up()
    assert report.started == [] and report.restarted == []
    assert sorted(report.already_running) == EVERYTHING
    assert report.provision_changes is None and not report.migrated


@docker
def test_state_survives_down_and_up_and_down_leaves_no_container(docker_stack: RunningStack) -> None:
    stack, mark = docker_stack, uuid.uuid4().hex
    env = stack.env()
    s3, idp = stack.client("s3"), stack.client("cognito-idp")
    bucket = stack.topology.s3.bucket
    s3.put_object(Bucket=bucket, Key=f"{mark}/file.txt", Body=mark.encode())
    email = f"{mark[:12]}@example.test"
    idp.admin_create_user(UserPoolId=env["COGNITO_USER_POOL_ID"], Username=email, MessageAction="SUPPRESS")
    with psycopg.connect(stack.admin_database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE survive_{mark[:8]} (v text)")
        conn.execute(f"INSERT INTO survive_{mark[:8]} VALUES (%s)", (mark,))
    redis.Redis.from_url(stack.redis_admin_url).set(f"ai:quota:{mark}", 42)

    down = harness(stack.state.root, "down")
    assert down.returncode == 0, down.stderr
    assert our_containers(stack) == [], "down left containers of this stack"
    status = json.loads(harness(stack.state.root, "status", "--json").stdout)
    assert all(c["state"] == "stopped" and c["container_id"] is None for c in status)

    report: UpReport = stack.runner.up()
    assert sorted(report.started) == EVERYTHING
    assert report.provision_changes is None, "restored state must not need provisioning again"
    assert not report.migrated
    assert s3.get_object(Bucket=bucket, Key=f"{mark}/file.txt")["Body"].read() == mark.encode()
    idp.admin_get_user(UserPoolId=env["COGNITO_USER_POOL_ID"], Username=email)
    with psycopg.connect(stack.admin_database_url) as conn:
        assert conn.execute(f"SELECT v FROM survive_{mark[:8]}").fetchone() == (mark,)
    assert redis.Redis.from_url(stack.redis_admin_url).get(f"ai:quota:{mark}") == b"42"
    assert stack.runner.env() == env, "ports, passwords and ids are stable across down/up"


@docker
def test_a_killed_container_is_reported_and_healed_by_up(docker_stack: RunningStack) -> None:
    redis_container = next(
        c for c in our_containers(docker_stack) if c.labels["harness.component"] == "redis"
    )
    redis_container.kill()
    status = {s.name: s for s in docker_stack.runner.status()}
    assert status["redis"].state == "stopped" and not status["redis"].healthy
    report = docker_stack.runner.up()
    assert "redis" in report.started
    assert all(s.healthy for s in docker_stack.runner.status())


@docker
def test_a_container_that_exits_is_reported_with_its_logs(docker_stack: RunningStack) -> None:
    class Crashing(RedisContainer):
        name = "crashing"
        data_path = None
        container_port = None
        start_timeout = 30.0

        def command(self) -> list[str]:
            return ["sh", "-c", "echo 'FATAL: bad setting' >&2; exit 3"]

    crashing = Crashing(docker_stack.runner.tier.project, None)  # type: ignore[attr-defined]
    try:
        with pytest.raises(ServiceNotReady) as info:
            docker_stack.runner._start_all([crashing], {}, UpReport(), lambda *_: None)
    finally:
        crashing.stop()
    message = str(info.value)
    assert "crashing did not become healthy: the process exited (code 3)" in message
    assert "FATAL: bad setting" in message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@docker
def test_a_taken_port_names_the_port_and_the_component(
    tmp_path: Path, docker_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The topology copy lives outside the project: name the project image the session stack runs.
    monkeypatch.setenv("HARNESS_DOCKER_APP_IMAGE", app_image_name(ROOT))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        text = (ROOT / "topology.toml").read_text().replace("port = 6379", f"port = {port}", 1)
        for default in ("port = 5432", "port = 4566", "port = 8000"):
            text = text.replace(default, f"port = {_free_port()}", 1)
        topology_file = tmp_path / "topology.toml"
        topology_file.write_text(text)
        runner = LocalRunner(load_topology(topology_file), StateDir(private_temp_dir()), "topology", "docker")
        try:
            with pytest.raises(PortInUseError) as info:
                runner.up(with_app=False)
        finally:
            runner.reset()
    message = str(info.value)
    assert f"port {port} for redis is already in use" in message and "--ports auto" in message


@docker
def test_a_missing_image_says_which_and_how_to_get_it() -> None:
    state = private_temp_dir()
    try:
        result = harness(
            state, "--backend", "docker", "--ports", "auto", "up", "--no-app",
            HARNESS_DOCKER_REDIS_IMAGE="harness-test/no-such-image:0",
        )  # fmt: skip
    finally:
        harness(state, "reset", "--yes")
    assert result.returncode == 1
    assert "image harness-test/no-such-image:0 is not on this engine" in result.stderr
    assert ".ci/docker-setup" in result.stderr and "Traceback" not in result.stderr


def test_no_engine_is_a_clear_error_with_the_way_out() -> None:
    """Needs no engine: DOCKER_HOST points at nothing."""
    state = private_temp_dir()
    try:
        result = harness(
            state, "--backend", "docker", "up", "--no-app", DOCKER_HOST="unix:///nonexistent/docker.sock"
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert result.returncode == 1
    assert "no Docker engine reachable at unix:///nonexistent/docker.sock" in result.stderr
    assert "embedded tier" in result.stderr and "Traceback" not in result.stderr


@docker
def test_images_work_with_testcontainers_modules() -> None:
    """Our images (look-alikes here, the official ones elsewhere) serve testcontainers' own modules."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer as TcRedis

    topology = load_topology(ROOT / "topology.toml")
    with (
        PostgresContainer(f"postgres:{topology.postgres.version}", driver=None) as pg,
        psycopg.connect(pg.get_connection_url()) as conn,
    ):
        row = conn.execute("SHOW server_version").fetchone()
        assert row is not None and row[0].startswith("16.")
    with TcRedis(f"redis:{topology.redis.version}") as rd:
        assert rd.get_client().ping()


@docker
def test_the_app_can_run_on_the_host_beside_the_containers() -> None:
    """`--app-on host`: the stores in containers, the backend and worker as processes here (iterate on app
    code without rebuilding the image); remembered by the state dir, and not mixed with app containers."""
    state = private_temp_dir("harness-apphost-")
    try:
        up = harness(state, "up", "--backend", "docker", "--app-on", "host", HARNESS_PORTS="auto")
        assert up.returncode == 0, up.stderr[-3000:]
        status = {c["name"]: c for c in json.loads(harness(state, "status", "--json").stdout)}
        assert all(status[name]["healthy"] for name in EVERYTHING)
        assert all(status[name]["container_id"] for name in INFRA)
        for name in ("backend", "worker"):
            assert status[name]["container_id"] is None and status[name]["pid"]
        assert json.loads((state / "backend.json").read_text()) == {"backend": "docker", "app_on": "host"}
        scenario = subprocess.run(
            [sys.executable, "-m", "pytest", "scenarios/orders.yaml", "scenarios/media.yaml", "--stack", "attach",
             "-q", "-p", "no:cacheprovider"],
            cwd=ROOT, env={**os.environ, "HARNESS_STATE_DIR": str(state)}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert scenario.returncode == 0, scenario.stdout[-3000:]
        moved = harness(state, "up", "--app-on", "container")
        assert moved.returncode == 1
        assert "app on the host" in moved.stderr and "harness down" in moved.stderr
    finally:
        harness(state, "reset", "--yes")
        shutil.rmtree(state, ignore_errors=True)
    assert not docker_client().containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={state}"})
