"""`LocalRunner`: brings one topology up on this machine, reports its status, takes it down.

Lifecycle of `up`: resolve ports → start the infrastructure in parallel (skip what is healthy, restart what
died) → provision (skipped when nothing it depends on changed) → migrate + seed (skipped when their inputs
did not change) → start the app processes → print the endpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.backends.app import AppService, app_process_env
from harness.backends.embedded import AwsEmulatorService, PostgresService, RedisService
from harness.connections import AwsConnection, Infrastructure, PostgresConnection, RedisConnection
from harness.envcontract import build_env
from harness.errors import HarnessError, ServiceNotReady, ServiceStartError
from harness.ports import ensure_free, requested_mode, resolve_ports, saved_ports
from harness.process import tail
from harness.provision.outputs import fingerprint, saved_outputs
from harness.readiness import CallableCheck, wait_until_ready
from harness.state import StateDir
from harness.topology import Topology, port_key

if TYPE_CHECKING:
    from harness.backends.docker import DockerTier

APP_STATE_FILE = "app.json"
BACKEND_FILE = "backend.json"
COMMAND_TIMEOUT_SECONDS = 300.0
BACKEND_ENV = "HARNESS_BACKEND"
BACKENDS = ("embedded", "docker")
APP_ON_ENV = "HARNESS_APP_ON"
APP_PLACES = ("container", "host")  # where the Docker tier runs the app (the embedded tier: always the host)


class Component(Protocol):
    name: str
    start_timeout: float

    @property
    def endpoint(self) -> str: ...
    @property
    def log_file(self) -> Path: ...
    def prepare(self) -> None: ...
    def start(self) -> int: ...
    def stop(self) -> bool: ...
    def pid(self) -> int | None: ...
    def health(self) -> str | None: ...
    def readiness(self) -> Any: ...
    def log_tail(self) -> str: ...


class InfraComponent(Component, Protocol):
    def connection(self) -> PostgresConnection | RedisConnection | AwsConnection: ...


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # running | stopped | unhealthy
    pid: int | None  # the process; on the Docker tier the container's main process, as the engine reports it
    endpoint: str
    healthy: bool
    detail: str = ""
    container_id: str | None = None  # Docker tier only

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "container_id": self.container_id,
            "endpoint": self.endpoint,
            "healthy": self.healthy,
            "detail": self.detail,
        }


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    provision_changes: list[str] | None = None  # None = provisioning skipped (nothing changed)
    migrated: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


Progress = Callable[[str, str], None]  # (component, message)


def _no_progress(component: str, message: str) -> None:
    pass


def _explicit_choice(
    cli_value: str | None, env_name: str, allowed: tuple[str, ...], what: str, hint: str
) -> str | None:
    """The flag, else the environment variable; None when neither is set. A value not in `allowed` is refused."""
    explicit = cli_value or os.environ.get(env_name) or None
    if explicit is not None and explicit not in allowed:
        raise HarnessError(f"{what} {explicit!r} is not one of {', '.join(allowed)}", hint=hint)
    return explicit


def requested_backend(cli_value: str | None, state: StateDir) -> str:
    """The flag, else HARNESS_BACKEND, else the backend this state dir last ran on, else the embedded tier."""
    explicit = _explicit_choice(
        cli_value, BACKEND_ENV, BACKENDS, "backend",
        f"--backend docker (or {BACKEND_ENV}=docker) for containers; unset for the embedded tier",
    )  # fmt: skip
    if explicit is not None:
        return explicit
    saved = state.read_json(BACKEND_FILE).get("backend") if state.exists else None
    return str(saved) if saved in BACKENDS else "embedded"


def _tier_name(backend: str, app_on: str) -> str:
    if backend != "docker":
        return f"the {backend} tier"
    return "the docker tier (app " + ("in containers)" if app_on == "container" else "on the host)")


def requested_app_on(cli_value: str | None, state: StateDir, backend: str) -> str:
    """Where the Docker tier runs the app: the flag, else HARNESS_APP_ON, else what this state dir last did,
    else in containers. The embedded tier always runs it on the host."""
    if backend != "docker":
        return "host"
    explicit = _explicit_choice(
        cli_value, APP_ON_ENV, APP_PLACES, "--app-on",
        f"--app-on host (or {APP_ON_ENV}=host) runs the backend and worker here, beside containers",
    )  # fmt: skip
    if explicit is not None:
        return explicit
    saved = state.read_json(BACKEND_FILE) if state.exists else {}
    if saved.get("backend") == "docker" and saved.get("app_on") in APP_PLACES:
        return str(saved["app_on"])
    return "container"


class LocalRunner:
    """Runs a topology on this machine: the embedded tier (processes) or the Docker tier (containers, with the
    app in containers or, with `app_on="host"`, as processes here)."""

    def __init__(
        self,
        topology: Topology,
        state: StateDir,
        ports_mode: str | None = None,
        backend: str | None = None,
        app_on: str | None = None,
    ) -> None:
        self.topology = topology
        self.state = state
        self.ports_mode = requested_mode(ports_mode)
        self.project_dir = topology.source.resolve().parent
        self.backend = requested_backend(backend, state)
        self.app_on = requested_app_on(app_on, state, self.backend)
        self._docker: DockerTier | None = None
        if self.backend == "docker":
            from harness.backends.docker import DockerTier  # the Docker SDK: only when asked for

            self._docker = DockerTier(topology, state, self.project_dir)

    # -- components ---------------------------------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        saved = saved_ports(self.state)
        complete = bool(saved) and all(c in saved for c in self.topology.ports())
        if complete and self.ports_mode != "topology":
            return saved
        return self.topology.ports()

    def infra(self, ports: dict[str, int] | None = None) -> list[InfraComponent]:
        ports = ports or self._ports()
        if self._docker is not None:
            containers: list[InfraComponent] = [*self._docker.infra(ports)]
            return containers
        return [
            PostgresService(self.topology, self.state, ports["postgres"]),
            RedisService(self.topology, self.state, ports["redis"]),
            AwsEmulatorService(self.topology, self.state, ports["aws"]),
        ]

    def apps(self, ports: dict[str, int] | None = None, with_env: bool = True) -> list[Any]:
        """The app's components (`AppService`, or the Docker tier's `AppContainer`), with their env contract."""
        ports = ports or self._ports()
        services: list[Any] = []
        for name, service in self.topology.services.items():
            contract = self.env(name, ports) if with_env else None
            if self._app_in_containers:
                assert self._docker is not None
                services.append(self._docker.app(name, service, ports, contract))
            else:
                services.append(
                    AppService(name, service, self.state, self.project_dir, ports.get(name), contract)
                )
        return services

    @property
    def _app_in_containers(self) -> bool:
        return self._docker is not None and self.app_on == "container"

    def infrastructure(self, ports: dict[str, int] | None = None) -> Infrastructure:
        pg, rd, aws = (component.connection() for component in self.infra(ports))
        assert isinstance(pg, PostgresConnection) and isinstance(rd, RedisConnection)
        assert isinstance(aws, AwsConnection)
        return Infrastructure(pg, rd, aws)

    def api_url(self, ports: dict[str, int] | None = None) -> str:
        ports = ports or self._ports()
        for name, service in self.topology.services.items():
            if service.kind == "asgi":
                return f"http://127.0.0.1:{ports[name]}"
        return ""

    def env(self, component: str = "backend", ports: dict[str, int] | None = None) -> dict[str, str]:
        ports = ports or self._ports()
        values, _ = saved_outputs(self.state)
        if not values:
            raise HarnessError(
                f"the stack in {self.state.root} has not been provisioned yet",
                hint="run `harness up` (or `nox -s up`) first",
            )
        aws = self.infrastructure(ports).aws
        return build_env(self.topology, values, aws, self.api_url(ports), component)

    # -- status -------------------------------------------------------------------------------------------
    def status(self, include_app: bool = True) -> list[ComponentStatus]:
        components: list[Component] = [*self.infra()]
        if include_app:
            components += self.apps(with_env=False)

        def one(component: Component) -> ComponentStatus:
            pid = component.pid()
            if pid is None:
                return ComponentStatus(component.name, "stopped", None, component.endpoint, False)
            container_id = component.container_id() if hasattr(component, "container_id") else None
            reason = component.health()
            state = "running" if reason is None else "unhealthy"
            return ComponentStatus(
                component.name, state, pid, component.endpoint, reason is None, reason or "", container_id
            )

        with ThreadPoolExecutor(max_workers=len(components)) as pool:
            return list(pool.map(one, components))

    # -- up -----------------------------------------------------------------------------------------------
    def up(self, *, with_app: bool = True, progress: Progress = _no_progress) -> UpReport:
        started_at = time.monotonic()
        report = UpReport()
        self.state.ensure()
        with self.state.lock():
            self._record_backend()
            everything: list[Component] = [*self.infra(), *self.apps(with_env=False)]
            running_now = frozenset(c.name for c in everything if c.pid())
            ports = resolve_ports(self.topology.ports(), self.state, self.ports_mode, running_now)
            infra = self.infra(ports)
            infrastructure = self.infrastructure(ports)
            fresh = {s.name: self._is_fresh(s) for s in infra}
            values_before, saved_fp = saved_outputs(self.state)
            in_sync = not any(fresh.values()) and saved_fp == fingerprint(self.topology, infrastructure)
            run_app = with_app and bool(self.topology.services)

            if in_sync and run_app and not self._migrate_needed(force=False):
                # Warm start: nothing to provision or migrate, so each app process starts as soon as the
                # stores it needs (Postgres, Redis) answer, while the emulator is still restoring its state.
                apps = self.apps(ports)
                after = {app.name: ("postgres", "redis") for app in apps}
                self._start_all([*infra, *apps], ports, report, progress, after=after)
            else:
                self._start_all(infra, ports, report, progress)
            report.timings["infrastructure"] = time.monotonic() - started_at

            aws_restored = "aws" in report.already_running or self._aws_restored(infrastructure.aws)
            if not (in_sync and aws_restored):
                progress("provision", "applying the topology")
                t0 = time.monotonic()
                from harness.provision.apply import provision  # boto3 & co: imported only when needed

                result = provision(self.topology, infrastructure, self.state)
                report.provision_changes = result.changes
                report.timings["provision"] = time.monotonic() - t0
                progress(
                    "provision", f"{len(result.changes)} change(s) in {report.timings['provision']:.2f}s"
                )
                self._snapshot_aws(infrastructure.aws)
                if result.values != values_before:
                    # The env contract changed (e.g. the emulator's state was lost): app processes that
                    # started with the old one must restart.
                    for app in self.apps(ports, with_env=False):
                        if app.stop():
                            progress(app.name, "restarting with the new env contract")

            if run_app:
                t0 = time.monotonic()
                self._migrate_seed_and_start(ports, report, force=fresh["postgres"], progress=progress)
                report.timings["app"] = time.monotonic() - t0
        report.seconds = time.monotonic() - started_at
        return report

    def _record_backend(self) -> None:
        """Remember the backend (and where the Docker tier runs the app) in the state dir — status, env and down
        use it — and refuse to mix two on one stack."""
        saved_file = self.state.read_json(BACKEND_FILE)
        saved, saved_app_on = saved_file.get("backend"), saved_file.get("app_on", "container")
        if saved == self.backend and (self.backend != "docker" or saved_app_on == self.app_on):
            return
        if saved in BACKENDS:
            try:
                other = LocalRunner(
                    self.topology, self.state, self.ports_mode, backend=str(saved), app_on=str(saved_app_on)
                )
                running = [c.name for c in [*other.infra(), *other.apps(with_env=False)] if c.pid()]
                if saved == self.backend:  # only the app moves: the infrastructure may stay up
                    running = [name for name in running if name in self.topology.services]
            except HarnessError:
                running = []  # e.g. no Docker engine answers: then nothing of ours runs on it either
            if running:
                where = _tier_name(str(saved), str(saved_app_on))
                here = _tier_name(self.backend, self.app_on)
                raise HarnessError(
                    f"the stack in {self.state.root} runs on {where} — {', '.join(running)} up; "
                    f"it cannot run on {here} at the same time",
                    hint=f"`harness down` first (data is kept), then `harness up` again "
                    f"(--backend {self.backend}{' --app-on ' + self.app_on if self.backend == 'docker' else ''}),"
                    " or use another state dir (--state-dir)",
                )
        record = {"backend": self.backend}
        if self.backend == "docker":
            record["app_on"] = self.app_on
        self.state.write_json(BACKEND_FILE, record)
        if self._docker is not None:
            self._docker.prune_orphans()

    def _is_fresh(self, service: Component) -> bool:
        """Whether starting `service` will create its data from nothing (so provisioning must run)."""
        if hasattr(service, "is_fresh"):  # a container: whether its volume exists yet
            return bool(service.is_fresh())
        if isinstance(service, PostgresService):
            return not (service.data_dir / "PG_VERSION").exists()
        if isinstance(service, RedisService):
            return not service.acl_file.exists()
        if isinstance(service, AwsEmulatorService):
            return not service.state_file.exists()
        return False

    def _aws_restored(self, aws: AwsConnection) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{aws.url}/_harness/health", timeout=3) as resp:
                data = json.loads(resp.read())
        except (OSError, ValueError):
            return False
        return bool(data.get("restored"))

    def _snapshot_aws(self, aws: AwsConnection) -> None:
        """Make the emulator write its state now, so a crash right after `up` loses nothing provisioned."""
        import urllib.request

        request = urllib.request.Request(f"{aws.url}/_harness/snapshot", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except OSError:
            pass  # the emulator also snapshots on its own shortly after each change

    def _start_all(
        self,
        components: Sequence[Component],
        ports: dict[str, int],
        report: UpReport,
        progress: Progress,
        after: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Bring components up in parallel; a component named in `after` starts once those are healthy."""
        errors: list[HarnessError] = []
        healthy = {c.name: threading.Event() for c in components}
        failed = threading.Event()

        def bring_up(component: Component) -> None:
            for dependency in (after or {}).get(component.name, ()):
                while not healthy[dependency].wait(0.05):
                    if failed.is_set():
                        return
            t0 = time.monotonic()
            if component.pid() is not None:
                quick = CallableCheck(f"{component.name} health", component.health)
                reason = wait_until_ready(quick, timeout=min(5.0, component.start_timeout))
                if reason is None:
                    report.already_running.append(component.name)
                    progress(component.name, "already running")
                    return
                progress(component.name, f"unhealthy ({reason}); restarting")
                component.stop()
                report.restarted.append(component.name)
            if component.name in ports:
                ensure_free(component.name, ports[component.name], port_key(component.name))
            progress(component.name, "starting")
            component.prepare()
            component.start()
            exited: Callable[[], int | None] | None = None
            if hasattr(component, "exited"):  # a container
                exited = component.exited
            elif hasattr(component, "process"):
                exited = component.process().exited

            def gave_up() -> str | None:
                code = exited() if exited is not None else None
                return None if code is None else f"the process exited (code {code})"

            reason = wait_until_ready(component.readiness(), timeout=component.start_timeout, gave_up=gave_up)
            if reason is not None:
                raise ServiceNotReady(
                    f"{component.name} did not become healthy: {reason}\n"
                    f"  checked: {component.readiness().description}\n"
                    f"  log ({component.log_file}), last lines:\n{_indent(component.log_tail())}",
                    hint=f"`harness logs {component.name}` shows the whole log",
                )
            seconds = time.monotonic() - t0
            report.timings[component.name] = seconds
            if component.name not in report.restarted:
                report.started.append(component.name)
            progress(component.name, f"ready in {seconds:.2f}s")

        def guarded(component: Component) -> None:
            try:
                bring_up(component)
                healthy[component.name].set()
            except HarnessError as exc:
                errors.append(exc)
                failed.set()

        with ThreadPoolExecutor(max_workers=max(1, len(components))) as pool:
            list(pool.map(guarded, components))
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise ServiceStartError("\n".join(str(e) for e in errors))

    def _migrate_needed(self, *, force: bool) -> bool:
        previous = self.state.read_json(APP_STATE_FILE)
        return force or previous.get("inputs") != self._inputs_digest() or not previous.get("ok")

    def _run_app_command(
        self,
        label: str,
        argv: Sequence[str],
        contract: Mapping[str, str],
        ports: dict[str, int],
        progress: Progress,
    ) -> None:
        """Run one of the app's one-off commands (migrate, seed) with the env contract; log to its own file.
        A failure marks the app state as not done, so the next `up` runs the steps again."""
        try:
            self.run_one_off(label, argv, contract, ports, progress)
        except ServiceStartError:
            self.state.write_json(APP_STATE_FILE, {"inputs": self._inputs_digest(), "ok": False})
            raise

    def run_one_off(
        self,
        label: str,
        argv: Sequence[str],
        contract: Mapping[str, str],
        ports: dict[str, int] | None = None,
        progress: Progress = _no_progress,
    ) -> None:
        """Run an app command to completion with `contract` as its environment (a process here, or a one-off
        container on the Docker tier), logging to `<state>/logs/<label>.log`; `ServiceStartError` if it fails."""
        progress(label, " ".join(argv))
        if self._app_in_containers:  # a one-off container from the app image, as ECS runs them
            assert self._docker is not None
            t0 = time.monotonic()
            code, log = self._docker.run_one_off(label, argv, contract, ports or self._ports())
            if code != 0:
                raise ServiceStartError(
                    f"{label}: `{shlex.join(argv)}` failed in its container (exit {code}); last lines of "
                    f"{log}:\n{_indent(tail(log))}",
                    hint=f"fix the app's {label} step, then run `harness up` again",
                )
            progress(label, f"done in {time.monotonic() - t0:.2f}s")
            return
        env = app_process_env(contract)
        command = [sys.executable if argv[0] in ("python", "python3") else argv[0], *argv[1:]]
        log = self.state.log_file(label)
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with open(log, "ab") as fh:
            fh.write(f"\n--- harness: {shlex.join(argv)}\n".encode())
            fh.flush()
            try:
                result = subprocess.run(
                    command,
                    cwd=self.project_dir,
                    env=dict(env),
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=COMMAND_TIMEOUT_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ServiceStartError(f"{label}: `{shlex.join(argv)}` could not run: {exc}") from exc
        if result.returncode != 0:
            raise ServiceStartError(
                f"{label}: `{shlex.join(argv)}` failed (exit {result.returncode}); last lines of {log}:\n"
                f"{_indent(tail(log))}",
                hint=f"fix the app's {label} step, then run `harness up` again",
            )
        progress(label, f"done in {time.monotonic() - t0:.2f}s")

    def _migrate_seed_and_start(
        self, ports: dict[str, int], report: UpReport, *, force: bool, progress: Progress
    ) -> None:
        """Migrate (when its inputs changed), then seed beside the app processes' start-up: the seed only
        needs the schema, and the processes do not need the seed to start."""
        app = self.topology.app
        pending = [a for a in self.apps(ports) if a.name not in report.started + report.already_running]
        if not self._migrate_needed(force=force):
            if pending:
                self._start_all(pending, ports, report, progress)
            return
        digest = self._inputs_digest()
        contract = self.env("backend", ports)
        if app.migrate:
            self._run_app_command("migrate", app.migrate, contract, ports, progress)
        with ThreadPoolExecutor(max_workers=2) as pool:
            seeding = (
                pool.submit(self._run_app_command, "seed", app.seed, contract, ports, progress)
                if app.seed
                else None
            )
            starting = pool.submit(self._start_all, pending, ports, report, progress) if pending else None
            for future in (seeding, starting):
                if future is not None:
                    future.result()
        self.state.write_json(APP_STATE_FILE, {"inputs": digest, "ok": True})
        report.migrated = True

    def inputs_digest(self) -> str:
        """A digest of the app's one-off commands and of every file under `[app] inputs`."""
        return self._inputs_digest()

    def _inputs_digest(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([self.topology.app.migrate, self.topology.app.seed]).encode())
        for rel in self.topology.app.inputs:
            root = self.project_dir / rel
            paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
            for path in paths:
                if path.is_file() and "__pycache__" not in path.parts:
                    h.update(str(path.relative_to(self.project_dir)).encode())
                    h.update(path.read_bytes())
        return h.hexdigest()

    # -- down / reset -------------------------------------------------------------------------------------
    def down(self, progress: Progress = _no_progress) -> list[str]:
        """Stop every process this state dir started (app first, then infrastructure). Returns their names."""
        stopped: list[str] = []
        if not self.state.exists:
            return stopped  # nothing was ever started from here (and do not create the dir)
        with self.state.lock():
            for group in (self.apps(with_env=False), self.infra()):
                components: list[Component] = list(group)

                def stop(component: Component) -> None:
                    if component.stop():
                        stopped.append(component.name)
                        progress(component.name, "stopped")

                with ThreadPoolExecutor(max_workers=max(1, len(components))) as pool:
                    list(pool.map(stop, components))
            if self._docker is not None:
                self._docker.after_down()  # one-off leftovers and the network; the volumes stay
        return stopped

    def reset(self, progress: Progress = _no_progress) -> None:
        self.down(progress)
        if self._docker is not None:
            for volume in self._docker.wipe():
                progress("volume", f"removed {volume}")
        self.state.wipe()
        progress("state", f"removed {self.state.root}")

    # -- connections for tools and tests -------------------------------------------------------------------
    def admin_connections(self) -> tuple[PostgresConnection, RedisConnection, AwsConnection]:
        infra = self.infrastructure()
        return infra.postgres, infra.redis, infra.aws


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
