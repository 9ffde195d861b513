"""Startup benchmark: `python -m bench.startup` (or `nox -s bench`).

Prints, in one run, on free ports and in temporary state dirs:
- each component's raw start time: the binary started by hand, the fastest way possible, until it answers;
- cold `up` (empty state dir), warm `up` (state exists, stack down), `up` when already up;
- total RSS of the stack's processes;
and the ratios the targets are stated in (warm `up` vs the slowest raw start).
Infrastructure only by default (`--app` adds the backend and worker to the `up` figures).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from harness.backends.embedded import AwsEmulatorService, PostgresService, RedisService
from harness.readiness import wait_until_ready
from harness.runner import LocalRunner
from harness.state import StateDir
from harness.testing import private_temp_dir
from harness.topology import find_topology_file, load_topology

TARGETS = {"warm_ratio": 1.3, "cold_s": 8.0, "already_up_s": 1.0, "rss_mb": 400.0}


def _raw_start(service: PostgresService | RedisService | AwsEmulatorService) -> float:
    """Start one component's binary by hand on an existing (provisioned) data dir, until it answers.

    This is the floor a warm `up` is compared against: same data, no harness around it.
    """
    t0 = time.perf_counter()
    service.process().start()
    reason = wait_until_ready(service.readiness(), timeout=60, interval=0.01)
    elapsed = time.perf_counter() - t0
    service.stop()
    if reason:
        raise SystemExit(f"{service.name} did not start: {reason}")
    return elapsed


def _stack_rss(runner: LocalRunner) -> float:
    total = 0
    for status in runner.status():
        if status.pid is None:
            continue
        proc = psutil.Process(status.pid)
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total / 2**20


def _cli_up(state: Path, with_app: bool) -> float:
    """Time the real command a user types (a new Python process each time)."""
    args = [sys.executable, "-m", "harness.cli", "--state-dir", str(state), "--ports", "auto", "up"]
    if not with_app:
        args.append("--no-app")
    t0 = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"`harness up` failed:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="repetitions of each measurement (median shown)"
    )
    parser.add_argument("--app", action="store_true", help="include the backend and worker in `up`")
    args = parser.parse_args()
    topology = load_topology(find_topology_file())

    raw: dict[str, list[float]] = {"postgres": [], "redis": [], "aws": []}
    cold, warm, already, rss = [], [], [], []
    for _ in range(args.rounds):
        state = private_temp_dir("bench-up-")
        runner = LocalRunner(topology, StateDir(state), "auto")
        try:
            cold.append(_cli_up(state, args.app))
            already.append(_cli_up(state, args.app))
            rss.append(_stack_rss(runner))
            runner.down()
            for service in runner.infra():
                raw[service.name].append(_raw_start(service))
            warm.append(_cli_up(state, args.app))
        finally:
            runner.down()
            runner.state.wipe()

    m = statistics.median
    raw_m = {k: m(v) for k, v in raw.items()}
    slowest = max(raw_m, key=lambda k: raw_m[k])
    print(
        f"startup benchmark ({args.rounds} rounds, median; {'with' if args.app else 'without'} app processes)"
    )
    print(f"{'raw start (provisioned data)':<30}" + "  ".join(f"{k} {v:.2f}s" for k, v in raw_m.items()))
    print(f"{'cold up (empty state)':<30}{m(cold):.2f}s   target < {TARGETS['cold_s']:.0f}s")
    ratio = m(warm) / raw_m[slowest]
    print(
        f"{'warm up (state, stack down)':<30}{m(warm):.2f}s   = {ratio:.2f}x the slowest raw start ({slowest} "
        f"{raw_m[slowest]:.2f}s), target <= {TARGETS['warm_ratio']}x"
    )
    print(f"{'up when already up':<30}{m(already):.2f}s   target < {TARGETS['already_up_s']:.0f}s")
    print(f"{'stack RSS':<30}{m(rss):.0f} MB   target < {TARGETS['rss_mb']:.0f} MB")
    print("(`up` figures are the real command in a new process, Python start-up included)")


if __name__ == "__main__":
    main()
