"""The app's own processes (backend + worker), started on the host from the topology's service entries.

The harness knows the app only through `[services.*]` (import path, port, health path, Celery app) and
`[app]` (migrate and seed commands); the processes get the env contract and nothing else of ours.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from harness.backends.base import Component
from harness.connections import HttpConnection
from harness.heartbeat import HEARTBEAT_ENV, heartbeat_problem
from harness.process import ManagedProcess, tail
from harness.readiness import AllOf, CallableCheck, HttpOk, Readiness
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
    ) -> None:
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
        if self.service.kind == "asgi":
            return [
                sys.executable, "-m", "uvicorn", self.service.app,
                "--host", self.host, "--port", str(self.port), "--no-access-log",
            ]  # fmt: skip
        return [
            sys.executable, "-m", "celery", "-A", self.service.app, "worker",
            "--loglevel", "INFO", *self.service.worker_pool_args(), "--hostname", f"{self.name}@%h",
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
        return self.process().start()

    def stop(self) -> bool:
        return self.process().stop()

    def pid(self) -> int | None:
        proc = self.process().running()
        return proc.pid if proc else None

    def exited(self) -> int | None:
        return self.process().exited()

    def _worker_heartbeat(self) -> str | None:
        pid = self.pid()
        if pid is None:
            return "the worker process is not running"
        return heartbeat_problem(self.heartbeat_file, pid=pid)

    def _worker_ping(self) -> str | None:
        """`celery inspect ping` to this worker, over the broker as the worker's own Redis user."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                self.service.app,
                "inspect",
                "ping",
                "--destination",
                f"{self.name}@{socket.gethostname()}",
                "--timeout",
                "3",
            ],
            env=self.process_env(),
            cwd=self.project_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode == 0 and "pong" in result.stdout:
            return None
        return f"`celery inspect ping` got no pong: {(result.stdout + result.stderr).strip()[-200:]}"

    def readiness(self) -> Readiness:
        """What `up` waits for after starting it: HTTP health, or the worker's heartbeat and a ping."""
        conn = self.connection()
        if conn is not None:
            return HttpOk(conn.url + conn.health_path)
        return AllOf(
            (
                CallableCheck(f"{self.heartbeat_file.name} says ready", self._worker_heartbeat),
                CallableCheck("celery inspect ping answers pong", self._worker_ping),
            )
        )

    def health(self) -> str | None:
        """Quick check for `status`: HTTP health, or the worker's own heartbeat (no ping round trip)."""
        conn = self.connection()
        if conn is not None:
            return HttpOk(conn.url + conn.health_path).check()
        return self._worker_heartbeat()

    def log_tail(self) -> str:
        return tail(self.log_file)
