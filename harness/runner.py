"""`LocalRunner`: brings one topology up on this machine, reports its status, takes it down.

Lifecycle of `up`: resolve ports → start the infrastructure and the console in parallel (skip what is healthy, restart what
died) → provision (skipped when nothing it depends on changed) → migrate + seed (skipped when their inputs
did not change) → start the app processes → print the endpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.backends.base import (
    AwsComponent,
    Component,
    InfraComponent,
    Progress,
    Tier,
    app_places,
    describe_tier,
    indent,
    no_progress,
    tier_info,
    tier_names,
)
from harness.connections import AwsConnection, Infrastructure, PostgresConnection, RedisConnection
from harness.devloop.reload import RELOAD_FILE, requested_reload
from harness.envcontract import build_env
from harness.errors import HarnessError, ServiceNotReady, ServiceStartError
from harness.ports import ensure_free, requested_mode, resolve_ports, saved_ports
from harness.provision.outputs import fingerprint, saved_outputs
from harness.readiness import CallableCheck, wait_until_ready
from harness.state import StateDir
from harness.tier_choice import (
    BACKEND_FILE,
    requested_app_on,
    requested_aws_endpoint,
    requested_backend,
)
from harness.topology import Topology, port_key

APP_STATE_FILE = "app.json"
# A starting component is polled at most this far apart: what `up` and `restart` add to its own start is at most
# this (a poll is a cheap check: a refused connection, a heartbeat file, pg_isready).
START_POLL_MAX_SECONDS = 0.1
BACKENDS = tier_names()  # as registered at import (the runner asks harness.backends.base.TIERS each time)
APP_PLACES = app_places()
_no_progress = no_progress
_indent = indent

__all__ = ["Component", "ComponentStatus", "InfraComponent", "LocalRunner", "Progress", "UpReport"]


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # running | stopped | unhealthy
    pid: int | None  # the process; on the Docker tier the container's main process, as the engine reports it
    endpoint: str
    healthy: bool
    detail: str = ""
    container_id: str | None = None  # container tiers only
    managed: bool = True  # False: an endpoint the harness attaches to but neither starts nor stops
    reload: bool | None = None  # app components: whether live reload runs it

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "container_id": self.container_id,
            "endpoint": self.endpoint,
            "healthy": self.healthy,
            "detail": self.detail,
            "managed": self.managed,
        } | ({} if self.reload is None else {"reload": self.reload})


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    provision_changes: list[str] | None = None  # None = provisioning skipped (nothing changed)
    migrated: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)  # app processes restarted: why


class LocalRunner:
    """Runs a topology on this machine through one tier of the registry (`harness.backends.base.TIERS`)."""

    def __init__(
        self,
        topology: Topology,
        state: StateDir,
        ports_mode: str | None = None,
        backend: str | None = None,
        app_on: str | None = None,
        aws_endpoint: str | None = None,
        reload: bool | None = None,
    ) -> None:
        self.topology = topology
        self.state = state
        self.ports_mode = requested_mode(ports_mode)
        self.project_dir = topology.source.resolve().parent
        self.backend = requested_backend(backend, state)
        self.app_on = requested_app_on(app_on, state, self.backend)
        self.aws_endpoint = requested_aws_endpoint(aws_endpoint, state, topology)
        self.tier: Tier = tier_info(self.backend).load()(
            topology, state, self.project_dir, app_on=self.app_on, aws_endpoint=self.aws_endpoint
        )
        self.reload = requested_reload(reload, state)
        self.tier.reload = self.reload

    # -- components ---------------------------------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        saved = saved_ports(self.state)
        complete = bool(saved) and all(c in saved for c in self.topology.ports())
        if complete and self.ports_mode != "topology":
            return saved
        return self.topology.ports()

    def infra(self, ports: dict[str, int] | None = None) -> list[InfraComponent]:
        """Postgres, Redis and the AWS endpoint, in that order."""
        return self.tier.infra(ports or self._ports())

    def aws(self, ports: dict[str, int] | None = None) -> AwsComponent:
        """The stack's AWS endpoint (the harness's emulator, or an external one: see `.source`)."""
        return self.tier.aws(ports or self._ports())

    def apps(self, ports: dict[str, int] | None = None, with_env: bool = True) -> list[Component]:
        """The app's components (one per `[services.*]`, then the tier's extras), with their env contract."""
        ports = ports or self._ports()
        services: list[Component] = []
        for name, service in self.topology.services.items():
            contract = self.env(name, ports) if with_env else None
            services.append(self.tier.app(name, service, ports, contract))
        return services + self.tier.extra_components(ports)

    def components(self, ports: dict[str, int] | None = None) -> dict[str, Component]:
        """Every component by name (infrastructure, then app; without the env contract)."""
        ports = ports or self._ports()
        return {c.name: c for c in [*self.infra(ports), *self.apps(ports, with_env=False)]}

    def infrastructure(self, ports: dict[str, int] | None = None) -> Infrastructure:
        by_name = {c.name: c.connection() for c in self.infra(ports)}
        pg, rd, aws = by_name["postgres"], by_name["redis"], by_name["aws"]
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

        app_names = set(self.topology.services)

        def one(component: Component) -> ComponentStatus:
            row = status_of(component)
            if component.name in app_names:
                return dataclasses.replace(row, reload=component.reloads())
            return row

        def status_of(component: Component) -> ComponentStatus:
            if not component.managed:  # attached, not run by us: healthy when it answers
                reason = component.health()
                state = "running" if reason is None else "unhealthy"
                detail = f"external: {reason}" if reason else component.note()
                return ComponentStatus(
                    component.name, state, None, component.endpoint, reason is None, detail, managed=False
                )
            pid = component.pid()
            if pid is None:
                return ComponentStatus(component.name, "stopped", None, component.endpoint, False)
            reason = component.health()
            state = "running" if reason is None else "unhealthy"
            return ComponentStatus(
                component.name,
                state,
                pid,
                component.endpoint,
                reason is None,
                reason or component.note(),
                component.container_id(),
            )

        with ThreadPoolExecutor(max_workers=len(components)) as pool:
            return list(pool.map(one, components))

    # -- up -----------------------------------------------------------------------------------------------
    def up(self, *, with_app: bool = True, progress: Progress = no_progress) -> UpReport:
        started_at = time.monotonic()
        report = UpReport()
        self.state.ensure()
        with self.state.lock():
            self._record_backend()
            self.state.write_json(RELOAD_FILE, {"reload": self.reload})
            everything = self.components()
            running_now = frozenset(name for name, c in everything.items() if c.managed and c.pid())
            ports = resolve_ports(self.topology.ports(), self.state, self.ports_mode, running_now)
            infra = self.infra(ports)
            aws = self.aws(ports)
            infrastructure = self.infrastructure(ports)
            fresh = {s.name: s.is_fresh() for s in infra}
            values_before, saved_fp = saved_outputs(self.state)
            in_sync = not any(fresh.values()) and saved_fp == fingerprint(self.topology, infrastructure)
            run_app = with_app and bool(self.topology.services)
            if run_app and values_before:
                self._stop_stale_apps(ports, report, progress)

            # The tier's extras (the console) need neither the stores nor the env contract: they start at once, on
            # the side, instead of competing for the CPU with the app processes at the end (nothing waits for them
            # but the end of `up`).
            extras = self.tier.extra_components(ports) if run_app else []
            side = ThreadPoolExecutor(max_workers=1)
            extras_up = (
                side.submit(self.start_components, extras, ports, report, progress) if extras else None
            )
            try:
                self._up_in_order(
                    ports, report, progress, infra=infra, aws=aws, infrastructure=infrastructure,
                    fresh=fresh, values_before=values_before, in_sync=in_sync, run_app=run_app,
                    started_at=started_at,
                )  # fmt: skip
            finally:
                side.shutdown(wait=True)
            if extras_up is not None:
                extras_up.result()  # its error, if it failed
        report.seconds = time.monotonic() - started_at
        return report

    def _up_in_order(
        self,
        ports: dict[str, int],
        report: UpReport,
        progress: Progress,
        *,
        infra: list[InfraComponent],
        aws: AwsComponent,
        infrastructure: Infrastructure,
        fresh: dict[str, bool],
        values_before: dict[str, str],
        in_sync: bool,
        run_app: bool,
        started_at: float,
    ) -> None:
        """`up` after the ports: the infrastructure, provisioning, migrate + seed and the app processes."""
        if in_sync and run_app and not self._migrate_needed(force=False):
            # Warm start: nothing to provision or migrate, so each app process starts as soon as the
            # stores it needs (Postgres, Redis) answer, while the emulator is still restoring its state.
            apps = [app for app in self.apps(ports) if app.name in self.topology.services]
            after = {app.name: ("postgres", "redis") for app in apps}
            self.start_components([*infra, *apps], ports, report, progress, after=after)
        else:
            self.start_components(infra, ports, report, progress)
        report.timings["infrastructure"] = time.monotonic() - started_at

        aws_restored = (aws.managed and "aws" in report.already_running) or aws.restored()
        if not (in_sync and aws_restored):
            progress("provision", "applying the topology")
            t0 = time.monotonic()
            from harness.provision.apply import provision  # boto3 & co: imported only when needed

            result = provision(self.topology, infrastructure, self.state)
            report.provision_changes = result.changes
            report.timings["provision"] = time.monotonic() - t0
            progress("provision", f"{len(result.changes)} change(s) in {report.timings['provision']:.2f}s")
            aws.snapshot()
            if result.values != values_before:
                # The env contract changed (e.g. the emulator's state was lost): app processes that
                # started with the old one must restart.
                for app in self.apps(ports, with_env=False):
                    if app.name in self.topology.services and app.stop():
                        progress(app.name, "restarting with the new env contract")

        if run_app:
            t0 = time.monotonic()
            self._migrate_seed_and_start(ports, report, force=fresh["postgres"], progress=progress)
            report.timings["app"] = time.monotonic() - t0

    def _stop_stale_apps(self, ports: dict[str, int], report: UpReport, progress: Progress) -> None:
        """Stop app processes whose code, dependencies or env contract changed since they started, saying why."""
        for app in self.apps(ports):
            reason = app.stale_reason() if app.managed else None
            if reason is not None and app.stop():
                report.stale[app.name] = reason
                progress(app.name, f"restarting: {reason}")

    def _record_backend(self) -> None:
        """Remember the tier (where it runs the app, which AWS endpoint) in the state dir — status, env and
        down use it — and refuse to run one component two ways at once on one stack."""
        saved = self.state.read_json(BACKEND_FILE)
        record = self.tier.record()
        if saved == record:
            return
        if saved.get("backend") in tier_names():
            try:
                other = LocalRunner(
                    self.topology,
                    self.state,
                    self.ports_mode,
                    backend=str(saved["backend"]),
                    app_on=str(saved.get("app_on") or "") or None,
                    aws_endpoint=str(saved.get("aws_endpoint") or ""),
                )
                mine = self.components()
                running = [
                    name
                    for name, c in other.components().items()
                    if c.managed and type(c) is not type(mine.get(name)) and c.pid()
                ]
            except HarnessError:
                running = []  # e.g. no Docker engine answers: then nothing of ours runs on it either
            if running:
                where, here = other.describe(), self.describe()
                flags = f"--backend {self.backend}"
                if len(tier_info(self.backend).app_places) > 1:
                    flags += f" --app-on {self.app_on}"
                raise HarnessError(
                    f"the stack in {self.state.root} runs on {where} — {', '.join(running)} up; "
                    f"it cannot run on {here} at the same time",
                    hint=f"`harness down` first (data is kept), then `harness up` again ({flags}),"
                    " or use another state dir (--state-dir)",
                )
        self.state.write_json(BACKEND_FILE, record)
        self.tier.prune_orphans()

    def describe(self) -> str:
        """The tier, where it runs the app, and the AWS endpoint when it is not the harness's."""
        text = describe_tier(self.backend, self.app_on)
        return text + (f" with AWS at {self.aws_endpoint}" if self.aws_endpoint else "")

    def start_components(
        self,
        components: Sequence[Component],
        ports: dict[str, int] | None = None,
        report: UpReport | None = None,
        progress: Progress = no_progress,
        after: Mapping[str, Sequence[str]] | None = None,
    ) -> UpReport:
        """Bring components up in parallel (a healthy one is left alone, an unhealthy one restarted); one named
        in `after` starts once those are healthy. An unmanaged component is only checked."""
        ports = self._ports() if ports is None else ports
        report = UpReport() if report is None else report
        errors: list[HarnessError] = []
        healthy = {c.name: threading.Event() for c in components}
        failed = threading.Event()

        def bring_up(component: Component) -> None:
            for dependency in (after or {}).get(component.name, ()):
                while not healthy[dependency].wait(0.05):
                    if failed.is_set():
                        return
            t0 = time.monotonic()
            if not component.managed or component.pid() is not None:
                quick = CallableCheck(f"{component.name} health", component.health)
                reason = wait_until_ready(quick, timeout=min(5.0, component.start_timeout))
                if reason is None:
                    report.already_running.append(component.name)
                    progress(component.name, "already running" if component.managed else "attached")
                    return
                if not component.managed:
                    component.start()  # raises: the harness does not start what it only attaches to
                progress(component.name, f"unhealthy ({reason}); restarting")
                component.stop()
                report.restarted.append(component.name)
            if component.name in ports:
                ensure_free(component.name, ports[component.name], port_key(component.name))
            progress(component.name, "starting")
            component.prepare()
            component.start()

            def gave_up() -> str | None:
                code = component.exited()
                return None if code is None else f"the process exited (code {code})"

            reason = wait_until_ready(
                component.readiness(),
                timeout=component.start_timeout,
                max_interval=START_POLL_MAX_SECONDS,
                gave_up=gave_up,
            )
            if reason is not None:
                raise ServiceNotReady(
                    f"{component.name} did not become healthy: {reason}\n"
                    f"  checked: {component.readiness().description}\n"
                    f"  log ({component.log_file}), last lines:\n{indent(component.log_tail())}",
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
        return report

    _start_all = start_components

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
        progress: Progress = no_progress,
    ) -> None:
        """Run an app command to completion with `contract` as its environment (a process here, or a one-off
        container on the Docker tier), logging to `<state>/logs/<label>.log`; `ServiceStartError` if it fails.
        A seed command's seed file is checked first (harness/seedfile.py): `SeedError`, and nothing applied."""
        if label.startswith("seed"):
            from harness.seedfile import check_seed_file, seed_files_of

            for seed_file in seed_files_of(argv, self.project_dir):
                check_seed_file(seed_file)
        self.tier.run_one_off(label, argv, contract, ports or self._ports(), progress)

    def _migrate_seed_and_start(
        self, ports: dict[str, int], report: UpReport, *, force: bool, progress: Progress
    ) -> None:
        """Migrate (when its inputs changed), then seed beside the app processes' start-up: the seed only
        needs the schema, and the processes do not need the seed to start."""
        app = self.topology.app
        pending = [a for a in self.apps(ports) if a.name not in report.started + report.already_running]
        if not self._migrate_needed(force=force):
            if pending:
                self.start_components(pending, ports, report, progress)
            return
        digest = self._inputs_digest()
        contract = self.env("backend", ports)
        if app.migrate:
            self._run_app_command("migrate", app.migrate, contract, ports, progress)
            self.apply_privileges(ports)
        with ThreadPoolExecutor(max_workers=2) as pool:
            seeding = (
                pool.submit(self._run_app_command, "seed", app.seed, contract, ports, progress)
                if app.seed
                else None
            )
            starting = (
                pool.submit(self.start_components, pending, ports, report, progress) if pending else None
            )
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
    def down(self, progress: Progress = no_progress) -> list[str]:
        """Stop every component this state dir started (app first, then infrastructure). Returns their names.
        Unmanaged components (an external AWS endpoint) are left running."""
        stopped: list[str] = []
        if not self.state.exists:
            return stopped  # nothing was ever started from here (and do not create the dir)
        with self.state.lock():
            for group in (self.apps(with_env=False), self.infra()):
                components = [c for c in group if c.managed]

                def stop(component: Component) -> None:
                    if component.stop():
                        stopped.append(component.name)
                        progress(component.name, "stopped")

                with ThreadPoolExecutor(max_workers=max(1, len(components))) as pool:
                    list(pool.map(stop, components))
            self.tier.after_down()  # e.g. one-off leftovers and the network; the data stays
        return stopped

    def reset(self, progress: Progress = no_progress) -> None:
        self.down(progress)
        for volume in self.tier.wipe():
            progress("volume", f"removed {volume}")
        self.state.wipe()
        progress("state", f"removed {self.state.root}")

    # -- connections for tools and tests -------------------------------------------------------------------
    def apply_privileges(self, ports: dict[str, int] | None = None) -> list[str]:
        """After a migration: every runtime role's privileges are its allow-list again (new tables included)."""
        from harness.provision.postgres import provision_database_grants

        return provision_database_grants(self.topology, self.infrastructure(ports).postgres)

    def admin_connections(self) -> tuple[PostgresConnection, RedisConnection, AwsConnection]:
        infra = self.infrastructure()
        return infra.postgres, infra.redis, infra.aws
