"""The Docker tier: the same topology as containers on a local Docker engine (`--backend docker`).

- `postgres:16` and `redis:7` (the topology's versions), the official images' environment and data dirs;
- the AWS emulator (`harness.emulator`: moto + persisted state + captured mail + fidelity checks) and the app
  (backend, worker, one-off migrate/seed) from the project's own image (`./Dockerfile`), built on demand and
  tagged with a digest of its inputs, so an edited app or harness is rebuilt and an unchanged one never is;
- every container carries the label `harness.project=<state dir>`; data lives in named volumes (it survives
  `down`/`up`, `reset` removes them); one network per state dir, on which the stores answer to their component
  names (`postgres:5432`, `redis:6379`, `aws:4566`); ports are published on 127.0.0.1 only.

Each component is one small class with the embedded tier's shape (`prepare/start/stop/pid/health/readiness/
connection`), so `LocalRunner`, provisioning and the env contract are the same code on both tiers. The engine
is reached with the Docker SDK (imported lazily: the embedded tier never pays for it). testcontainers is
used by the tests (its Postgres/Redis modules against our images); the harness's containers are long-lived,
named and re-attached by label on every command, which is not what testcontainers' throwaway containers and
reaper are for.

`python -m harness.backends.docker build-image [--build-arg K=V ...]` builds the project image (used by
.ci/docker-setup); `python -m harness.backends.docker compose` prints compose/docker-compose.yml.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shlex
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.base import (
    AwsComponent,
    Component,
    HarnessEmulator,
    InfraComponent,
    Progress,
    Tier,
    no_progress,
)
from harness.connections import AwsConnection, PostgresConnection, RedisConnection
from harness.errors import HarnessError, PortInUseError, ServiceStartError
from harness.readiness import AllOf, CallableCheck, HttpOk, Readiness
from harness.state import StateDir
from harness.topology import Service, Topology

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

HOST = "127.0.0.1"  # published ports bind here only, as the embedded tier listens on loopback only
LABEL_PROJECT = "harness.project"
LABEL_COMPONENT = "harness.component"
LABEL_TIER = "harness.tier"
TIER = "docker"

POSTGRES_PORT = 5432
REDIS_PORT = 6379
AWS_PORT = 4566
APP_PORT = 8000
POSTGRES_DATA = "/var/lib/postgresql/data"
REDIS_DATA = "/data"
AWS_DATA = "/var/lib/aws"

APP_IMAGE_REPOSITORY = "saas-harness/app"
IMAGE_OVERRIDE_ENV = {  # e.g. HARNESS_DOCKER_POSTGRES_IMAGE=postgres:16.4 to pin an exact image
    "postgres": "HARNESS_DOCKER_POSTGRES_IMAGE",
    "redis": "HARNESS_DOCKER_REDIS_IMAGE",
    "app": "HARNESS_DOCKER_APP_IMAGE",
}
BUILD_ARGS_ENV = "HARNESS_DOCKER_BUILD_ARGS"  # "KEY=VALUE KEY=VALUE" for the project image's build
WHEELHOUSE_IMAGE = "saas-harness/wheelhouse:local"  # made by .ci/docker-setup where PyPI is out of reach
OFFLINE_BUILD_ARGS = {"DEPS_BASE": WHEELHOUSE_IMAGE, "PIP_INSTALL_OPTIONS": "--no-index --find-links /wheels"}
IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "topology.toml", "seed", "harness", "app")

ENGINE_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
PG_START_TIMEOUT = 60.0
REDIS_START_TIMEOUT = 30.0
AWS_START_TIMEOUT = 90.0
APP_START_TIMEOUT = 90.0
ONE_OFF_TIMEOUT_SECONDS = 300.0
LOG_TAIL_LINES = 25
CELERY_READY_MARKER = " ready."

ENGINE_HINT = (
    "start a Docker engine (Docker Desktop, `sudo systemctl start docker`, or on a Debian machine like CI's "
    "`sudo bash .ci/docker-setup`), point DOCKER_HOST at one, or use the embedded tier: drop `--backend docker` "
    "/ unset HARNESS_BACKEND"
)

# Runs first in every app container: binds 127.0.0.1:<the emulator's published port> inside the container and
# forwards it to the emulator on the network, then execs the app. AWS_ENDPOINT_URL is thus the same URL inside
# the container and on the host, so the presigned S3 URLs the app signs work in a browser or a test on the host
# (the job LocalStack's localhost.localstack.cloud name does). The listener is bound before the exec, so the app
# never races it. argv: PORT TARGET_HOST TARGET_PORT COMMAND...
LOOPBACK_LAUNCHER = """\
import os, socket, sys, threading
port, host, target, argv = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(128)
if os.fork() == 0:
    def pipe(src, dst, done):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if done.acquire(blocking=False) is False:
            src.close(); dst.close()
    def serve(client):
        try:
            upstream = socket.create_connection((host, target), timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close(); return
        done = threading.Lock()
        threading.Thread(target=pipe, args=(client, upstream, done), daemon=True).start()
        pipe(upstream, client, done)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
listener.close()
os.execvp(argv[0], argv)
"""


class EngineUnavailable(ServiceStartError):
    """No Docker engine answers (or the Docker SDK is missing)."""


# --- the engine and the project image ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def docker_client() -> DockerClient:
    """A client of the engine DOCKER_HOST (or the default socket) names; a clear error when none answers."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise EngineUnavailable(
            "the Docker tier needs the Docker SDK for Python (`docker`), which is not installed",
            hint="`pip install -e .` installs it (it is a dependency of the project)",
        ) from exc
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT_SECONDS)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            f"no Docker engine reachable at {where}: {_short(exc)}", hint=ENGINE_HINT
        ) from exc
    return client


