"""compose/docker-compose.yml, generated from the Docker tier's component classes, and its provisioning step."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from harness.backends.docker.components import (
    APP_PORT,
    AWS_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    AppContainer,
    AwsEmulatorContainer,
    PostgresContainer,
    RedisContainer,
    launcher_command,
)
from harness.backends.docker.project import (
    HOST,
    LABEL_COMPONENT,
    LABEL_PROJECT,
    LABEL_TIER,
    TIER,
    DockerProject,
)
from harness.connections import AwsConnection, PostgresConnection, RedisConnection
from harness.state import StateDir
from harness.topology import Service, Topology

COMPOSE_STATE = "/var/lib/harness"  # the compose stack's state volume: secrets and the env contract


def render_compose(topology: Topology) -> str:
    """compose/docker-compose.yml: the containers `harness up --backend docker` runs, for `docker compose`.

    Built from the topology and from the component classes above (their images, commands, environment, data
    paths and ports), so the two cannot drift; tests/docker/test_compose.py fails when the committed file
    differs from this. Ports are the topology's, on 127.0.0.1.
    """
    import yaml

    project = DockerProject(topology, StateDir(Path(COMPOSE_STATE)), Path("."))
    aws_port = topology.aws.port
    labels = {LABEL_PROJECT: "compose", LABEL_TIER: TIER}
    services: dict[str, Any] = {}
    stores = [
        PostgresContainer(project, topology.postgres.port),
        RedisContainer(project, topology.redis.port),
        AwsEmulatorContainer(project, aws_port),
    ]
    for store in stores:
        image = "${HARNESS_APP_IMAGE:-saas-harness/app:latest}" if store.name == "aws" else store.image
        services[store.name] = {
            "image": image,
            "command": [_compose_escape(a) for a in store.command() or []],
            "ports": [f"{HOST}:{store.port}:{store.container_port}"],
            "volumes": [f"{store.name}-data:{store.data_path}"],
            "labels": {**labels, LABEL_COMPONENT: store.name},
        }
    services["postgres"]["environment"] = {
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (the superuser's) in compose/.env}",
    }
    services["postgres"]["healthcheck"] = {
        "test": ["CMD", "pg_isready", "-U", "postgres", "-h", "127.0.0.1"],
        "interval": "2s",
        "retries": 30,
    }
    from harness.emulator.control_guard import CONTROL_TOKEN_ENV

    aws_environment = stores[2].environment()
    # The control token is a secret of a state dir: the committed file names the variable, never a value.
    aws_environment[CONTROL_TOKEN_ENV] = (
        f"${{{CONTROL_TOKEN_ENV}:?set {CONTROL_TOKEN_ENV} (the emulator's control token) in compose/.env}}"
    )
    services["aws"]["environment"] = aws_environment
    services["aws"]["build"] = {"context": "..", "dockerfile": "Dockerfile"}
    app_image = "${HARNESS_APP_IMAGE:-saas-harness/app:latest}"
    provision = [
        "python", "-m", "harness.backends.docker", "provision-compose", "--state-dir", COMPOSE_STATE,
        "--postgres", f"postgres:{POSTGRES_PORT}", "--redis", f"redis:{REDIS_PORT}",
        "--aws", f"http://aws:{AWS_PORT}", "--aws-public", f"http://{HOST}:{aws_port}",
    ]  # fmt: skip
    services["provision"] = {
        "image": app_image,
        "command": provision,
        "environment": {
            "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?}",
            "REDIS_PASSWORD": "${REDIS_PASSWORD:?set REDIS_PASSWORD (the default user's) in compose/.env}",
        },
        "volumes": [f"state:{COMPOSE_STATE}"],
        "depends_on": {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_started"},
            "aws": {"condition": "service_started"},
        },
        "labels": {**labels, LABEL_COMPONENT: "provision"},
    }
    previous = "provision"
    steps: list[tuple[str, list[str], str, Service | None]] = [
        (label, list(argv), "backend", None)
        for label, argv in (("migrate", topology.app.migrate), ("seed", topology.app.seed))
        if argv
    ]
    steps += [
        (name, AppContainer(name, service, project, service.port, aws_port).argv(), name, service)
        for name, service in topology.services.items()
    ]
    for name, argv, contract_of, service in steps:
        # Source the env contract the provision step wrote, then the same launcher as `harness up` uses.
        source = f'set -a; . {COMPOSE_STATE}/{contract_of}.env; set +a; exec "$$@"'
        spec: dict[str, Any] = {
            "image": app_image,
            "command": ["sh", "-c", source, name, *launcher_command(aws_port, argv)],
            "init": True,
            "volumes": [f"state:{COMPOSE_STATE}:ro"],
            "depends_on": {
                previous: {"condition": "service_completed_successfully"},
                "redis": {"condition": "service_started"},
            },
            "labels": {**labels, LABEL_COMPONENT: name},
        }
        if service is None:
            spec["restart"] = "no"
            previous = name
        elif service.port is not None:
            spec["ports"] = [f"{HOST}:{service.port}:{APP_PORT}"]
        services[name] = spec
    document = {
        "services": services,
        "volumes": {f"{name}-data": {"labels": labels} for name in ("postgres", "redis", "aws")}
        | {"state": {"labels": labels}},
    }
    header = (
        "# GENERATED from topology.toml by `python -m harness.backends.docker compose > compose/docker-compose.yml`;\n"
        "# tests/docker/test_compose.py fails when the two disagree. Do not edit by hand: see docs/docker.md.\n"
    )
    return header + yaml.dump(document, Dumper=_compose_dumper(), sort_keys=False, width=110)


def _literal_blocks(dumper: Any, text: str) -> Any:
    style = "|" if "\n" in text else None  # a multi-line value reads as written, not as one escaped line
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _compose_dumper() -> Any:
    import yaml

    class ComposeDumper(yaml.SafeDumper):
        pass

    ComposeDumper.add_representer(str, _literal_blocks)
    return ComposeDumper


def _compose_escape(arg: str) -> str:
    """Compose interpolates `$NAME` in values; a literal `$` is written `$$`."""
    return arg.replace("$", "$$")


def write_compose_contract(
    topology: Topology, state: StateDir, postgres: str, redis: str, aws: str, aws_public: str
) -> list[str]:
    """`provision-compose`: provision the compose stack from inside it and write each component's env
    contract (container view) into the state volume for the app services to source."""
    from harness.connections import Infrastructure
    from harness.envcontract import build_env
    from harness.provision.apply import provision

    pg_host, pg_port = postgres.rsplit(":", 1)
    rd_host, rd_port = redis.rsplit(":", 1)
    infra = Infrastructure(
        PostgresConnection(pg_host, int(pg_port), "postgres", os.environ["POSTGRES_PASSWORD"], "postgres"),
        RedisConnection(rd_host, int(rd_port), "default", os.environ["REDIS_PASSWORD"]),
        AwsConnection(endpoint_url=aws, region=topology.region),
    )
    result = provision(topology, infra, state)
    public = AwsConnection(endpoint_url=aws_public, region=topology.region)
    api = next((f"http://{HOST}:{s.port}" for s in topology.services.values() if s.port), "")
    for component in [*topology.services, "backend"]:
        env = build_env(topology, result.values, public, api, component)
        path = state.root / f"{component}.env"
        path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))
        path.chmod(0o644)  # read by the app user of the app services (the volume is theirs alone)
    return result.changes
