"""Scenario benchmark: `python -m bench.scenarios` (a fresh stack on free ports) or `--attach` (the running one).

Prints, on one stack:
- the wall time of the whole scenarios/ suite with 1 worker and with 2 (pytest-xdist), each run as the user
  runs it (`pytest scenarios --stack attach [-n 2]`), pytest start-up included; median of `--repeat` runs;
- per scenario: setup (fresh tenants and Cognito users), steps, audits and cleanup, from the JUnit properties;
- the setup cost broken down: one Cognito user (create + sign-in), a tenant (owner + POST /tenants), each
  further member (invite + accept), and the cleanup of a tenant.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from harness.scenarios.runner import ScenarioSession
from harness.scenarios.targets import local_target
from harness.testing import RunningStack, attach_stack, start_stack

ROOT = Path(__file__).resolve().parents[1]


def suite_run(stack: RunningStack, workers: int, junit: Path) -> tuple[float, int, str]:
    """(wall seconds, exit code, summary line) of one `pytest scenarios` run."""
    env = os.environ | {
        "HARNESS_STATE_DIR": str(stack.state.root),
        "HARNESS_TOPOLOGY": str(stack.topology.source),
    }
    args = [sys.executable, "-m", "pytest", "scenarios", "--stack", "attach", "-p", "no:cacheprovider", "-q",
            f"--junitxml={junit}"]  # fmt: skip
    if workers > 1:
        args += ["-n", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return elapsed, done.returncode, summary


def per_scenario(junit: Path) -> list[tuple[str, float, dict[str, float]]]:
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        timings = {k: float(v) for k, v in props.items() if k.endswith("_s")}
        rows.append((case.get("name", "?"), float(case.get("time", "0")), timings))
    return rows


def median_of(rounds: int, action: Callable[[], float]) -> float:
    return statistics.median(action() for _ in range(rounds))


def setup_breakdown(stack: RunningStack, rounds: int) -> dict[str, float]:
    """Median seconds of each setup piece, measured in-process through the engine's own factory."""
    target = local_target(stack, with_monitor=False)
    session = ScenarioSession(target)
    results: dict[str, list[float]] = {"user": [], "tenant_owner_only": [], "extra_member": [], "cleanup": []}
    try:
        for _ in range(rounds):
            factory = session.actors()
            t0 = time.perf_counter()
            actor = factory.user("solo")
            actor.access_token()
            t1 = time.perf_counter()
            factory.tenant("shop", users={"owner": ("owner", None)})
            t2 = time.perf_counter()
            factory.tenant("pair", users={"owner": ("owner", None), "member": ("member", None)})
            t3 = time.perf_counter()
            factory.cleanup()
            t4 = time.perf_counter()
            results["user"].append(t1 - t0)
            results["tenant_owner_only"].append(t2 - t1)
            results["extra_member"].append((t3 - t2) - (t2 - t1))
            results["cleanup"].append(t4 - t3)
    finally:
        session.close()
        target.close()
    return {name: statistics.median(values) for name, values in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios", description=__doc__.splitlines()[0])
    parser.add_argument("--attach", action="store_true", help="use the running stack (HARNESS_STATE_DIR)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the setup breakdown (median)")
    parser.add_argument("--repeat", type=int, default=3, help="suite runs per worker count (median)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    stack = attach_stack() if args.attach else start_stack()
    print(
        f"stack {'attached' if args.attach else f'started in {time.perf_counter() - t0:.1f}s'}: {stack.api_url}"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scenarios-") as tmp:
            runs = {}
            walls: dict[int, list[float]] = {1: [], 2: []}
            for round_ in range(args.repeat):
                for workers in (1, 2):  # interleaved, so a burst of load elsewhere hits both alike
                    junit = Path(tmp) / f"junit-{workers}-{round_}.xml"
                    wall, code, summary = suite_run(stack, workers, junit)
                    walls[workers].append(wall)
                    if round_ == args.repeat - 1:
                        runs[workers] = (wall, per_scenario(junit))
                    print(
                        f"suite, {workers} worker(s), run {round_ + 1}: {wall:6.2f} s wall  ({summary}; exit {code})"
                    )
            for workers in (1, 2):
                w = walls[workers]
                print(
                    f"suite, {workers} worker(s): median {statistics.median(w):6.2f} s  "
                    f"(min {min(w):.2f}, max {max(w):.2f}, {len(w)} runs)"
                )
            w1, w2 = statistics.median(walls[1]), statistics.median(walls[2])
            print(
                f"speed-up with 2 workers: x{w1 / w2:.2f}  (this machine: {os.cpu_count()} CPUs, shared with the stack)"
            )
            print()
            with_two = {name: total for name, total, _ in runs[2][1]}
            print(
                f"{'scenario (s; 1 worker, last column: total with 2)':<52} {'total':>6} {'setup':>6} "
                f"{'steps':>6} {'audits':>6} {'clean':>6} {'2w':>6}"
            )
            setups = []
            for name, total, t in sorted(runs[1][1], key=lambda r: -r[1]):
                setups.append(t.get("setup_s", 0.0))
                print(
                    f"{name[:52]:<52} {total:6.2f} {t.get('setup_s', 0):6.2f} {t.get('steps_s', 0):6.2f} "
                    f"{t.get('audits_s', 0):6.2f} {t.get('cleanup_s', 0):6.2f} {with_two.get(name, 0):6.2f}"
                )
            print(f"{'median setup per scenario':<52} {'':>6} {statistics.median(setups):6.2f}")
            print("(per-scenario figures: the last run)")
        print()
        pieces = setup_breakdown(stack, args.rounds)
        print(f"setup pieces (median of {args.rounds} rounds):")
        print(f"  one Cognito user, created and signed in   {pieces['user'] * 1000:7.0f} ms")
        print(f"  a tenant with its owner (user + POST)     {pieces['tenant_owner_only'] * 1000:7.0f} ms")
        print(f"  each further member (user + invite+accept){pieces['extra_member'] * 1000:7.0f} ms")
        print(f"  cleanup of 3 users and 2 tenants          {pieces['cleanup'] * 1000:7.0f} ms")
    finally:
        if not args.attach:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