def engine_problem() -> str | None:
    """None when an engine answers, else why not (for skipping tests with the reason)."""
    try:
        docker_client()
    except HarnessError as exc:
        docker_client.cache_clear()
        return exc.message
    return None


def image_inputs_digest(project_dir: Path) -> str:
    """Digest of everything the project image is built from (file names and contents)."""
    h = hashlib.sha256()
    for rel in IMAGE_INPUTS:
        root = project_dir / rel
        paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                h.update(str(path.relative_to(project_dir)).encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()


def app_image_name(project_dir: Path) -> str:
    return os.environ.get(IMAGE_OVERRIDE_ENV["app"]) or (
        f"{APP_IMAGE_REPOSITORY}:{image_inputs_digest(project_dir)[:12]}"
    )


_build_lock = threading.Lock()


def ensure_app_image(
    project_dir: Path,
    build_args: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """The project image for the current inputs: present already, or built now (the deps layer is cached, so
    a change to the code alone rebuilds in seconds). Returns its name."""
    name = app_image_name(project_dir)
    with _build_lock:
        if _image_present(name) or os.environ.get(IMAGE_OVERRIDE_ENV["app"]):
            return name
        import docker.errors

        client = docker_client()
        build_args = dict(build_args) if build_args is not None else default_build_args()
        how = " (deps from the wheelhouse image)" if build_args.get("DEPS_BASE") == WHEELHOUSE_IMAGE else ""
        progress(f"building {name} from {project_dir / 'Dockerfile'}{how}")
        t0 = time.monotonic()
        lines: list[str] = []
        try:
            for chunk in client.api.build(
                path=str(project_dir),
                tag=name,
                buildargs=build_args,
                rm=True,
                forcerm=True,
                decode=True,
                labels={"harness.inputs": name.rsplit(":", 1)[1]},
            ):
                if "stream" in chunk:
                    lines.extend(chunk["stream"].rstrip("\n").splitlines())
                if "error" in chunk:
                    raise ServiceStartError(
                        f"building {name} failed: {chunk['error'].strip()}\n{_indent(lines[-LOG_TAIL_LINES:])}",
                        hint="fix the Dockerfile or its inputs; where PyPI or Docker Hub is unreachable, "
                        "`bash .ci/docker-setup` builds the image from a local wheelhouse",
                    )
        except docker.errors.DockerException as exc:
            raise ServiceStartError(f"building {name} failed: {_short(exc)}", hint=ENGINE_HINT) from exc
        client.api.tag(name, APP_IMAGE_REPOSITORY, "latest")
        _untag_older(client, keep=name)
        progress(f"built {name} in {time.monotonic() - t0:.1f}s")
        return name


def _untag_older(client: DockerClient, keep: str) -> None:
    """Drop the tags of earlier builds (their layers go with them unless a container still uses one)."""
    import docker.errors

    for image in client.images.list(APP_IMAGE_REPOSITORY):
        for tag in image.tags:
            if tag not in (keep, f"{APP_IMAGE_REPOSITORY}:latest"):
                try:
                    client.images.remove(tag)
                except docker.errors.APIError:
                    pass  # in use by a container: it goes with a later build
    _present_images.clear()


def default_build_args() -> dict[str, str]:
    """$HARNESS_DOCKER_BUILD_ARGS; else, when this engine holds the wheelhouse image .ci/docker-setup makes,
    build offline from it (that engine's machine cannot reach PyPI); else none (pip uses PyPI)."""
    if explicit := os.environ.get(BUILD_ARGS_ENV):
        return dict(pair.split("=", 1) for pair in shlex.split(explicit))
    return dict(OFFLINE_BUILD_ARGS) if _image_present(WHEELHOUSE_IMAGE) else {}


_present_images: set[str] = set()  # "present" answers only: an image does not vanish under a running `up`


def _image_present(name: str) -> bool:
    import docker.errors

    if name in _present_images:
        return True
    try:
        docker_client().images.get(name)
    except docker.errors.ImageNotFound:
        return False
    _present_images.add(name)
    return True


def ensure_image(name: str, component: str) -> None:
    """Pull `name` when the engine does not have it; a clear error when that is impossible."""
    if _image_present(name):
        return
    import docker.errors

    try:
        docker_client().images.pull(name)
    except docker.errors.DockerException as exc:
        raise ServiceStartError(
            f"{component}: image {name} is not on this engine and could not be pulled: {_short(exc)}",
            hint=f"`docker pull {name}` where its registry is reachable; offline, `bash .ci/docker-setup` "
            f"builds look-alikes under the same names; or set {IMAGE_OVERRIDE_ENV.get(component, 'the image')} "
            "to an image you have",
        ) from exc


# --- one state dir's containers, volumes and network ---------------------------------------------------------


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


# --- components ----------------------------------------------------------------------------------------------


class ContainerService(Component):
    """One component as a container: created by `start`, removed by `stop`; its data in a named volume."""

    name: str
    start_timeout: float = 60.0
    container_port: int | None = None
    data_path: str | None = None  # where the named volume is mounted, if the component keeps data

    def __init__(self, project: DockerProject, port: int | None) -> None:
        self.project = project
        self.topology = project.topology
        self.state = project.state
        self.port = port
        self.host = HOST

    # -- what to run --------------------------------------------------------------------------------------
    @property
    def image(self) -> str:
        return self.project.image(self.name)

    def command(self) -> list[str] | None:
        return None  # the image's own CMD

    def environment(self) -> dict[str, str]:
        return {}

    # -- the Component protocol -----------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.state.log_file(self.name)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def container_name(self) -> str:
        return self.project.container_name(self.name)

    def prepare(self) -> None:
        ensure_image(self.image, self.name)

    def start(self) -> int:
        import docker.errors

        self.prepare()
        self.project.ensure_network()
        self._remove_container()  # an exited one from an earlier run (its logs were kept at stop)
        client = self.project.client
        kwargs: dict[str, Any] = {
            "name": self.container_name,
            "command": self.command(),
            "environment": self.environment(),
            "labels": self.project.labels(self.name),
            "detach": True,
            "init": True,  # a real PID 1: signals reach the server, orphans are reaped
            "network": self.project.network_name,
            "networking_config": {
                self.project.network_name: client.api.create_endpoint_config(aliases=[self.name])
            },
        }
        if self.port is not None and self.container_port is not None:
            kwargs["ports"] = {f"{self.container_port}/tcp": (self.host, self.port)}
        if self.data_path is not None:
            volume = self.project.volume_name(self.name)
            try:
                client.volumes.get(volume)
            except docker.errors.NotFound:
                client.volumes.create(volume, labels=self.project.labels(self.name))
            kwargs["volumes"] = {volume: {"bind": self.data_path, "mode": "rw"}}
        try:
            container = client.containers.run(self.image, **kwargs)
        except docker.errors.APIError as exc:
            self._remove_container()
            text = _short(exc)
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUseError(
                    f"port {self.port} for {self.name} is already in use: {text}",
                    hint="stop what holds it, or use free ports with `--ports auto` (HARNESS_PORTS=auto)",
                ) from exc
            raise ServiceStartError(f"{self.name}: the engine refused to start {self.image}: {text}") from exc
        container.reload()
        return int(container.attrs["State"].get("Pid") or 0)

    def stop(self) -> bool:
        """Stop and remove the container (keeping its last logs in the state dir). True if one was running."""
        import docker.errors

        container = self._container()
        if container is None:
            return False
        was_running = container.status == "running"
        try:
            if was_running:
                container.stop(timeout=STOP_TIMEOUT_SECONDS)
            self._save_logs(container)
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        return was_running

    def pid(self) -> int | None:
        """The engine's pid of the container's init when the container runs (None when it does not)."""
        container = self._container()
        if container is None or container.status != "running":
            return None
        return int(container.attrs["State"].get("Pid") or 0) or None

    def container_id(self) -> str | None:
        container = self._container()
        return container.id if container is not None and container.status == "running" else None

    def exited(self) -> int | None:
        """Exit code once the container has stopped by itself (so `up` stops waiting and shows its logs)."""
        container = self._container()
        if container is None:
            return -1
        if container.status in ("exited", "dead"):
            return int(container.attrs["State"].get("ExitCode", -1))
        return None

    def health(self) -> str | None:
        return self.readiness().check()

    def log_tail(self) -> str:
        container = self._container()
        if container is None:
            from harness.process import tail

            return tail(self.log_file)
        self._save_logs(container)
        text = container.logs(tail=LOG_TAIL_LINES).decode("utf-8", "replace").rstrip()
        return text or f"(container {self.container_name} has logged nothing)"

    def is_fresh(self) -> bool:
        """Whether starting will create the component's data from nothing (so provisioning must run)."""
        return self.data_path is not None and not self.project.volume_exists(self.name)

    @abstractmethod
    def readiness(self) -> Readiness: ...

    # -- internals ------------------------------------------------------------------------------------------
    def _container(self) -> Container | None:
        import docker.errors

        try:
            return self.project.client.containers.get(self.container_name)
        except docker.errors.NotFound:
            return None

    def _remove_container(self) -> None:
        import docker.errors

        container = self._container()
        if container is not None:
            try:
                self._save_logs(container)
                container.remove(force=True)
            except docker.errors.NotFound:
                pass

    def _save_logs(self, container: Container) -> None:
        """Keep the container's log in the state dir (`harness logs <component>` reads it there)."""
        try:
            text = container.logs().decode("utf-8", "replace")
        except Exception:  # the engine may already have removed it
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.write_text(f"--- harness: container {container.name} ({container.short_id})\n{text}")


class PostgresContainer(ContainerService, InfraComponent):
    """`postgres:16`: superuser password from the state dir, data in a named volume."""

    name = "postgres"
    start_timeout = PG_START_TIMEOUT
    container_port = POSTGRES_PORT
    data_path = POSTGRES_DATA

    @property
    def password(self) -> str:
        return self.state.secret("postgres-superuser")

    def environment(self) -> dict[str, str]:
        return {"POSTGRES_PASSWORD": self.password, "POSTGRES_USER": "postgres"}

    def command(self) -> list[str]:
        return ["postgres", "-c", "max_connections=200"]

    def connection(self) -> PostgresConnection:
        return PostgresConnection(
            self.host, self.port or POSTGRES_PORT, "postgres", self.password, "postgres"
        )

    def readiness(self) -> Readiness:
        conn = self.connection()

        def ping() -> str | None:
            # A real login: the official entrypoint's first-run server listens on a socket only, so a TCP
            # answer means the final server is up (and our password is the one the cluster was made with).
            import psycopg

            with psycopg.connect(conn.url, connect_timeout=2) as db:
                db.execute("SELECT 1")
            return None

        return CallableCheck(f"login as postgres on {conn.endpoint}", ping)


class RedisContainer(ContainerService, InfraComponent):
    """`redis:7`: ACL file and AOF in a named volume; the default user is open until provisioning."""

    name = "redis"
    start_timeout = REDIS_START_TIMEOUT
    container_port = REDIS_PORT
    data_path = REDIS_DATA

    def command(self) -> list[str]:
        acl = f"{REDIS_DATA}/users.acl"
        server = [
            "docker-entrypoint.sh", "redis-server",
            "--port", str(REDIS_PORT), "--protected-mode", "no",  # published on 127.0.0.1 only
            "--dir", REDIS_DATA, "--aclfile", acl,
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        ]  # fmt: skip
        # Redis refuses to start with a missing aclfile: the first start writes the open default user that
        # provisioning then locks (ACL SAVE keeps the result in the volume), as the embedded tier does.
        bootstrap = f"test -s {acl} || echo 'user default on nopass sanitize-payload ~* &* +@all' > {acl}"
        return ["sh", "-c", f'{bootstrap}; exec "$@"', "redis", *server]

    def connection(self) -> RedisConnection:
        return RedisConnection(
            self.host, self.port or REDIS_PORT, "default", self.state.secret("redis-default")
        )

    def readiness(self) -> Readiness:
        from harness.backends.embedded import redis_ping

        conn = self.connection()
        return CallableCheck(f"Redis PING on {conn.endpoint}", lambda: redis_ping(conn))


class AwsEmulatorContainer(ContainerService, HarnessEmulator):
    """The harness's AWS emulator from the project image, its state file in a named volume."""

    name = "aws"
    start_timeout = AWS_START_TIMEOUT
    container_port = AWS_PORT
    data_path = AWS_DATA

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def prepare(self) -> None:
        ensure_app_image(self.project.project_dir)

    def command(self) -> list[str]:
        """The embedded tier's emulator command line (so both tiers configure the emulator alike), with the
        container's address, port and state file, and the public URL clients reach it under."""
        from harness.backends.embedded import AwsEmulatorService

        argv = AwsEmulatorService(self.topology, self.state, AWS_PORT).process().argv
        inside = {
            "--host": "0.0.0.0",
            "--port": str(AWS_PORT),
            "--state-file": f"{AWS_DATA}/moto-state.pickle",
        }
        command = ["python"]
        for i, arg in enumerate(argv[1:], start=1):
            command.append(inside.get(argv[i - 1], arg))
        if "--public-url" not in command:
            command += ["--public-url", self.endpoint]  # Cognito's issuer: the URL the app and tests use
        return command

    def environment(self) -> dict[str, str]:
        from harness.emulator.control_guard import CONTROL_FROM_ENV, CONTROL_TOKEN_ENV, CONTROL_TOKEN_SECRET

        return {
            "MOTO_ACCOUNT_ID": self.topology.project.account_id,
            "AWS_DEFAULT_REGION": self.topology.region,
            CONTROL_TOKEN_ENV: self.state.secret(CONTROL_TOKEN_SECRET),
            # the host's requests arrive from the bridge's gateway; the port is published on 127.0.0.1 only
            CONTROL_FROM_ENV: "private",
        }

    def connection(self) -> AwsConnection:
        return AwsConnection(endpoint_url=self.endpoint, region=self.topology.region)

    def readiness(self) -> Readiness:
        return HttpOk(f"{self.endpoint}/_harness/health")


class AppContainer(ContainerService):
    """A long-running app process (ASGI server or Celery worker) from the project image."""

    start_timeout = APP_START_TIMEOUT
    container_port = APP_PORT

    def __init__(
        self,
        name: str,
        service: Service,
        project: DockerProject,
        port: int | None,
        aws_port: int,
        contract: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(project, port)
        self.name = name
        self.service = service
        self.aws_port = aws_port
        self.contract = dict(contract or {})

    @property
    def image(self) -> str:
        return app_image_name(self.project.project_dir)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}" if self.port is not None else f"celery {self.service.app}"

    def prepare(self) -> None:
        ensure_app_image(self.project.project_dir)

    def argv(self) -> list[str]:
        if self.service.kind == "asgi":
            return [
                "python", "-m", "uvicorn", self.service.app,
                "--host", "0.0.0.0", "--port", str(APP_PORT), "--no-access-log",
            ]  # fmt: skip
        return [
            "python", "-m", "celery", "-A", self.service.app, "worker",
            "--loglevel", "INFO", "--concurrency", "2", "--hostname", f"{self.name}@%h",
        ]  # fmt: skip

    def command(self) -> list[str]:
        return launcher_command(self.aws_port, self.argv())

    def environment(self) -> dict[str, str]:
        return {**self.contract, "PYTHONUNBUFFERED": "1"}

    def readiness(self) -> Readiness:
        if self.port is not None and self.service.health_path is not None:
            return HttpOk(f"http://{self.host}:{self.port}{self.service.health_path}")

        return AllOf(
            (
                CallableCheck(f"container {self.container_name} logs 'ready.'", self._worker_logged_ready),
                CallableCheck("celery inspect ping (in the container) answers pong", self._worker_ping),
            )
        )

    def health(self) -> str | None:
        """Quick check for `status`: HTTP health, or the worker container running and ready (no ping)."""
        if self.port is not None and self.service.health_path is not None:
            return self.readiness().check()
        return self._worker_logged_ready()

    def _worker_logged_ready(self) -> str | None:
        container = self._container()
        if container is None or container.status != "running":
            return "the worker container is not running"
        logs = container.logs(tail=400).decode("utf-8", "replace")
        return None if CELERY_READY_MARKER in logs else "the worker has not logged 'ready.' yet"

    def _worker_ping(self) -> str | None:
        """`celery inspect ping` to this worker from inside its container, as the worker's own Redis user."""
        container = self._container()
        if container is None:
            return "the worker container is not running"
        hostname = container.attrs["Config"]["Hostname"]
        ping = [
            "python", "-m", "celery", "-A", self.service.app, "inspect", "ping",
            "--destination", f"{self.name}@{hostname}", "--timeout", "3",
        ]  # fmt: skip
        code, output = container.exec_run(ping)
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else ""
        return (
            None
            if code == 0 and "pong" in text
            else f"`celery inspect ping` got no pong: {text.strip()[-200:]}"
        )


def launcher_command(aws_port: int, argv: Sequence[str]) -> list[str]:
    return ["python", "-c", LOOPBACK_LAUNCHER, str(aws_port), "aws", str(AWS_PORT), *argv]


# --- the tier as the runner sees it --------------------------------------------------------------------------


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
        code, log = self._run_container(label, argv, contract, ports)
        if code != 0:
            from harness.process import tail

            raise ServiceStartError(
                f"{label}: `{shlex.join(argv)}` failed in its container (exit {code}); last lines of "
                f"{log}:\n{_indent(tail(log).splitlines())}",
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


# --- compose/ ------------------------------------------------------------------------------------------------


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
    services["aws"]["environment"] = stores[2].environment()
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
    style = "|" if "\n" in text else None  # the launcher's code reads as code, not as one escaped line
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


# --- helpers -------------------------------------------------------------------------------------------------


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return text.strip().splitlines()[0][:400] if text.strip() else type(exc).__name__


def _indent(lines: Iterable[str], prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `build-image`, `compose`, `provision-compose` (see the module docstring)."""
    from harness.topology import find_topology_file, load_topology

    parser = argparse.ArgumentParser(prog="python -m harness.backends.docker")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-image", help="build the project image unless it is up to date")
    build.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    sub.add_parser("compose", help="print compose/docker-compose.yml as generated from the topology")
    prov = sub.add_parser(
        "provision-compose", help="(inside the compose stack) provision and write env files"
    )
    prov.add_argument("--state-dir", type=Path, required=True)
    prov.add_argument("--postgres", required=True)
    prov.add_argument("--redis", required=True)
    prov.add_argument("--aws", required=True)
    prov.add_argument("--aws-public", required=True)
    args = parser.parse_args(argv)
    topology_file = Path(os.environ.get("HARNESS_TOPOLOGY") or find_topology_file())
    topology = load_topology(topology_file)
    try:
        if args.command == "build-image":
            pairs = dict(a.split("=", 1) for a in args.build_arg)
            name = ensure_app_image(topology_file.resolve().parent, pairs or None, progress=print)
            print(name)
        elif args.command == "compose":
            sys.stdout.write(render_compose(topology))
        else:
            for change in write_compose_contract(
                topology, StateDir(args.state_dir), args.postgres, args.redis, args.aws, args.aws_public
            ):
                print(change)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
