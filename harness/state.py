"""The state dir: data dirs, logs, pidfiles, resolved ports, generated secrets — one place per stack.

Default `.harness/` next to the topology file; `HARNESS_STATE_DIR` (or `--state-dir`) overrides, which is how
tests and parallel stacks keep apart. `reset` removes the whole dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import StateError

STATE_DIR_ENV = "HARNESS_STATE_DIR"
DEFAULT_STATE_DIR_NAME = ".harness"
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def default_state_dir(topology_file: Path) -> Path:
    if explicit := os.environ.get(STATE_DIR_ENV):
        return Path(explicit).resolve()
    return (topology_file.parent / DEFAULT_STATE_DIR_NAME).resolve()


def generate_password(length: int = 32) -> str:
    """A random password of letters and digits (safe in URLs and config files without quoting)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


class StateDir:
    """Paths and small JSON documents of one stack's state dir."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    # -- layout -------------------------------------------------------------------------------------------
    def data_dir(self, component: str) -> Path:
        return self.root / "data" / component

    def log_file(self, component: str) -> Path:
        return self.root / "logs" / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.root / "run" / f"{component}.pid"

    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def exists(self) -> bool:
        return self.root.is_dir()

    def ensure(self) -> None:
        try:
            for sub in ("data", "logs", "run"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self.root.chmod(0o755)
        except OSError as exc:
            raise StateError(
                f"cannot create the state dir {self.root}: {exc.strerror}",
                hint=f"choose a writable place with {STATE_DIR_ENV}=/path or --state-dir",
            ) from exc

    # -- documents ----------------------------------------------------------------------------------------
    def read_json(self, name: str) -> dict[str, Any]:
        path = self.root / name
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StateError(
                f"{path} is unreadable or not JSON ({exc})",
                hint="`harness reset` wipes the state dir (all local data)",
            ) from exc
        if not isinstance(data, dict):
            raise StateError(f"{path}: expected a JSON object", hint="`harness reset` wipes the state dir")
        return data

    def write_json(self, name: str, data: dict[str, Any], *, private: bool = False) -> None:
        """Write atomically; `private` files (secrets) are created 0600 and never world-readable."""
        self.ensure()
        path = self.root / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)

    def secret(self, name: str, length: int = 32) -> str:
        """A generated secret value, created on first use and kept in `secrets.json` (mode 0600)."""
        values = self.read_json("secrets.json")
        if name not in values:
            values[name] = generate_password(length)
            self.write_json("secrets.json", values, private=True)
        return str(values[name])

    # -- exclusivity --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise lifecycle commands on one state dir (two `up`s at once would race on ports and data)."""
        self.ensure()
        path = self.root / "run" / "harness.lock"
        with open(path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another harness command holds it: wait for it rather than failing.
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def wipe(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
