"""`ConsoleService`: the web console as a component of the local stack (a uvicorn process on this host).

Both tiers run it the same way (`Tier.console`): a process beside the stack that reads it through the same
`LocalRunner` the CLI uses, bound to 127.0.0.1 only. It is never part of a deployment (harness/deploy reads
`[services.*]`, and the console is not one).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from harness.backends.base import Component
from harness.process import ManagedProcess
from harness.readiness import HttpOk, Readiness
from harness.state import StateDir
from harness.topology import Topology

NAME = "console"
HOST = "127.0.0.1"
HEALTH_PATH = "/api/health"
TOKEN_FILE = "console-token"  # in the state dir's run/: the per-stack token POST actions carry
START_TIMEOUT = 30.0


def console_token(state: StateDir) -> str:
    """The stack's console token (created on first use, mode 0600; a new stack gets a new one)."""
    path = state.run_dir() / TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


class ConsoleService(Component):
    """The console process: `python -m harness.webconsole` under uvicorn, on 127.0.0.1:`port`."""

    name = NAME
    start_timeout = START_TIMEOUT

    def __init__(self, topology: Topology, state: StateDir, port: int) -> None:
        self.topology = topology
        self.state = state
        self.port = port

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.state.log_file(self.name)

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "harness.webconsole",
            "--topology", str(self.topology.source.resolve()), "--env", self.topology.env,
            "--state-dir", str(self.state.root), "--port", str(self.port),
        ]  # fmt: skip

    def process(self) -> ManagedProcess:
        # Our own settings stay out: the console finds the tier, ports and endpoints in the state dir.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "AWS_"))}
        env.setdefault("PYTHONUNBUFFERED", "1")
        return ManagedProcess(
            self.name,
            self.argv(),
            log_file=self.log_file,
            pid_file=self.state.pid_file(self.name),
            env=env,
            cwd=self.topology.source.resolve().parent,
        )

    def prepare(self) -> None:
        console_token(self.state)

    def start(self) -> int:
        return self.process().start()

    def stop(self) -> bool:
        return self.process().stop()

    def pid(self) -> int | None:
        proc = self.process().running()
        return proc.pid if proc else None

    def exited(self) -> int | None:
        return self.process().exited()

    def readiness(self) -> Readiness:
        return HttpOk(self.endpoint + HEALTH_PATH)

    def note(self) -> str:
        return "the local web console (`harness console`)"
