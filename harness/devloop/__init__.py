"""The developer's loop on a running stack: mail, tenant and database resets, snapshots, frontend env.

Each module is plain functions over a `LocalRunner` (or an endpoint) so the CLI (harness/cli_devloop.py) and
the web console render the same data. `require_up` is the one "is the stack up?" check they share.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.errors import HarnessError


def require_up(runner: Any, components: Iterable[str] | None = None) -> None:
    """Raise a HarnessError with a hint unless `components` (default: the infrastructure) are healthy."""
    wanted = set(components) if components is not None else None
    include_app = wanted is not None and bool(wanted - {c.name for c in runner.infra()})
    rows = runner.status(include_app=include_app)
    down = [r.name for r in rows if (wanted is None or r.name in wanted) and not r.healthy]
    if down:
        raise HarnessError(
            f"the stack is not up ({', '.join(down)} not healthy; state: {runner.state.root})",
            hint="run `harness up` first (`harness status` shows each component)",
        )
