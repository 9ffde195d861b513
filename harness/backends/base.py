"""The backend contract: what `LocalRunner` asks of a tier and of every component a tier runs.

A **tier** (`Tier`) runs one topology's stack on this machine: the embedded tier as processes
(`harness.backends.embedded`), the Docker tier as containers (`harness.backends.docker`). The runner only ever
talks to this interface; it names no concrete tier. A tier provides

- `stores(ports)` and `emulator(ports)`: the infrastructure components (Postgres, Redis, the harness's AWS
  emulator). `infra(ports)` is those three, in that order, except that an `[aws] endpoint` (or
  `--aws-endpoint`) replaces the emulator by `ExternalAws`, an emulator someone else runs;
- `app(name, service, ports, contract)`: one long-running app component (default: a process on this host);
- `extra_components(ports)`: further components `up` starts after the app, `down` stops and `status` shows
  (default: `console(ports)`, the local web console as a process on this host, harness/webconsole);
- `run_one_off(...)`: an app command run to completion (migrate, seed; default: a process on this host);
- `after_down()`, `wipe()`, `prune_orphans()`: cleanup hooks (default: nothing to clean).

A **component** (`Component`) is one thing that runs: `prepare/start/stop/pid/health/readiness/log_tail`, plus
`is_fresh()` (starting it creates its data from nothing, so provisioning must run), `exited()` (its exit code
once it died by itself, so `up` stops waiting) and `container_id()` (None off containers). `managed = False`
marks a component the harness neither starts nor stops (`up` checks it is there; `down` leaves it alone).
Restarting one component is `stop()` then `LocalRunner.start_components([component])`.

**The registry** (`TIERS`) names each tier once, with where its class lives (imported only when chosen, so the
CLI and the embedded tier never import the Docker SDK) and where it may run the app. `--backend`'s choices,
`HARNESS_BACKEND` and the state dir's remembered backend all come from it. Adding a tier is a class that
subclasses `Tier` plus one `TierInfo` line here (see docs/architecture.md).
"""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import HarnessError, ServiceStartError

if TYPE_CHECKING:
    from harness.connections import AwsConnection, PostgresConnection, RedisConnection
    from harness.readiness import Readiness
    from harness.state import StateDir
    from harness.topology import Service, Topology

Progress = Callable[[str, str], None]  # (component, message)
COMMAND_TIMEOUT_SECONDS = 300.0


def no_progress(component: str, message: str) -> None:
    pass


# --- components --------------------------------------------------------------------------------------------


class Component(ABC):
    """One thing a tier runs: a process, a container, or (unmanaged) an endpoint someone else runs."""

    name: str
    start_timeout: float = 30.0
    managed: ClassVar[bool] = True  # False: not started/stopped by the harness (`up` only checks it answers)

    @property
    @abstractmethod
    def endpoint(self) -> str: ...

    @property
    @abstractmethod
    def log_file(self) -> Path: ...

    def prepare(self) -> None:  # noqa: B027 (optional hook: most components need no preparation)
        """Create data dirs, config or images before a start (idempotent)."""

    @abstractmethod
    def start(self) -> int:
        """Start it; returns its pid (on containers: the engine's pid of the container's init)."""

    @abstractmethod
    def stop(self) -> bool:
        """Stop it; True when it was running."""

    @abstractmethod
    def pid(self) -> int | None:
        """Its pid while it runs, else None."""

    @abstractmethod
    def readiness(self) -> Readiness:
        """What `up` waits for after starting it."""

    def health(self) -> str | None:
        """Quick check for `status`: None when healthy, else what failed."""
        return self.readiness().check()

    def log_tail(self) -> str:
        from harness.process import tail

        return tail(self.log_file)

    def is_fresh(self) -> bool:
        """Whether starting it will create its data from nothing (so provisioning must run)."""
        return False

    def exited(self) -> int | None:
        """Its exit code once it stopped by itself (so `up` stops waiting and shows its log), else None."""
        return None

    def container_id(self) -> str | None:
        """The container's id while it runs (container tiers), else None."""
        return None

    def note(self) -> str:
        """A line `status` shows beside it when healthy (e.g. what an unmanaged component is)."""
        return ""

    def reloads(self) -> bool:
        """Whether it runs under live reload (restarts itself when a watched source file is saved)."""
        return False

    def stale_reason(self) -> str | None:
        """Why the running component no longer runs the current inputs (code, dependencies, env contract),
        so `up` must restart it; None when it is current or cannot tell."""
        return None


