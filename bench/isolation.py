"""Isolation benchmark: `python -m bench.isolation` (a fresh stack on free ports) or `--attach` (the running one).

What a test pays for a clean slate, on one stack, medians of `--rounds`:
- a fresh tenant with its owner (Cognito user, sign-in, POST /tenants) — the scenarios' unit of isolation;
- a pristine database cloned from the migrated template (`CREATE DATABASE … TEMPLATE`, grants included);
- the baseline a clone replaces: a new database migrated from scratch (the template build: CREATE DATABASE,
  grants, `alembic upgrade head` in a new process);
- dropping a clone.
Ratios are against the migrate-from-scratch baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.clones import DatabaseCloner
from harness.scenarios.runner import ScenarioSession
from harness.scenarios.targets import local_target
from harness.testing import RunningStack, attach_stack, start_stack


def tenant_seconds(stack: RunningStack, rounds: int) -> list[float]:
    target = local_target(stack, with_monitor=False)
    session = ScenarioSession(target)
    times = []
    try:
        for _ in range(rounds):
            factory = session.actors()
            started = time.perf_counter()
            factory.tenant("bench", users={"owner": ("owner", None)})
            times.append(time.perf_counter() - started)
            factory.cleanup()
    finally:
        session.close()
        target.close()
    return times


def clone_seconds(cloner: DatabaseCloner, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """(whole clone() calls, their CREATE DATABASE + grants part, drops)."""
    clones, inner, drops = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        clone = cloner.clone()
        clones.append(time.perf_counter() - started)
        inner.append(clone.seconds)
        started = time.perf_counter()
        cloner.drop(clone.name)
        drops.append(time.perf_counter() - started)
    return clones, inner, drops


def migrate_seconds(cloner: DatabaseCloner, rounds: int) -> list[float]:
    """A template build each round: a new database, its grants, the migrations run as app_migrator."""
    times = []
    for _ in range(rounds):
        cloner.drop_template()
        started = time.perf_counter()
        cloner.drop(cloner.clone().name)  # builds the template first; the clone itself is measured apart
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.isolation", description=__doc__.splitlines()[0])
    parser.add_argument("--attach", action="store_true", help="use the running stack (HARNESS_STATE_DIR)")
    parser.add_argument("--rounds", type=int, default=7, help="repetitions of each measurement (median)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    stack = attach_stack() if args.attach else start_stack()
    print(f"stack {'attached' if args.attach else f'started in {time.perf_counter() - t0:.1f}s'}")
    try:
        cloner = DatabaseCloner(stack.runner)
        migrate = statistics.median(migrate_seconds(cloner, max(3, args.rounds // 2)))
        clones, inner, drops = clone_seconds(cloner, args.rounds)
        clone, clone_only, drop = (statistics.median(x) for x in (clones, inner, drops))
        tenant = statistics.median(tenant_seconds(stack, args.rounds))
    finally:
        if not args.attach:
            stack.stop()
    print(f"isolation benchmark ({args.rounds} rounds, median)")
    print(f"migrate a new database from scratch   {migrate * 1000:8.1f} ms   (baseline)")
    print(f"clone the migrated template           {clone * 1000:8.1f} ms   = {migrate / clone:5.1f}x faster")
    print(f"  of which CREATE DATABASE + grants    {clone_only * 1000:8.1f} ms")
    print(f"drop a clone                          {drop * 1000:8.1f} ms")
    print(
        f"fresh tenant + owner (API, Cognito)   {tenant * 1000:8.1f} ms   = {migrate / tenant:5.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
