"""`harness restart [COMPONENT ...]`: stop and start exactly the named components (default: every app process),
then wait until each is healthy again. Works on every tier: it only uses the `Component` contract (`stop()`,
then `LocalRunner.start_components`), so a container is restarted the way a process is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError

Progress = Callable[[str, str], None]


def _no_progress(component: str, message: str) -> None:
    return None


@dataclass
class RestartReport:
    components: list[str]
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def restart(runner: Any, names: Sequence[str] = (), *, progress: Progress = _no_progress) -> RestartReport:
    """Restart `names` (default: the app's processes); infrastructure restarts before app processes."""
    started = time.monotonic()
    with runner.state.lock():
        ports = runner._ports()
        infra = {c.name: c for c in runner.infra(ports)}
        unhealthy = [name for name, c in infra.items() if c.managed and c.health() is not None]
        down = [name for name in unhealthy if name not in names]
        if down:  # (before the env contract: a stack that never ran has none)
            raise HarnessError(
                f"the stack is not up ({', '.join(down)} not healthy; state: {runner.state.root})",
                hint="run `harness up` first (`harness status` shows each component)",
            )
        runner.env("backend")  # refuses with a hint when the stack was never provisioned
        apps = {c.name: c for c in runner.apps(ports)}
        everything = {**infra, **apps}
        wanted = list(dict.fromkeys(names)) or [name for name, c in apps.items() if c.managed]
        unknown = [name for name in wanted if name not in everything]
        if unknown:
            raise HarnessError(
                f"no component {', '.join(map(repr, unknown))} in this stack",
                hint=f"components: {', '.join(everything)} (none named: every app process)",
            )
        external = [name for name in wanted if not everything[name].managed]
        if external:
            raise HarnessError(
                f"{', '.join(external)} is an endpoint the harness attaches to: it neither starts nor stops it",
                hint="restart it where it runs; `harness status` shows what it is",
            )
        chosen = [everything[name] for name in wanted]

        def stop(component: Any) -> None:
            if component.stop():
                progress(component.name, "stopped")

        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            list(pool.map(stop, chosen))
        infra_chosen = [name for name in wanted if name in infra]
        after = {name: infra_chosen for name in wanted if name in apps}
        report = runner.start_components(chosen, ports, progress=progress, after=after)
    return RestartReport(wanted, time.monotonic() - started, dict(report.timings))
