"""What a load run was asked to do, checked before anything starts (guard rails included)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

MAX_USERS = 200  # default caps: raise them with --max-users / --max-duration, never silently
MAX_DURATION_S = 30 * 60
_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str) -> float:
    """`60s`, `90`, `2m`, `1m30s`, `1h` -> seconds."""
    match = _DURATION.match(text)
    if not text.strip() or match is None or not any(match.groups()):
        raise HarnessError(
            f"--duration {text!r}: expected a duration such as 30s, 2m or 1m30s",
            hint="every load run stops by itself; give it how long to run",
        )
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def parse_think(text: str) -> tuple[float, float]:
    """Think time between iterations: `0`, `1.5` or a range `0.5-2` (seconds)."""
    try:
        low, _, high = text.partition("-")
        pair = (float(low), float(high or low))
    except ValueError:
        raise HarnessError(f"--think {text!r}: expected seconds (1.5) or a range (0.5-2)") from None
    if pair[0] < 0 or pair[1] < pair[0]:
        raise HarnessError(f"--think {text!r}: expected 0 <= low <= high")
    return pair


def parse_weights(values: tuple[str, ...], files: list[Path]) -> dict[str, int]:
    """`--weight orders=3`: by the file's stem; every file not named weighs 1."""
    stems = {f.stem for f in files}
    weights = dict.fromkeys(sorted(stems), 1)
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not number.strip().isdigit():
            raise HarnessError(f"--weight {value!r}: expected NAME=N, e.g. --weight orders=3")
        if name not in stems:
            raise HarnessError(
                f"--weight {value!r}: no scenario file named {name!r} in this run",
                hint=f"the files are: {', '.join(sorted(stems))}",
            )
        weights[name] = int(number)
    if not any(weights.values()):
        raise HarnessError("every scenario has weight 0: nothing would run")
    return weights


@dataclass
class LoadOptions:
    """Everything the run's processes (the master and each worker) need; sent to workers as JSON."""

    files: list[str]
    users: int
    spawn_rate: float
    duration_s: float
    target: str = "local"
    state_dir: str | None = None
    topology_file: str | None = None
    deployed_outputs: str | None = None
    weights: dict[str, int] = field(default_factory=dict)
    think: tuple[float, float] = (0.0, 0.0)
    sample: float = 0.1
    workers: int = 0
    master_host: str = "127.0.0.1"
    master_port: int = 5557
    ui: bool = False
    ui_port: int = 8089
    json_file: str | None = None
    html_file: str | None = None
    max_failure_rate: float | None = None
    max_p95_ms: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadOptions:
        data: dict[str, Any] = json.loads(text)
        data["think"] = tuple(data["think"])
        return cls(**data)


def check_limits(
    options: LoadOptions, *, max_users: int = MAX_USERS, max_duration_s: float = MAX_DURATION_S
) -> None:
    """The caps every run has unless raised on purpose, and a stop time it always has."""
    if options.users < 1:
        raise HarnessError(f"--users {options.users}: expected at least 1")
    if options.spawn_rate <= 0:
        raise HarnessError(f"--spawn-rate {options.spawn_rate}: expected a positive rate (users per second)")
    if options.users > max_users:
        raise HarnessError(
            f"--users {options.users} is above the cap of {max_users}",
            hint="raise it on purpose with --max-users N (and check the target can take it)",
        )
    if options.duration_s <= 0:
        raise HarnessError("--duration must be positive: every load run stops by itself")
    if options.duration_s > max_duration_s:
        raise HarnessError(
            f"--duration {options.duration_s:g}s is above the cap of {max_duration_s:g}s",
            hint="raise it on purpose with --max-duration",
        )
    if not 0.0 <= options.sample <= 1.0:
        raise HarnessError(f"--sample {options.sample}: expected a fraction between 0 and 1")
    if options.workers < 0:
        raise HarnessError(f"--workers {options.workers}: expected 0 (in this process) or more")
