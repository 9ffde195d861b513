"""Startup benchmark: `python -m bench.startup [--app] [--json] [--rounds N]` (or `nox -s bench`).

Prints, in one run, on free ports and in temporary state dirs:
- each component's raw start: the process started by hand, the fastest way possible, on the same
  (provisioned) data, until it answers — Postgres, Valkey and the emulator; with `--app` also uvicorn serving
  `/api/v1/health` and the Celery worker consuming a task, each started with the env contract;
- cold `up` (empty state dir), warm `up` (state exists, stack down), `up` when already up, all through the real
  command in a new process (Python start-up included);
- with `--app`: `harness restart backend`, `harness snapshot load`, `harness tenant reset acme`;
- the stack's RSS and PSS, in total and per component (a process and its children);
and the ratios the targets are stated in: warm `up` against the slowest raw start of *all* the components it
starts (the floor, measured in the same run).

`--json` prints one JSON object: cold_s, warm_s, already_up_s, floor_s, floor_component, warm_ratio, rss_mb,
rss_mb_by_component, pss_mb, pss_mb_by_component, raw_s (per component), and restart_backend_s,
snapshot_load_s, tenant_reset_s with --app.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

from harness.backends.embedded import AwsEmulatorService, PostgresService, RedisService
from harness.ports import free_port
from harness.readiness import wait_until_ready
from harness.runner import LocalRunner
from harness.state import StateDir
from harness.testing import private_temp_dir
from harness.topology import find_topology_file, load_topology

ROOT = Path(__file__).resolve().parents[1]
# Issue 13's targets (with the app): warm <= 1.5x its floor, cold < 5 s, already up < 0.5 s, restart < 2 s.
TARGETS = {"warm_ratio": 1.5, "cold_s": 5.0, "already_up_s": 0.5, "rss_mb": 500.0, "restart_backend_s": 2.0}


def _env() -> dict[str, str]:
    # CI and benchmarks run without live reload (harness/devloop); the harness's own env, nothing else.
    return {**os.environ, "HARNESS_RELOAD": "0"}


def _raw_start(service: PostgresService | RedisService | AwsEmulatorService) -> float:
    """Start one infrastructure binary by hand on its existing (provisioned) data dir, until it answers."""
    t0 = time.perf_counter()
    service.process().start()
    reason = wait_until_ready(service.readiness(), timeout=60, interval=0.01)
    elapsed = time.perf_counter() - t0
    service.stop()
    if reason:
        raise SystemExit(f"{service.name} did not start: {reason}")
    return elapsed


def _raw_backend(runner: LocalRunner) -> float:
    """uvicorn started by hand with the backend's env contract, until `/api/v1/health` answers 200."""
    service = runner.topology.services["backend"]
    port = free_port()
    env = {**_env(), **runner.env("backend")}
    command = [sys.executable, "-m", "uvicorn", service.app, "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
    url = f"http://127.0.0.1:{port}{service.health_path or '/'}"
    t0 = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=runner.project_dir, env=env, stdout=sys.stderr
    )  # stdout: the JSON
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the backend exited with {process.returncode} before answering")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t0 > 60:
                raise SystemExit(f"the backend did not answer {url} within 60 s")
            time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(timeout=30)


_SENDER = textwrap.dedent(
    """
    import sys, time, uuid
    from app.workers.celery_app import celery_app
    result = celery_app.send_task("emails.order_confirmation", args=[str(uuid.uuid4()), str(uuid.uuid4())])
    print("queued", flush=True)
    result.get(timeout=120, propagate=False)
    print(time.time(), flush=True)
    """
)


