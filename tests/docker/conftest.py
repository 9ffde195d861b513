"""The Docker tier's tests: one stack on containers for the session (free ports, temporary state dir).

Tests marked `docker` need an engine and the images; without them they are reported as SKIPPED with the reason
(never as passed). `bash .ci/docker-setup` provides both on a machine like CI's. Tests without the mark (the
compose/ drift check, the no-engine error) always run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.runner import LocalRunner
from harness.state import StateDir
from harness.testing import RunningStack, private_temp_dir
from harness.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
SETUP_HINT = "run `bash .ci/docker-setup` (Debian, root) or start Docker"

# testcontainers (used here against our images): the engine's socket directly, and no reaper container, whose
# image cannot be pulled where Docker Hub is out of reach; our own labels and `harness down` do the cleanup.
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine and the Docker tier's images")


def docker_unavailable() -> str | None:
    """Why the Docker tier cannot run here, or None."""
    from harness.backends.docker.engine import docker_client, engine_problem

    if problem := engine_problem():
        return f"{problem} ({SETUP_HINT})"
    topology = load_topology(ROOT / "topology.toml")
    missing = []
    for image in (f"postgres:{topology.postgres.version}", f"redis:{topology.redis.version}"):
        try:
            docker_client().images.get(image)
        except Exception:
            missing.append(image)
    if missing:
        return f"image(s) {', '.join(missing)} not on the engine ({SETUP_HINT})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if item.get_closest_marker("docker") is not None]
    if not ours:
        return
    reason = docker_unavailable()
    if reason is not None:
        skip = pytest.mark.skip(reason=f"Docker tier not tested: {reason}")
        for item in ours:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def docker_stack() -> Iterator[RunningStack]:
    """The whole topology on containers (app included), provisioned, migrated and seeded."""
    runner = LocalRunner(
        load_topology(ROOT / "topology.toml"), StateDir(private_temp_dir("harness-docker-")), "auto", "docker"
    )
    stack = RunningStack(runner, owned=True)
    try:
        stack.report = runner.up()
        yield stack
    finally:
        runner.reset()  # containers, network and volumes, then the state dir


@pytest.fixture(scope="session")
def stack(docker_stack: RunningStack) -> RunningStack:
    """Under tests/docker the plugin's `stack` is the Docker tier's (the embedded tier's tests reused)."""
    return docker_stack
