"""The emulator's state file: a readable JSON header plus the pickled state, always replaced atomically.

Layout: `MAGIC`, the header length (8 bytes, big endian), the header (UTF-8 JSON), the pickled state. The
header says which format and moto version wrote the file, so an incompatible file is recognised before
anything is unpickled.

Each write keeps the file it replaces as `<file>.prev` (hard link, then rename: some good file is always in
place), so a file that is torn or corrupted after it was written — a disk or copy gone wrong — still leaves
the previous snapshot to start from (`EmulatorRuntime.restore`).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import StateError

MAGIC = b"harness-aws-emulator-state\n"
_LENGTH = struct.Struct(">Q")
_MAX_HEADER_BYTES = 64 * 1024
FILE_MODE = 0o600  # the state holds secrets (Secrets Manager values, Cognito keys): owner only


class UnreadableStateError(StateError):
    """The state file exists but is corrupt or was written by an incompatible format or moto version."""


@dataclass(frozen=True)
class StateFileContents:
    """A state file as read: its header and the still-pickled state."""

    header: dict[str, Any]
    body: bytes


class StateFile:
    """One state file on disk. Writes are atomic: a reader sees the old file or the new one, never a mix."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def previous(self) -> StateFile:
        """The snapshot before the current one (`<file>.prev`)."""
        return StateFile(self.path.with_name(f"{self.path.name}.prev"))

    def exists(self) -> bool:
        """Whether the file is there."""
        return self.path.exists()

    def read(self) -> StateFileContents | None:
        """The header and body, or None if there is no file. Raises `UnreadableStateError` on a bad file."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(
                f"AWS emulator: cannot read the state file {self.path}: {exc.strerror}",
                hint="check the permissions of the state dir",
            ) from exc
        if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + _LENGTH.size:
            raise UnreadableStateError("it is not an AWS emulator state file (wrong magic bytes)")
        offset = len(MAGIC)
        (header_length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if header_length > _MAX_HEADER_BYTES or offset + header_length > len(raw):
            raise UnreadableStateError("its header is truncated")
        try:
            header = json.loads(raw[offset : offset + header_length])
        except ValueError as exc:
            raise UnreadableStateError(f"its header is not JSON ({exc})") from exc
        if not isinstance(header, dict):
            raise UnreadableStateError("its header is not a JSON object")
        return StateFileContents(header, raw[offset + header_length :])

    def write(self, header: Mapping[str, Any], body: bytes) -> int:
        """Atomically replace the file (temp file in the same dir, fsync, rename, fsync dir); returns bytes."""
        encoded = json.dumps(dict(header), sort_keys=True).encode()
        data = b"".join((MAGIC, _LENGTH.pack(len(encoded)), encoded, body))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._keep_previous()
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateError(
                f"AWS emulator: cannot write the state file {self.path}: {exc.strerror or exc}",
                hint="check free disk space and the permissions of the state dir",
            ) from exc
        self._fsync_dir()
        return len(data)

    def _keep_previous(self) -> None:
        if not self.path.exists():
            return
        link = self.path.with_name(f".{self.path.name}.prev-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.link(self.path, link)
        os.replace(link, self.previous.path)

    def move_aside(self) -> Path:
        """Rename the file to `<file>.corrupt-<UTC timestamp>` (never overwriting) and return the new path."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        counter = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        os.rename(self.path, target)
        return target

    def delete(self) -> bool:
        """Remove the file; False if there was none."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StateError(
                f"AWS emulator: cannot delete the state file {self.path}: {exc.strerror or exc}",
                hint="check the permissions of the state dir",
            ) from exc
        self._fsync_dir()
        return True

    def _fsync_dir(self) -> None:
        # the rename/unlink is only durable once the directory entry is on disk
        with contextlib.suppress(OSError):
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