def _raw_worker(runner: LocalRunner) -> float:
    """The Celery worker started by hand with the worker's env contract, until it has consumed a task.

    A sender process queues the task first (an order that does not exist: the task finds no row and returns)
    and waits for its result; the figure is from the worker's start to the result's arrival."""
    service = runner.topology.services["worker"]
    env = {**_env(), **runner.env("worker")}
    sender = subprocess.Popen(
        [sys.executable, "-c", _SENDER], cwd=runner.project_dir, env=env, stdout=subprocess.PIPE, text=True
    )
    assert sender.stdout is not None
    if sender.stdout.readline().strip() != "queued":
        raise SystemExit("the task sender failed")
    command = [sys.executable, "-m", "celery", "-A", service.app, "worker", "--loglevel", "WARNING",
               *service.worker_pool_args(), "--hostname", f"bench-{uuid.uuid4().hex[:6]}@%h",
               "--without-gossip", "--without-mingle"]  # fmt: skip
    started = time.time()
    worker = subprocess.Popen(command, cwd=runner.project_dir, env=env, stdout=sys.stderr)  # its banner
    try:
        line = sender.stdout.readline().strip()
        sender.wait(timeout=30)
        if not line:
            raise SystemExit("the worker did not consume the task")
        return float(line) - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if sender.poll() is None:
            sender.kill()


def _memory_by_component(runner: LocalRunner) -> tuple[dict[str, float], dict[str, float]]:
    """RSS and PSS (MB) per component, each summed over the process and its children. RSS counts a page shared
    by several processes (Postgres's shared buffers, a forked pool's copy-on-write pages) once per process; PSS
    divides it among them, so the PSS sum is what the stack really takes."""
    rss: dict[str, float] = {}
    pss: dict[str, float] = {}
    for status in runner.status():
        if status.pid is None:
            continue
        rss_total = pss_total = 0
        try:
            proc = psutil.Process(status.pid)
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in family:
            try:
                info = p.memory_full_info()
            except psutil.Error:
                continue
            rss_total += info.rss
            pss_total += getattr(info, "pss", info.rss)  # PSS is Linux's; elsewhere RSS stands in
        rss[status.name] = round(rss_total / 2**20, 1)
        pss[status.name] = round(pss_total / 2**20, 1)
    return rss, pss


def _harness(state: Path, *args: str) -> float:
    """Time a real `harness` command (a new Python process each time)."""
    command = [sys.executable, "-m", "harness.cli", "--state-dir", str(state), "--ports", "auto", *args]
    t0 = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"`harness {' '.join(args)}` failed:\n{result.stderr}")
    return elapsed


def _up(state: Path, with_app: bool) -> float:
    return _harness(state, "up") if with_app else _harness(state, "up", "--no-app")


def _round(topology: Any, with_app: bool) -> dict[str, Any]:
    state = private_temp_dir("bench-up-")
    runner = LocalRunner(topology, StateDir(state), "auto")
    figures: dict[str, Any] = {}
    try:
        figures["cold_s"] = _up(state, with_app)
        figures["already_up_s"] = _up(state, with_app)
        figures["rss_mb_by_component"], figures["pss_mb_by_component"] = _memory_by_component(runner)
        if with_app:
            figures["restart_backend_s"] = _harness(state, "restart", "backend")
            _harness(state, "snapshot", "save", "bench")
            figures["snapshot_load_s"] = _harness(state, "snapshot", "load", "bench")
            figures["tenant_reset_s"] = _harness(state, "tenant", "reset", "acme")
        raw: dict[str, float] = {}
        if with_app:
            # The app's floors need the infrastructure up (same data, same env contract) and the stack's own
            # app processes down: its worker would consume the floor's task, and both compete for the CPU.
            runner.down()
            runner.up(with_app=False)
            raw["backend"] = _raw_backend(runner)
            raw["worker"] = _raw_worker(runner)
        runner.down()
        for service in runner.infra():
            raw[service.name] = _raw_start(service)
        figures["raw_s"] = raw
        figures["warm_s"] = _up(state, with_app)
    finally:
        runner.down()
        runner.state.wipe()
    return figures


