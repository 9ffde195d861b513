"""The app's own processes (backend + worker), started on the host from the topology's service entries.

The harness knows the app only through `[services.*]` (import path, port, health path, Celery app) and
`[app]` (migrate and seed commands); the processes get the env contract and nothing else of ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.backends.base import Component
from harness.connections import HttpConnection
from harness.heartbeat import HEARTBEAT_ENV, heartbeat_problem
from harness.process import ManagedProcess, tail
from harness.readiness import CallableCheck, HttpOk, Readiness
from harness.state import StateDir
from harness.topology import Service

HOST = "127.0.0.1"
APP_START_TIMEOUT = 60.0


def app_process_env(contract: Mapping[str, str]) -> dict[str, str]:
    """The environment of an app process: ours minus any AWS/harness settings, plus the contract."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HARNESS_"))}
    env.update(contract)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class AppService(Component):
    """One long-running app process: an ASGI server (uvicorn) or a Celery worker."""

    start_timeout = APP_START_TIMEOUT

    def __init__(
        self,
        name: str,
        service: Service,
        state: StateDir,
        project_dir: Path,
        port: int | None,
        contract: Mapping[str, str] | None = None,
        *,
        reload: bool = False,
        watch: Sequence[Path] = (),
        exclude: Sequence[Path] = (),
    ) -> None:
        self.reload = reload
        self.watch = [p for p in watch if p.is_dir()]
        self.exclude = list(exclude)
        self.name = name
        self.service = service
        self.state = state
        self.project_dir = project_dir
        self.port = port
        self.host = HOST
        self.contract = dict(contract or {})

    @property
    def log_file(self) -> Path:
        return self.state.log_file(self.name)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}" if self.port is not None else f"celery {self.service.app}"

    def connection(self) -> HttpConnection | None:
        if self.port is None or self.service.health_path is None:
            return None
        return HttpConnection(self.host, self.port, self.service.health_path)

    def argv(self) -> list[str]:
        """The command; under live reload, run by the reload supervisor (harness/devloop/reload.py)."""
        command = self.command()
        if not self.reload_on:
            return command
        wrapper = [sys.executable, "-m", "harness.devloop.reload", "--name", self.name]
        for path in self.watch:
            wrapper += ["--watch", str(path)]
        for path in self.exclude:
            wrapper += ["--exclude", str(path)]
        return [*wrapper, "--", *command]

    @property
    def reload_on(self) -> bool:
        """Whether it starts under live reload (asked for, and there is something to watch)."""
        return self.reload and bool(self.watch)

    def reloads(self) -> bool:
        """Whether the running process is under live reload (what it started with), else whether it would be."""
        if self.pid() is not None:
            record = self.state.read_json(self._record_name)
            if isinstance(record.get("reload"), bool):
                return bool(record["reload"])
            return False  # started before the harness recorded it: without reload
        return self.reload_on

    def command(self) -> list[str]:
        if self.service.kind == "asgi":
            return [
                sys.executable, "-m", "uvicorn", self.service.app,
                "--host", self.host, "--port", str(self.port), "--no-access-log",
            ]  # fmt: skip
        # One worker per stack: mingle (a 1 s wait for neighbours at every start) and gossip have nobody to talk to.
        return [
            sys.executable, "-m", "celery", "-A", self.service.app, "worker",
            "--loglevel", "INFO", *self.service.worker_pool_args(), "--hostname", f"{self.name}@%h",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip

    @property
    def heartbeat_file(self) -> Path:
        """Where the worker writes its heartbeat (harness/heartbeat.py)."""
        return self.state.run_dir() / f"{self.name}.heartbeat"

    def process_env(self) -> dict[str, str]:
        env = app_process_env(self.contract)
        if self.service.kind == "celery":
            env[HEARTBEAT_ENV] = str(self.heartbeat_file)
        return env

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            self.name,
            self.argv(),
            log_file=self.log_file,
            pid_file=self.state.pid_file(self.name),
            env=self.process_env(),
            cwd=self.project_dir,
        )

    def prepare(self) -> None:
        pass

    def start(self) -> int:
        self.heartbeat_file.unlink(missing_ok=True)  # a previous run's beat must not vouch for this one
        pid = self.process().start()
        self.state.write_json(self._record_name, self.inputs())
        return pid

    # -- what it started with (so `up` restarts it when that changed) -------------------------------------
    @property
    def _record_name(self) -> str:
        return f"run/{self.name}.inputs.json"

    def inputs(self) -> dict[str, Any]:
        """Digests of what the running process was started with."""

        def digest(data: bytes) -> str:
            return hashlib.sha256(data).hexdigest()[:16]

        code = hashlib.sha256()
        for root in self.watch:
            for path in sorted(root.rglob("*.py")):
                if "__pycache__" in path.parts or any(path.is_relative_to(e) for e in self.exclude):
                    continue
                code.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        pyproject = self.project_dir / "pyproject.toml"
        return {
            "reload": self.reload_on,
            "command": digest(json.dumps(self.command()).encode()),
            "contract": digest(json.dumps(sorted(self.contract.items())).encode()),
            "pyproject": digest(pyproject.read_bytes() if pyproject.exists() else b""),
            "code": code.hexdigest()[:16],
        }

    def stale_reason(self) -> str | None:
        if self.pid() is None:
            return None
        record = self.state.read_json(self._record_name)
        if not record:
            return "it was started before the harness recorded what it runs"
        now = self.inputs()
        if record.get("reload") != now["reload"]:
            return "live reload is now " + ("on" if now["reload"] else "off")
        if record.get("pyproject") != now["pyproject"]:
            return "pyproject.toml changed since it started"
        if record.get("contract") != now["contract"]:
            return "the env contract changed since it started"
        if record.get("command") != now["command"]:
            return "its command in the topology changed since it started"
        if not now["reload"] and record.get("code") != now["code"]:
            where = ", ".join(str(p.relative_to(self.project_dir)) for p in self.watch) or "the app"
            return f"the code under {where} changed since it started (live reload is off)"
        return None

    def _reload_failure(self) -> str | None:
        if not self.reloads():
            return None
        from harness.devloop.reload import failure_in_log

        failure = failure_in_log(tail(self.log_file, 200))
        return f"failing: {failure} (`harness logs {self.name}`)" if failure else None

    def stop(self) -> bool:
        return self.process().stop()

    def pid(self) -> int | None:
        proc = self.process().running()
        return proc.pid if proc else None

    def exited(self) -> int | None:
        code = self.process().exited()
        if code is None and self._reload_failure() is not None:
            return 1  # the supervisor waits for the next save; `up` need not wait for it
        return code

    def _worker_heartbeat(self) -> str | None:
        pid = self.pid()
        if pid is None:
            return "the worker process is not running"
        if self.reloads():  # the worker is the reload supervisor's child (a new one after each save)
            import psutil

            try:
                children = psutil.Process(pid).children()
            except psutil.NoSuchProcess:
                children = []
            if not children:
                return "the worker is not running (its reload supervisor waits for the next save)"
            pid = children[0].pid
        return heartbeat_problem(self.heartbeat_file, pid=pid)

    def readiness(self) -> Readiness:
        """What `up` waits for after starting it: HTTP health, or the worker's own heartbeat (written once it is
        connected to its broker and consuming; no `celery inspect ping`, which costs a second interpreter)."""
        conn = self.connection()
        if conn is not None:
            return HttpOk(conn.url + conn.health_path)
        return CallableCheck(f"{self.heartbeat_file.name} says ready", self._worker_heartbeat)

    def health(self) -> str | None:
        """Quick check for `status`: HTTP health, or the worker's own heartbeat (no ping round trip).
        Under live reload, a process that exited after a save (an import error) is reported as failing."""
        failure = self._reload_failure()
        if failure is not None:
            return failure
        conn = self.connection()
        if conn is not None:
            return HttpOk(conn.url + conn.health_path).check()
        return self._worker_heartbeat()

    def log_tail(self) -> str:
        return tail(self.log_file)