class InfraComponent(Component):
    """Postgres, Redis or the AWS endpoint: a component provisioning connects to."""

    @abstractmethod
    def connection(self) -> PostgresConnection | RedisConnection | AwsConnection: ...


class AwsComponent(InfraComponent):
    """The AWS endpoint of the stack: the harness's own emulator, or one already running (`ExternalAws`)."""

    name = "aws"
    source: ClassVar[str] = "harness"  # "harness": harness.emulator (its fidelity checks run); "external"

    @abstractmethod
    def connection(self) -> AwsConnection: ...

    def restored(self) -> bool:
        """Whether the endpoint still holds what was provisioned (so `up` may skip provisioning)."""
        return False

    def snapshot(self) -> None:
        """Make the endpoint persist its state now (a crash right after `up` then loses nothing)."""

    def describe(self) -> str:
        return "the harness's AWS emulator (harness.emulator: moto + fidelity checks)"


class HarnessEmulator(AwsComponent):
    """Shared by both tiers' copies of `harness.emulator`: its `/_harness/` control endpoints."""

    def _health(self) -> dict[str, Any]:
        import urllib.request  # here, not at import: every `harness` command would pay for it

        try:
            with urllib.request.urlopen(f"{self.connection().url}/_harness/health", timeout=3) as resp:
                data = json.loads(resp.read())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def restored(self) -> bool:
        return bool(self._health().get("restored"))

    def note(self) -> str:
        """What `status` says beside a healthy emulator: how its state came back, when not simply."""
        persistence = self._health().get("persistence") or {}
        problem = persistence.get("restore_problem")
        if previous := persistence.get("restored_from_previous"):
            return (
                f"restored from the previous snapshot {previous}: the state file was unreadable ({problem}); "
                f"moved aside to {persistence.get('moved_aside')}"
            )
        if problem:
            return f"started empty: the state file was unreadable ({problem}); moved aside to {persistence.get('moved_aside')}"
        if error := persistence.get("last_error"):
            return f"last snapshot failed: {error}"
        return ""

    def snapshot(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.connection().url}/_harness/snapshot", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except OSError:
            pass  # the emulator also snapshots on its own shortly after each change


# --- tiers -------------------------------------------------------------------------------------------------


