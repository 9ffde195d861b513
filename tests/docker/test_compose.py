"""compose/ cannot drift from the topology: the committed file is what the topology generates, and it says what the
topology says (read independently of the generator). Needs no engine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.docker.compose import render_compose
from harness.backends.docker.project import LABEL_PROJECT
from harness.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose" / "docker-compose.yml"
REGENERATE = "python -m harness.backends.docker compose > compose/docker-compose.yml"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def test_the_committed_compose_file_is_what_the_topology_generates() -> None:
    expected = render_compose(load_topology(ROOT / "topology.toml"))
    assert COMPOSE_FILE.read_text() == expected, f"compose/ drifted from topology.toml: run `{REGENERATE}`"


def test_compose_says_what_the_topology_says() -> None:
    topology = load_topology(ROOT / "topology.toml")
    services = _compose()["services"]
    assert services["postgres"]["image"] == f"postgres:{topology.postgres.version}"
    assert services["redis"]["image"] == f"redis:{topology.redis.version}"
    published = {name: [p.split(":")[1] for p in spec.get("ports", [])] for name, spec in services.items()}
    assert published["postgres"] == [str(topology.postgres.port)]
    assert published["redis"] == [str(topology.redis.port)]
    assert published["aws"] == [str(topology.aws.port)]
    assert all(p.startswith("127.0.0.1:") for spec in services.values() for p in spec.get("ports", []))
    assert topology.region in services["aws"]["command"]
    assert services["aws"]["environment"]["MOTO_ACCOUNT_ID"] == topology.project.account_id
    for name, service in topology.services.items():
        command = " ".join(services[name]["command"])
        assert service.app in command, name
        if service.port is not None:
            assert published[name] == [str(service.port)]
    for label, argv in (("migrate", topology.app.migrate), ("seed", topology.app.seed)):
        if argv:
            assert " ".join(argv) in " ".join(services[label]["command"]), label
    assert all(spec["labels"][LABEL_PROJECT] == "compose" for spec in services.values())


def _compose_command() -> list[str] | None:
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) is None:
            continue
        probe = subprocess.run([*candidate, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def test_compose_validates_with_the_compose_tool() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    env = {**os.environ, "POSTGRES_PASSWORD": "check-only", "REDIS_PASSWORD": "check-only",
           "HARNESS_EMULATOR_CONTROL_TOKEN": "check-only"}  # fmt: skip
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_committed_compose_file_holds_no_secret_value() -> None:
    """Passwords and tokens are compose variables (`${NAME:?...}`), never a state dir's values."""
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert str(value).startswith("${"), f"services.{name}.environment.{key} holds a value"
