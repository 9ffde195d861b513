"""One state dir's Docker resources: the names and labels of its containers, volumes and network."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.docker.engine import IMAGE_OVERRIDE_ENV, app_image_name, docker_client
from harness.state import StateDir
from harness.topology import Topology

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

HOST = "127.0.0.1"  # published ports bind here only, as the embedded tier listens on loopback only
LABEL_PROJECT = "harness.project"
LABEL_COMPONENT = "harness.component"
LABEL_TIER = "harness.tier"
TIER = "docker"


class DockerProject:
    """Names and labels of one state dir's Docker resources (several stacks coexist on one engine)."""

    def __init__(self, topology: Topology, state: StateDir, project_dir: Path) -> None:
        self.topology = topology
        self.state = state
        self.project_dir = project_dir
        self.key = hashlib.sha256(str(state.root).encode()).hexdigest()[:10]
        self.prefix = f"harness-{self.key}"
        self._network_lock = threading.Lock()

    @property
    def client(self) -> DockerClient:
        return docker_client()

    @property
    def network_name(self) -> str:
        return self.prefix

    def labels(self, component: str) -> dict[str, str]:
        return {LABEL_PROJECT: str(self.state.root), LABEL_COMPONENT: component, LABEL_TIER: TIER}

    def container_name(self, component: str) -> str:
        return f"{self.prefix}-{component}"

    def volume_name(self, component: str) -> str:
        return f"{self.prefix}-{component}-data"

    def image(self, component: str) -> str:
        default = {
            "postgres": f"postgres:{self.topology.postgres.version}",
            "redis": f"redis:{self.topology.redis.version}",
        }.get(component)
        if default is not None:
            return os.environ.get(IMAGE_OVERRIDE_ENV[component]) or default
        return app_image_name(self.project_dir)

    def ensure_network(self) -> None:
        import docker.errors

        with self._network_lock:
            try:
                self.client.networks.get(self.network_name)
            except docker.errors.NotFound:
                self.client.networks.create(
                    self.network_name, driver="bridge", labels=self.labels("network"), check_duplicate=True
                )

    def containers(self) -> list[Container]:
        """Every container of this state dir, running or not (also one-off leftovers)."""
        return list(
            self.client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={self.state.root}"})
        )

    def remove_leftovers(self) -> list[str]:
        """Remove what `down` leaves of this state dir besides volumes: stray containers and the network."""
        import docker.errors

        removed = []
        for container in self.containers():
            try:
                container.remove(force=True)
                removed.append(str(container.labels.get(LABEL_COMPONENT, container.name)))
            except docker.errors.NotFound:
                pass
        try:
            self.client.networks.get(self.network_name).remove()
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:
            pass  # still in use by a container someone else attached: leave it
        return removed

    def remove_volumes(self) -> list[str]:
        import docker.errors

        removed = []
        for volume in self.client.volumes.list(filters={"label": f"{LABEL_PROJECT}={self.state.root}"}):
            try:
                volume.remove(force=True)
                removed.append(str(volume.name))
            except docker.errors.NotFound:
                pass
        return removed

    def volume_exists(self, component: str) -> bool:
        import docker.errors

        try:
            self.client.volumes.get(self.volume_name(component))
        except docker.errors.NotFound:
            return False
        return True

    def prune_orphans(self) -> list[str]:
        """Volumes and containers of state dirs that no longer exist (a temp dir wiped without `reset`)."""
        import docker.errors

        removed = []
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL_TIER}={TIER}"}):
            root = container.labels.get(LABEL_PROJECT, "")
            if root.startswith("/") and not Path(root).exists():
                try:
                    container.remove(force=True)
                    removed.append(str(container.name))
                except docker.errors.APIError:
                    pass
        for volume in self.client.volumes.list(filters={"label": f"{LABEL_TIER}={TIER}"}):
            root = (volume.attrs.get("Labels") or {}).get(LABEL_PROJECT, "")
            if root.startswith("/") and not Path(root).exists():
                try:
                    volume.remove(force=True)
                    removed.append(str(volume.name))
                except docker.errors.APIError:
                    pass
        return removed
