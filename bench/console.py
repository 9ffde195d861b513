"""The console's cost to `up`: `python -m bench.console [--rounds N]`.

One stack on free ports in a temporary state dir, with the app. Each round, in alternating order, times
`up` with the console (`[console] enabled`, the default) and without it (the same topology, console off):

- warm `up`: state exists, stack down (processes start, nothing to provision or migrate);
- `up` when already up (every component healthy: a health check each).

The console starts beside the app processes, after Postgres and Redis answer, so it should not lengthen a
warm `up` (the worker's start is the longer path). Medians are printed; no target is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.runner import LocalRunner
from harness.state import StateDir
from harness.testing import private_temp_dir
from harness.topology import Console, Topology, find_topology_file, load_topology

COMPONENT_TIMES: dict[str, list[float]] = {}  # component -> its start-until-healthy times in warm ups


def _timed_up(runner: LocalRunner) -> float:
    t0 = time.perf_counter()
    report = runner.up()
    elapsed = time.perf_counter() - t0
    for name in ("backend", "worker", "console"):
        if name in report.timings:
            COMPONENT_TIMES.setdefault(name, []).append(report.timings[name])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant (median shown)")
    args = parser.parse_args()
    with_console = load_topology(find_topology_file())
    without: Topology = with_console.model_copy(update={"console": Console(enabled=False)})
    state = StateDir(private_temp_dir("bench-console-"))
    variants = {"with console": with_console, "without console": without}
    warm: dict[str, list[float]] = {name: [] for name in variants}
    already: dict[str, list[float]] = {name: [] for name in variants}
    first = LocalRunner(with_console, state, "auto")
    try:
        cold = _timed_up(first)  # cold: creates, provisions, migrates, seeds
        first.down()
        for round_ in range(args.rounds):
            order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in order:
                runner = LocalRunner(variants[name], state, "auto")
                warm[name].append(_timed_up(runner))
                already[name].append(_timed_up(runner))
                runner.down()
    finally:
        LocalRunner(with_console, state, "auto").down()
        state.wipe()

    m = statistics.median
    print(f"console benchmark ({args.rounds} rounds per variant, median; cold up first: {cold:.2f}s)")
    for name in variants:
        print(
            f"{name:<18} warm up {m(warm[name]):6.2f}s  (all: {', '.join(f'{v:.2f}' for v in warm[name])})"
            f"   up when already up {m(already[name]):5.2f}s"
        )
    print(
        "each component's own start (warm ups, median): "
        + ", ".join(f"{name} {m(times):.2f}s" for name, times in COMPONENT_TIMES.items())
        + " — they start in parallel, after Postgres and Redis"
    )
    delta = m(warm["with console"]) - m(warm["without console"])
    print(
        f"difference (with - without): warm up {delta:+.2f}s, already up "
        f"{m(already['with console']) - m(already['without console']):+.2f}s"
    )


if __name__ == "__main__":
    main()