class Tier(ABC):
    """One way of running the stack here. Subclasses implement `stores` and `emulator`; the rest has defaults
    that run the app as processes on this host."""

    name: ClassVar[str]
    reload: bool = False  # live reload of app processes on this host (set by the runner)

    def __init__(
        self,
        topology: Topology,
        state: StateDir,
        project_dir: Path,
        app_on: str = "host",
        aws_endpoint: str | None = None,
    ) -> None:
        self.topology = topology
        self.state = state
        self.project_dir = project_dir
        self.app_on = app_on
        self.aws_endpoint = aws_endpoint

    # -- components --------------------------------------------------------------------------------------
    @abstractmethod
    def stores(self, ports: Mapping[str, int]) -> list[InfraComponent]:
        """Postgres and Redis, in that order."""

    @abstractmethod
    def emulator(self, ports: Mapping[str, int]) -> AwsComponent:
        """This tier's copy of the harness's AWS emulator."""

    def aws(self, ports: Mapping[str, int]) -> AwsComponent:
        """The stack's AWS endpoint: the external one when the topology or `--aws-endpoint` names one."""
        if self.aws_endpoint:
            from harness.backends.external import ExternalAws

            return ExternalAws(self.aws_endpoint, self.topology, self.state)
        return self.emulator(ports)

    def infra(self, ports: Mapping[str, int]) -> list[InfraComponent]:
        """Postgres, Redis and the AWS endpoint, in that order."""
        return [*self.stores(ports), self.aws(ports)]

    def app(
        self, name: str, service: Service, ports: Mapping[str, int], contract: Mapping[str, str] | None
    ) -> Component:
        """One long-running app process (`[services.NAME]`) with `contract` as its environment."""
        from harness.backends.app import AppService

        watch = [self.project_dir / d for d in self.topology.watch_dirs()]
        exclude = [self.project_dir / d for d in self.topology.app.watch_exclude]
        return AppService(
            name, service, self.state, self.project_dir, ports.get(name), contract,
            reload=self.reload, watch=watch, exclude=exclude,
        )  # fmt: skip

    def extra_components(self, ports: Mapping[str, int]) -> list[Component]:
        """Components beyond the topology's services that `up` starts beside the infrastructure (they need
        neither the stores nor the env contract to start), `down` stops first and `status` lists (by default:
        the web console, when `[console]` is enabled)."""
        console = self.console(ports)
        return [console] if console is not None else []

    def console(self, ports: Mapping[str, int]) -> Component | None:
        """The local web console (`[console]`); default: a process on this host beside the stack, which it
        reads through the same endpoints as the CLI (harness/webconsole). None when disabled."""
        if not self.topology.console.enabled or "console" not in ports:
            return None
        from harness.webconsole.component import ConsoleService

        return ConsoleService(self.topology, self.state, ports["console"])

    # -- one-off commands --------------------------------------------------------------------------------
    def run_one_off(
        self,
        label: str,
        argv: Sequence[str],
        contract: Mapping[str, str],
        ports: Mapping[str, int],
        progress: Progress = no_progress,
    ) -> None:
        """Run an app command to completion with `contract` as its environment, logging to
        `<state>/logs/<label>.log`; `ServiceStartError` when it fails. Default: a process on this host."""
        from harness.backends.app import app_process_env
        from harness.process import log_size, tail

        progress(label, " ".join(argv))
        env = app_process_env(contract)
        command = [sys.executable if argv[0] in ("python", "python3") else argv[0], *argv[1:]]
        log = self.state.log_file(label)
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        since = log_size(log)  # the log is appended to: quote this run's lines only
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
                f"{indent(tail(log, since=since))}",
                hint=f"fix the app's {label} step, then run `harness up` again",
            )
        progress(label, f"done in {time.monotonic() - t0:.2f}s")

    # -- cleanup hooks -----------------------------------------------------------------------------------
    def after_down(self) -> list[str]:
        """After `down` stopped every component: remove what is left besides data. Returns what went."""
        return []

    def wipe(self) -> list[str]:
        """On `reset`, before the state dir goes: remove the data kept outside it. Returns what went."""
        return []

    def prune_orphans(self) -> list[str]:
        """Remove resources of state dirs that no longer exist. Returns what went."""
        return []

    # -- naming ------------------------------------------------------------------------------------------
    def describe(self) -> str:
        """How messages name this tier (and where it runs the app)."""
        return describe_tier(self.name, self.app_on)

    def record(self) -> dict[str, str]:
        """What the state dir remembers of the choice (`backend.json`)."""
        record = {"backend": self.name}
        if len(tier_info(self.name).app_places) > 1:
            record["app_on"] = self.app_on
        if self.aws_endpoint:
            record["aws_endpoint"] = self.aws_endpoint
        return record


# --- the registry ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierInfo:
    """One tier in the registry: its name, the class (`module:Class`, imported only when chosen), where it
    may run the app (the first is the default) and a line for `--help`."""

    name: str
    spec: str
    app_places: tuple[str, ...]
    summary: str

    def load(self) -> type[Tier]:
        module, _, attr = self.spec.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Tier)):
            raise HarnessError(f"tier {self.name!r}: {self.spec} is not a Tier subclass")
        return cls


TIERS: dict[str, TierInfo] = {
    info.name: info
    for info in (
        TierInfo("embedded", "harness.backends.embedded:EmbeddedTier", ("host",), "processes (the default)"),
        TierInfo("docker", "harness.backends.docker.tier:DockerTier", ("container", "host"), "containers"),
    )
}
DEFAULT_TIER = "embedded"


def tier_names() -> tuple[str, ...]:
    return tuple(TIERS)


def app_places() -> tuple[str, ...]:
    """Every place some tier can run the app (the `--app-on` choices)."""
    return tuple(dict.fromkeys(place for info in TIERS.values() for place in info.app_places))


def tier_info(name: str) -> TierInfo:
    try:
        return TIERS[name]
    except KeyError:
        raise HarnessError(
            f"backend {name!r} is not one of {', '.join(TIERS)}", hint="pick one with --backend"
        ) from None


def describe_tier(name: str, app_on: str) -> str:
    places = tier_info(name).app_places if name in TIERS else ("host",)
    if len(places) < 2:
        return f"the {name} tier"
    return f"the {name} tier (app " + ("on the host)" if app_on == "host" else f"in {app_on}s)")


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
