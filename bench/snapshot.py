"""The developer's loop, timed: `python -m bench.snapshot` (a fresh stack on free ports, without live reload).

Medians of `--rounds` on the seeded stack:
- `snapshot save` and `snapshot load` (in-process: what the command does after its start-up), and `harness
  snapshot load` as a command (the CLI's own start-up included);
- what a load replaces: `reset` + `up` (a new stack from nothing, migrated and seeded) and `db reset`;
- `tenant reset acme`, `restart backend`, `restart worker`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from harness.devloop.restart import restart
from harness.devloop.snapshots import delete_snapshot, load_snapshot, save_snapshot
from harness.devloop.tenants import reset_database, reset_tenant
from harness.testing import RunningStack, start_stack


def timed(rounds: int, action: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def cli(stack: RunningStack, *args: str) -> None:
    state = str(stack.runner.state.root)
    subprocess.run(
        [sys.executable, "-m", "harness.cli", "--state-dir", state, *args], check=True, capture_output=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stack = start_stack()
    runner = stack.runner
    rows: list[tuple[str, list[float]]] = []
    try:
        rows.append(("snapshot save", timed(args.rounds, lambda: save_snapshot(runner, "bench", force=True))))
        rows.append(("snapshot load", timed(args.rounds, lambda: load_snapshot(runner, "bench"))))
        rows.append(
            (
                "harness snapshot load (CLI)",
                timed(args.rounds, lambda: cli(stack, "snapshot", "load", "bench")),
            )
        )
        rows.append(("tenant reset acme", timed(args.rounds, lambda: reset_tenant(runner, "acme"))))
        rows.append(("restart backend", timed(args.rounds, lambda: restart(runner, ["backend"]))))
        rows.append(("restart worker", timed(args.rounds, lambda: restart(runner, ["worker"]))))
        rows.append(("db reset", timed(1, lambda: reset_database(runner))))
        delete_snapshot(runner, "bench")

        def reset_and_up() -> None:
            runner.reset()
            runner.up()

        rows.append(("reset + up (what a load replaces)", timed(1, reset_and_up)))
    finally:
        stack.stop()
    print(f"{'':<36} {'median':>8} {'min':>8} {'max':>8}  (seconds, {args.rounds} rounds)")
    for label, times in rows:
        print(f"{label:<36} {statistics.median(times):>8.2f} {min(times):>8.2f} {max(times):>8.2f}")


if __name__ == "__main__":
    main()
