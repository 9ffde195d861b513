"""The Docker tier's components: each one container, with the embedded tier's shape."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.base import Component, HarnessEmulator, InfraComponent
from harness.backends.docker.engine import (
    LOG_TAIL_LINES,
    app_image_name,
    ensure_app_image,
    ensure_image,
    short_error,
)
from harness.backends.docker.project import HOST, DockerProject
from harness.connections import AwsConnection, PostgresConnection, RedisConnection
from harness.errors import PortInUseError, ServiceStartError
from harness.heartbeat import HEARTBEAT_ENV, heartbeat_text_problem
from harness.readiness import AllOf, CallableCheck, HttpOk, Readiness
from harness.topology import Service

if TYPE_CHECKING:
    from docker.models.containers import Container

POSTGRES_PORT = 5432
REDIS_PORT = 6379
AWS_PORT = 4566
APP_PORT = 8000
POSTGRES_DATA = "/var/lib/postgresql/data"
REDIS_DATA = "/data"
AWS_DATA = "/var/lib/aws"

STOP_TIMEOUT_SECONDS = 10
PG_START_TIMEOUT = 60.0
REDIS_START_TIMEOUT = 30.0
AWS_START_TIMEOUT = 90.0
APP_START_TIMEOUT = 90.0
CONTAINER_HEARTBEAT_FILE = "/tmp/worker.heartbeat"  # the worker's WORKER_HEARTBEAT_FILE inside its container
LAUNCHER = ("python", "-m", "harness.backends.docker.launcher")


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
            text = short_error(exc)
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

    def stale_reason(self) -> str | None:
        """No live reload in the container: when the app's inputs changed, the image it runs is not the one
        they make now (its tag is their digest), so `up` restarts it on a freshly built image."""
        container = self._container()
        if container is None or container.status != "running":
            return None
        running = str(container.attrs.get("Config", {}).get("Image", ""))
        if running and running != self.image:
            return f"the app's code or dependencies changed since it started (image {running} → {self.image})"
        return None

    def argv(self) -> list[str]:
        if self.service.kind == "asgi":
            return [
                "python", "-m", "uvicorn", self.service.app,
                "--host", "0.0.0.0", "--port", str(APP_PORT), "--no-access-log",
            ]  # fmt: skip
        return [
            "python", "-m", "celery", "-A", self.service.app, "worker",
            "--loglevel", "INFO", *self.service.worker_pool_args(), "--hostname", f"{self.name}@%h",
        ]  # fmt: skip

    def command(self) -> list[str]:
        return launcher_command(self.aws_port, self.argv())

    def environment(self) -> dict[str, str]:
        env = {**self.contract, "PYTHONUNBUFFERED": "1"}
        if self.service.kind == "celery":
            env[HEARTBEAT_ENV] = CONTAINER_HEARTBEAT_FILE
        return env

    def readiness(self) -> Readiness:
        if self.port is not None and self.service.health_path is not None:
            return HttpOk(f"http://{self.host}:{self.port}{self.service.health_path}")

        return AllOf(
            (
                CallableCheck(
                    f"{CONTAINER_HEARTBEAT_FILE} in the container says ready", self._worker_heartbeat
                ),
                CallableCheck("celery inspect ping (in the container) answers pong", self._worker_ping),
            )
        )

    def health(self) -> str | None:
        """Quick check for `status`: HTTP health, or the worker's own heartbeat in its container (no ping)."""
        if self.port is not None and self.service.health_path is not None:
            return self.readiness().check()
        return self._worker_heartbeat()

    def _worker_heartbeat(self) -> str | None:
        container = self._container()
        if container is None or container.status != "running":
            return "the worker container is not running"
        code, output = container.exec_run(["cat", CONTAINER_HEARTBEAT_FILE])
        if code != 0:
            return f"no heartbeat yet ({CONTAINER_HEARTBEAT_FILE} in {self.container_name})"
        where = f"{self.container_name}:{CONTAINER_HEARTBEAT_FILE}"
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else ""
        return heartbeat_text_problem(text, where)

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
    """`argv` behind the loopback launcher (harness/backends/docker/launcher.py): inside the container,
    127.0.0.1:<aws_port> reaches the emulator on the network, so AWS_ENDPOINT_URL is the host's URL there too."""
    return [*LAUNCHER, str(aws_port), "aws", str(AWS_PORT), *argv]
