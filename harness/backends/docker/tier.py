"""`DockerTier`: the backend contract (`harness.backends.base.Tier`) as containers on a local engine."""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.backends.base import AwsComponent, Component, InfraComponent, Progress, Tier, no_progress
from harness.backends.docker.components import (
    POSTGRES_PORT,
    REDIS_PORT,
    AppContainer,
    AwsEmulatorContainer,
    PostgresContainer,
    RedisContainer,
    launcher_command,
)
from harness.backends.docker.engine import ensure_app_image, indent_lines
from harness.backends.docker.project import HOST, DockerProject
from harness.errors import HarnessError, ServiceStartError
from harness.state import StateDir
from harness.topology import Service, Topology

ONE_OFF_TIMEOUT_SECONDS = 300.0


class DockerTier(Tier):
    """The stack as containers on a local Docker engine; the app in containers too (`app_on="container"`,
    the default) or as processes on this host beside them (`app_on="host"`)."""

    name = "docker"

    def __init__(
        self,
        topology: Topology,
        state: StateDir,
        project_dir: Path,
        app_on: str = "container",
        aws_endpoint: str | None = None,
    ) -> None:
        super().__init__(topology, state, project_dir, app_on, aws_endpoint)
        if aws_endpoint and app_on == "container":
            raise HarnessError(
                "an external AWS endpoint needs the app on the host on the Docker tier (its containers reach "
                "AWS through the harness's own emulator on their network)",
                hint="add --app-on host, or use the embedded tier",
            )
        self.project = DockerProject(topology, state, project_dir)

    def stores(self, ports: Mapping[str, int]) -> list[InfraComponent]:
        return [
            PostgresContainer(self.project, ports["postgres"]),
            RedisContainer(self.project, ports["redis"]),
        ]

    def emulator(self, ports: Mapping[str, int]) -> AwsComponent:
        return AwsEmulatorContainer(self.project, ports["aws"])

    def app(
        self, name: str, service: Service, ports: Mapping[str, int], contract: Mapping[str, str] | None
    ) -> Component:
        if self.app_on != "container":
            return super().app(name, service, ports, contract)
        env = self.container_env(contract, ports) if contract is not None else None
        return AppContainer(name, service, self.project, ports.get(name), ports["aws"], env)

    def container_env(self, contract: Mapping[str, str], ports: Mapping[str, int]) -> dict[str, str]:
        """The env contract as seen from a container on the network: the stores by name; the AWS endpoint
        stays the host's URL (the launcher forwards it), so presigned URLs work on both sides."""
        moves = {
            f"@{HOST}:{ports['postgres']}/": f"@postgres:{POSTGRES_PORT}/",
            f"@{HOST}:{ports['redis']}/": f"@redis:{REDIS_PORT}/",
        }
        env = {}
        for key, value in contract.items():
            for old, new in moves.items():
                value = value.replace(old, new)
            env[key] = value
        return env

    def run_one_off(
        self,
        label: str,
        argv: Sequence[str],
        contract: Mapping[str, str],
        ports: Mapping[str, int],
        progress: Progress = no_progress,
    ) -> None:
        """Run an app command (migrate, seed) to completion: in a fresh container from the app image, as ECS
        one-off tasks do (with the app on the host: a process here)."""
        if self.app_on != "container":
            return super().run_one_off(label, argv, contract, ports, progress)
        progress(label, " ".join(argv))
        t0 = time.monotonic()
        from harness.process import log_size, tail

        since = log_size(self.state.log_file(label))  # the log is appended to: quote this run's lines only
        code, log = self._run_container(label, argv, contract, ports)
        if code != 0:
            raise ServiceStartError(
                f"{label}: `{shlex.join(argv)}` failed in its container (exit {code}); last lines of "
                f"{log}:\n{indent_lines(tail(log, since=since).splitlines())}",
                hint=f"fix the app's {label} step, then run `harness up` again",
            )
        progress(label, f"done in {time.monotonic() - t0:.2f}s")
        return None

    def _run_container(
        self, label: str, argv: Sequence[str], contract: Mapping[str, str], ports: Mapping[str, int]
    ) -> tuple[int, Path]:
        """The one-off container: its exit code and the log file that holds its output."""
        import docker.errors

        image = ensure_app_image(self.project.project_dir)
        self.project.ensure_network()
        client = self.project.client
        name = self.project.container_name(label)
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        command = [a if a not in ("python3",) else "python" for a in argv]
        log = self.state.log_file(label)
        log.parent.mkdir(parents=True, exist_ok=True)
        container = client.containers.run(
            image,
            command=launcher_command(ports["aws"], command),
            environment={**self.container_env(contract, ports), "PYTHONUNBUFFERED": "1"},
            name=name,
            labels=self.project.labels(label),
            network=self.project.network_name,
            init=True,
            detach=True,
        )
        try:
            result = container.wait(timeout=ONE_OFF_TIMEOUT_SECONDS)
            code = int(result.get("StatusCode", -1))
        except Exception as exc:  # a timeout of the wait (requests' ReadTimeout) or the engine
            container.remove(force=True)
            raise ServiceStartError(
                f"{label}: `{shlex.join(argv)}` did not finish within {ONE_OFF_TIMEOUT_SECONDS:.0f}s ({exc})"
            ) from exc
        with open(log, "ab") as fh:
            fh.write(f"\n--- harness: {shlex.join(argv)} (container {container.short_id})\n".encode())
            fh.write(container.logs())
        container.remove(force=True)
        return code, log

    def after_down(self) -> list[str]:
        return self.project.remove_leftovers()

    def wipe(self) -> list[str]:
        self.project.remove_leftovers()
        return self.project.remove_volumes()

    def prune_orphans(self) -> list[str]:
        return self.project.prune_orphans()
