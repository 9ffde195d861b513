"""The backend contract: one registry of tiers, a runner that names none of them, and the tier choices."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from harness.backends import base
from harness.backends.base import TIERS, AwsComponent, Component, InfraComponent, Tier, TierInfo
from harness.errors import HarnessError
from harness.runner import (
    BACKEND_FILE,
    LocalRunner,
    requested_app_on,
    requested_aws_endpoint,
    requested_backend,
)
from harness.state import StateDir
from harness.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topology.toml"
CONCRETE = ("harness.backends.embedded", "harness.backends.docker", "harness.backends.app")


@pytest.fixture
def topology() -> Topology:
    return load_topology(TOPOLOGY)


def test_the_runner_imports_and_names_no_concrete_tier() -> None:
    tree = ast.parse((ROOT / "harness" / "runner.py").read_text())
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert not [m for m in imported if m and m.startswith(CONCRETE)], imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & {"isinstance_tier", "hasattr", "_docker", "DockerTier", "EmbeddedTier", "AppService"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    isinstance_targets = {ast.unparse(c.args[1]) for c in calls if c.func.id == "isinstance"}  # type: ignore[attr-defined]
    assert isinstance_targets <= {"PostgresConnection", "RedisConnection", "AwsConnection"}


@pytest.mark.parametrize("name", sorted(TIERS))
def test_every_registered_tier_loads_and_builds_its_components(
    name: str, topology: Topology, tmp_path: Path
) -> None:
    cls = TIERS[name].load()
    assert issubclass(cls, Tier) and cls.name == name
    tier = cls(topology, StateDir(tmp_path / "state"), ROOT, app_on=TIERS[name].app_places[0])
    infra = tier.infra(topology.ports())
    assert [c.name for c in infra] == ["postgres", "redis", "aws"]
    assert all(isinstance(c, InfraComponent) for c in infra) and isinstance(infra[2], AwsComponent)
    apps = [tier.app(n, s, topology.ports(), None) for n, s in topology.services.items()]
    assert [a.name for a in apps] == list(topology.services)
    assert all(isinstance(a, Component) and a.managed for a in [*infra, *apps])
    assert tier.record()["backend"] == name


def test_the_cli_offers_exactly_the_registered_tiers() -> None:
    from harness.cli import APP_ON_CHOICES, BACKEND_CHOICES

    assert tuple(TIERS) == BACKEND_CHOICES
    assert set(APP_ON_CHOICES) == {p for info in TIERS.values() for p in info.app_places}


def test_a_tier_added_to_the_registry_is_chosen_by_name(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TIERS, "second", TierInfo("second", f"{__name__}:SecondTier", ("host",), "a test"))
    runner = LocalRunner(topology, StateDir(tmp_path / "s"), backend="second")
    assert isinstance(runner.tier, SecondTier)
    assert runner.describe() == "the second tier"
    assert [c.name for c in runner.infra()] == ["postgres", "redis", "aws"]


class SecondTier(TIERS["embedded"].load()):  # type: ignore[misc]
    name = "second"


def test_backend_app_on_and_aws_endpoint_are_remembered_per_state_dir(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in ("HARNESS_BACKEND", "HARNESS_APP_ON", "HARNESS_AWS_ENDPOINT"):
        monkeypatch.delenv(env, raising=False)
    state = StateDir(tmp_path / "s")
    assert requested_backend(None, state) == "embedded"
    assert requested_app_on("container", state, "embedded") == "host"  # the embedded tier: always here
    assert requested_app_on(None, state, "docker") == "container"
    assert requested_aws_endpoint(None, state, topology) is None
    state.ensure()
    state.write_json(
        BACKEND_FILE, {"backend": "docker", "app_on": "host", "aws_endpoint": "http://127.0.0.1:4599"}
    )
    assert requested_backend(None, state) == "docker"
    assert requested_app_on(None, state, "docker") == "host"
    assert requested_aws_endpoint(None, state, topology) == "http://127.0.0.1:4599"
    assert requested_aws_endpoint("", state, topology) is None, "'' goes back to the harness's own emulator"
    assert requested_aws_endpoint("http://localhost:4566/", state, topology) == "http://localhost:4566"
    with pytest.raises(HarnessError, match="not an http"):
        requested_aws_endpoint("localhost:4566", state, topology)
    with pytest.raises(HarnessError, match="not one of embedded, docker"):
        requested_backend("kubernetes", state)
    assert json.loads((state.root / BACKEND_FILE).read_text())["backend"] == "docker"


def test_the_docker_tier_refuses_an_external_endpoint_with_the_app_in_containers(
    topology: Topology, tmp_path: Path
) -> None:
    cls = TIERS["docker"].load()
    with pytest.raises(HarnessError, match="app on the host"):
        cls(topology, StateDir(tmp_path / "s"), ROOT, app_on="container", aws_endpoint="http://127.0.0.1:1")
    tier = cls(topology, StateDir(tmp_path / "s"), ROOT, app_on="host", aws_endpoint="http://127.0.0.1:1")
    aws = tier.aws(topology.ports())
    assert not aws.managed and aws.source == "external" and aws.pid() is None


def test_describe_names_where_the_app_runs() -> None:
    assert base.describe_tier("docker", "container") == "the docker tier (app in containers)"
    assert base.describe_tier("docker", "host") == "the docker tier (app on the host)"
    assert base.describe_tier("embedded", "host") == "the embedded tier"
