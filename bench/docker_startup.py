"""Docker-tier startup beside the embedded tier's, in one run: `python -m bench.docker_startup`.

For each tier, on free ports in temporary state dirs, timing the real command a user types (a new Python
process each time): cold `up` (empty state dir: initdb, fresh volumes, provisioning, migrate, seed), `up`
when already up, and warm `up` (state kept, stack down). Then the sizes of the Docker tier's images.
The images must exist already (`bash .ci/docker-setup` or one `harness up --backend docker`): building them
is a one-off cost, not a startup cost. Without an engine only the embedded figures are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness.runner import LocalRunner
from harness.state import StateDir
from harness.testing import private_temp_dir
from harness.topology import find_topology_file, load_topology

TIERS = ("embedded", "docker")


def _cli(state: Path, tier: str, *args: str) -> float:
    command = [sys.executable, "-m", "harness.cli", "--state-dir", str(state), "--backend", tier, *args]
    t0 = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"`harness --backend {tier} {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
    return elapsed


def _measure(tier: str, rounds: int, with_app: bool) -> dict[str, list[float]]:
    up = ["--ports", "auto", "up"] if with_app else ["--ports", "auto", "up", "--no-app"]
    figures: dict[str, list[float]] = {"cold": [], "already up": [], "warm": [], "down": []}
    topology = load_topology(find_topology_file())
    for _ in range(rounds):
        state = private_temp_dir(f"bench-{tier}-")
        try:
            figures["cold"].append(_cli(state, tier, *up))
            figures["already up"].append(_cli(state, tier, *up))
            figures["down"].append(_cli(state, tier, "down"))
            figures["warm"].append(_cli(state, tier, *up))
        finally:
            LocalRunner(topology, StateDir(state), backend=tier).reset()
    return figures


def _image_sizes() -> list[tuple[str, float]]:
    from harness.backends.docker.engine import app_image_name, docker_client

    topology = load_topology(find_topology_file())
    names = [
        f"postgres:{topology.postgres.version}",
        f"redis:{topology.redis.version}",
        app_image_name(topology.source.resolve().parent),
    ]
    sizes = []
    for name in names:
        try:
            sizes.append((name, docker_client().images.get(name).attrs["Size"] / 1e6))
        except Exception:
            sizes.append((name, float("nan")))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2, help="repetitions (median shown)")
    parser.add_argument("--no-app", action="store_true", help="infrastructure only (no backend/worker)")
    parser.add_argument("--tiers", default=",".join(TIERS), help="comma-separated: embedded,docker")
    args = parser.parse_args()
    os.environ.pop("HARNESS_BACKEND", None)

    tiers = [t for t in args.tiers.split(",") if t]
    if "docker" in tiers:
        from harness.backends.docker.engine import engine_problem, ensure_app_image

        if problem := engine_problem():
            print(f"docker tier skipped: {problem}")
            tiers.remove("docker")
        else:
            ensure_app_image(find_topology_file().resolve().parent, progress=print)

    results = {tier: _measure(tier, args.rounds, not args.no_app) for tier in tiers}
    m = statistics.median
    what = "infrastructure only" if args.no_app else "with backend + worker"
    print(
        f"startup by tier ({args.rounds} rounds, median; {what}; the real `harness` command, Python start-up included)"
    )
    print(f"{'':<16}" + "".join(f"{tier:>12}" for tier in results))
    for figure in ("cold", "already up", "down", "warm"):
        print(f"{figure + ' up' if figure in ('cold', 'warm') else figure:<16}" + "".join(
            f"{m(values[figure]):>11.2f}s" for values in results.values()
        ))  # fmt: skip
    if "docker" in results:
        print("docker tier images:")
        for name, size in _image_sizes():
            print(f"  {name:<40}{size:>8.0f} MB")


if __name__ == "__main__":
    main()
