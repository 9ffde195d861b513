"""Load benchmark: `python -m bench.load [--users 20] [--duration 20s] [--json]` (a fresh stack on free ports).

What one machine generates against the local stack with `harness scenarios load scenarios/orders.yaml`, no
think time: requests/s with the users in one Locust worker process and in two, per worker process, and
where the stack saturates first — the CPU each component used during the run (psutil, the component's
process and its children), as a share of one core. The floor the ratios are read against is the same run's
one-worker figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from harness.testing import RunningStack, start_stack

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CpuWatch:
    """CPU seconds per component (process tree) over a window."""

    def __init__(self, stack: RunningStack) -> None:
        self.trees: dict[str, list[psutil.Process]] = {}
        for row in stack.runner.status():
            if row.pid:
                try:
                    parent = psutil.Process(row.pid)
                    self.trees[row.name] = [parent, *parent.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, procs in self.trees.items():
            total = 0.0
            for p in procs:
                try:
                    times = p.cpu_times()
                    total += times.user + times.system
                except psutil.NoSuchProcess:
                    continue
            out[name] = total
        return out

    def shares(self, seconds: float) -> dict[str, float]:
        end = self._sample()
        return {n: round((end[n] - self._start.get(n, 0.0)) / seconds, 2) for n in end}


def run(stack: RunningStack, workers: int, users: int, duration: str, out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "harness.cli", "--topology", str(stack.topology.source),
               "--state-dir", str(stack.runner.state.root), "scenarios", "load", "scenarios/orders.yaml",
               "--users", str(users), "--spawn-rate", str(users), "--duration", duration, "--think", "0",
               "--workers", str(workers), "--json", str(out), "--master-port", str(_free_port())]  # fmt: skip
    watch = CpuWatch(stack)
    psutil.cpu_percent(interval=None)  # starts the machine-wide measurement window
    done = subprocess.run(
        command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, check=False
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    if not report:
        raise SystemExit(f"load run failed:\n{done.stdout}\n{done.stderr}")
    machine = psutil.cpu_percent(interval=None)
    shares = watch.shares(report["duration_s"])
    busiest = max(shares, key=lambda n: shares[n]) if shares else None
    return {
        "workers": workers,
        "rps": report["rps"],
        "rps_per_worker": round(report["rps"] / max(workers, 1), 2),
        "p50_ms": report["p50_ms"],
        "p95_ms": report["p95_ms"],
        "failures": report["failures"],
        "audit_findings": len(report["audit_findings"]),
        "cpu_cores_by_component": shares,
        "busiest_component": busiest,
        "machine_cpu_percent": machine,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    stack = start_stack()
    try:
        results = [
            run(
                stack,
                workers,
                args.users,
                args.duration,
                Path(stack.runner.state.root) / f"load-{workers}.json",
            )
            for workers in (1, 2)
        ]
    finally:
        stack.stop()
    one, two = results
    summary = {
        "users": args.users,
        "runs": results,
        "two_vs_one_ratio": round(two["rps"] / one["rps"], 2) if one["rps"] else None,
        "saturates_first": two["busiest_component"],
        "cores": psutil.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary))
        return
    for r in results:
        print(
            f"{r['workers']} worker process(es): {r['rps']:.1f} req/s ({r['rps_per_worker']:.1f} per worker), "
            f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['failures']} failure(s); busiest: "
            f"{r['busiest_component']} ({r['cpu_cores_by_component']})"
        )
    print(
        f"2 vs 1 worker: {summary['two_vs_one_ratio']}x; the stack saturates first at {summary['saturates_first']}"
    )


if __name__ == "__main__":
    main()