def _median_of(rounds: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in rounds if key in r]
    if not values:
        return None
    if isinstance(values[0], Mapping):
        names = values[0].keys()
        return {n: round(statistics.median(v[n] for v in values if n in v), 3) for n in names}
    return round(statistics.median(values), 3)


def summarise(rounds: list[dict[str, Any]], with_app: bool) -> dict[str, Any]:
    raw = _median_of(rounds, "raw_s")
    floor_component = max(raw, key=lambda k: raw[k])
    by_component = _median_of(rounds, "rss_mb_by_component")
    pss_by_component = _median_of(rounds, "pss_mb_by_component")
    summary: dict[str, Any] = {
        "app": with_app,
        "rounds": len(rounds),
        "cold_s": _median_of(rounds, "cold_s"),
        "warm_s": _median_of(rounds, "warm_s"),
        "already_up_s": _median_of(rounds, "already_up_s"),
        "raw_s": raw,
        "floor_s": raw[floor_component],
        "floor_component": floor_component,
        "rss_mb": round(sum(by_component.values()), 1),
        "rss_mb_by_component": by_component,
        "pss_mb": round(sum(pss_by_component.values()), 1),
        "pss_mb_by_component": pss_by_component,
        "targets": TARGETS,
    }
    summary["warm_ratio"] = round(summary["warm_s"] / summary["floor_s"], 2)
    for key in ("restart_backend_s", "snapshot_load_s", "tenant_reset_s"):
        if with_app:
            summary[key] = _median_of(rounds, key)
    return summary


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(s: dict[str, Any], say: Callable[[str], None] = print) -> None:
    t = s["targets"]
    say(f"startup benchmark ({s['rounds']} round(s), medians; {'with' if s['app'] else 'without'} the app)")
    say(f"{'raw start (same data)':<30}" + "  ".join(f"{k} {v:.2f}s" for k, v in s["raw_s"].items()))
    say(
        f"{'cold up (empty state)':<30}{s['cold_s']:.2f}s   target < {t['cold_s']:.0f}s: {_met(s['cold_s'] < t['cold_s'])}"
    )
    say(
        f"{'warm up (state, stack down)':<30}{s['warm_s']:.2f}s   = {s['warm_ratio']:.2f}x the floor "
        f"({s['floor_component']} {s['floor_s']:.2f}s), target <= {t['warm_ratio']}x: "
        f"{_met(s['warm_ratio'] <= t['warm_ratio'])}"
    )
    say(
        f"{'up when already up':<30}{s['already_up_s']:.2f}s   target < {t['already_up_s']}s: "
        f"{_met(s['already_up_s'] < t['already_up_s'])}"
    )
    if s["app"]:
        say(
            f"{'harness restart backend':<30}{s['restart_backend_s']:.2f}s   target < {t['restart_backend_s']:.0f}s: "
            f"{_met(s['restart_backend_s'] < t['restart_backend_s'])}"
        )
        say(f"{'harness snapshot load':<30}{s['snapshot_load_s']:.2f}s")
        say(f"{'harness tenant reset acme':<30}{s['tenant_reset_s']:.2f}s")
    say(
        f"{'stack RSS':<30}{s['rss_mb']:.0f} MB   target < {t['rss_mb']:.0f} MB: {_met(s['rss_mb'] < t['rss_mb'])} ("
        + ", ".join(f"{k} {v:.0f}" for k, v in s["rss_mb_by_component"].items())
        + ")"
    )
    say(f"{'stack PSS (shared pages split)':<30}{s['pss_mb']:.0f} MB")
    say(f"machine: {psutil.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="repetitions of each measurement (median shown)"
    )
    parser.add_argument(
        "--app", action="store_true", help="include the backend and worker (and their floors)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    topology = load_topology(find_topology_file())
    rounds = [_round(topology, args.app) for _ in range(args.rounds)]
    summary = summarise(rounds, args.app)
    if args.json:
        print(json.dumps(summary))
    else:
        render(summary)


if __name__ == "__main__":
    main()
