"""The load process (entered through `python -m harness.loadproc`, which lets gevent patch the standard
library first, so `harness scenarios load` runs it in a process of its own). Without --worker it is the run's leader: Locust's local runner (no worker
processes) or its master (with `--workers N` it starts N worker processes of this module; workers on other
machines join with `harness scenarios load ... --worker --master-host H`). The leader watches the stack's
health during the run, runs the audits once at the end and writes the report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment

from harness.errors import HarnessError
from harness.readiness import NotYet, wait_for
from harness.scenarios.load.audits import final_audits, finding_json
from harness.scenarios.load.collector import Collector, Counts
from harness.scenarios.load.options import LoadOptions
from harness.scenarios.load.report import build_report, render_text, verdict
from harness.scenarios.load.users import LoadContext, ScenarioUser, user_classes

DRAIN = "harness_drain"  # master -> workers: start no new scenario run
STOP_TIMEOUT_S = 60  # a stopping user finishes its scenario run (and cleans up its tenants) within this
WORKERS_JOIN_S = 60


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def attached_stack(state_dir: str | None, topology_file: str | None) -> Any:
    """The running local stack of `state_dir` (default: the topology's), refused with a hint when down."""
    from harness.devloop import require_up
    from harness.runner import LocalRunner
    from harness.state import StateDir, default_state_dir
    from harness.testing import RunningStack
    from harness.topology import find_topology_file, load_topology

    path = Path(topology_file) if topology_file else find_topology_file()
    state = StateDir(Path(state_dir).resolve() if state_dir else default_state_dir(path))
    runner = LocalRunner(load_topology(path), state)
    # The infrastructure and the HTTP services; the worker's part shows in the report (emails delivered).
    http = [name for name, service in runner.topology.services.items() if service.kind == "asgi"]
    require_up(runner, [c.name for c in runner.infra()] + http)
    return RunningStack(runner, owned=False)


class Connected:
    """The target of this process, and (for the leader) what the audits need."""

    def __init__(self, options: LoadOptions) -> None:
        from harness.scenarios.loader import load_scenario
        from harness.scenarios.targets import DeployedOutputs, deployed_target, local_target
        from harness.topology import load_topology

        self.admin_database_url: str | None = None
        self.health_path = "/api/v1/health"
        if options.target == "local":
            stack = attached_stack(options.state_dir, options.topology_file)
            self.target = local_target(stack, with_monitor=True)
            self.admin_database_url = stack.admin_database_url
            self.health_path = stack.topology.services["backend"].health_path or self.health_path
        else:
            assert options.deployed_outputs is not None
            outputs = DeployedOutputs.load(Path(options.deployed_outputs))
            topology = load_topology(Path(options.topology_file or "topology.toml"), env=outputs.environment)
            self.target = deployed_target(outputs, topology)
        namespaces = [ns.prefix for ns in self.target.topology.redis.namespaces]
        self.scenarios = {
            Path(f).stem: load_scenario(Path(f), target=self.target.spec, namespaces=namespaces)
            for f in options.files
        }
        inapplicable = [str(s.source) for s in self.scenarios.values() if not s.applicable]
        if inapplicable:
            raise HarnessError(
                f"not valid on target {options.target}: {', '.join(inapplicable)}",
                hint="a scenario lists the targets it runs on under `targets:`",
            )
        self.collector = Collector(options.sample)
        ScenarioUser.load_context = LoadContext(self.target, self.scenarios, self.collector)

    def close(self) -> None:
        self.target.close()


def _environment(options: LoadOptions, connected: Connected) -> Environment:
    classes = user_classes(list(connected.scenarios), options.weights, options.think)
    env = Environment(user_classes=classes, events=events, stop_timeout=STOP_TIMEOUT_S)
    return env


def run_worker(options: LoadOptions) -> int:
    connected = Connected(options)
    env = _environment(options, connected)

    def report_to_master(client_id: str, data: dict[str, Any]) -> None:
        data["harness"] = connected.collector.take()
        data["harness_draining"] = connected.collector.draining
        data["harness_in_flight"] = connected.collector.in_flight

    env.events.report_to_master.add_listener(report_to_master)  # type: ignore[no-untyped-call]
    runner = env.create_worker_runner(options.master_host, options.master_port)

    def drain(environment: Any = None, msg: Any = None, **_: Any) -> None:
        connected.collector.draining = True

    runner.register_message(DRAIN, drain)
    _say(f"load worker: joined the master at {options.master_host}:{options.master_port}")
    try:
        runner.greenlet.join()
    finally:
        connected.close()
    return 0


class HealthWatch:
    """Samples the backend's health endpoint every `every` seconds while the run lasts."""

    def __init__(self, url: str, every: float = 2.0) -> None:
        self.url, self.every = url, every
        self.samples = 0
        self.statuses: dict[str, int] = {}
        self._greenlet: Any = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        import httpx

        with httpx.Client(timeout=5) as client:
            while True:
                try:
                    status = str(client.get(self.url).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.samples += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1
                gevent.sleep(self.every)

    def stop(self) -> dict[str, Any]:
        if self._greenlet is not None:
            self._greenlet.kill()
        unhealthy = sum(n for s, n in self.statuses.items() if s != "200")
        return {"samples": self.samples, "unhealthy": unhealthy, "statuses": self.statuses}


def _spawn_workers(options: LoadOptions, port: int) -> list[subprocess.Popen[bytes]]:
    worker_options = LoadOptions.from_json(options.to_json())
    worker_options.master_host, worker_options.master_port = "127.0.0.1", port
    command = [
        sys.executable,
        "-m",
        "harness.loadproc",
        "--worker",
        "--options",
        worker_options.to_json(),
    ]
    return [subprocess.Popen(command) for _ in range(options.workers)]


def run_leader(options: LoadOptions, *, expect_workers: int = 0, bind_host: str = "127.0.0.1") -> int:
    connected = Connected(options)
    env = _environment(options, connected)
    counts = Counts()
    gauges: dict[str, tuple[bool, int]] = {}  # per worker: (draining, scenario runs in flight)
    distributed = options.workers + expect_workers > 0
    processes: list[subprocess.Popen[bytes]] = []
    monitor_mark: str | None = None
    monitor = connected.target.monitor
    try:
        if distributed:

            def worker_report(client_id: str, data: dict[str, Any]) -> None:
                counts.add(data.get("harness", {}))
                if "harness_in_flight" in data:
                    gauges[client_id] = (bool(data["harness_draining"]), int(data["harness_in_flight"]))

            env.events.worker_report.add_listener(worker_report)  # type: ignore[no-untyped-call]
            runner: Any = env.create_master_runner(
                master_bind_host=bind_host, master_bind_port=options.master_port
            )
            processes = _spawn_workers(options, options.master_port)
            wanted = options.workers + expect_workers
            wait_for(
                f"{wanted} load worker(s) joined",
                lambda: (
                    True
                    if len(runner.clients.ready) >= wanted
                    else NotYet(f"{len(runner.clients.ready)} joined")
                ),
                timeout=WORKERS_JOIN_S,
                interval=0.2,
                max_interval=0.2,
                sleep=gevent.sleep,  # cooperative: the master's greenlets accept the workers meanwhile
                hint="a worker on another machine joins with: harness scenarios load PATH --worker "
                f"--master-host THIS_HOST --master-port {options.master_port}",
            )
        else:
            runner = env.create_local_runner()
        if options.ui:
            env.create_web_ui("127.0.0.1", options.ui_port)
            _say(f"load: Locust's web UI at http://127.0.0.1:{options.ui_port}")
        since = datetime.now(UTC)
        if monitor is not None:
            monitor_mark = monitor.begin("load")
        health = HealthWatch(connected.target.api_url.rstrip("/") + connected.health_path)
        health.start()
        _say(
            f"load: {options.users} user(s) at {options.spawn_rate:g}/s for {options.duration_s:g} s on "
            f"{options.target}" + (f", {len(runner.clients.ready)} worker process(es)" if distributed else "")
        )
        started = time.monotonic()
        runner.start(options.users, spawn_rate=options.spawn_rate)
        gevent.sleep(options.duration_s)
        # Drain, then stop: no user starts another scenario run, every run in flight finishes (and cleans up
        # its tenants); its stats and counts reach the master in a periodic report before the quit.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        if distributed:
            clients = list(runner.clients.all)
            gauges.clear()
            runner.send_message(DRAIN)
            while time.monotonic() < deadline and not (
                len(gauges) >= len(clients) and all(d and n == 0 for d, n in gauges.values())
            ):
                gevent.sleep(0.5)
        else:
            connected.collector.draining = True
            while time.monotonic() < deadline and connected.collector.in_flight:
                gevent.sleep(0.2)
        drained = time.monotonic() < deadline
        if not drained:
            _say(f"load: scenario runs still in flight after {STOP_TIMEOUT_S} s; stopping them")
        duration = time.monotonic() - started
        runner.quit()
        health_report = health.stop()
        if not distributed:
            counts.add(connected.collector.take())
        activity = monitor.end(monitor_mark) if monitor is not None and monitor_mark is not None else None
        monitor_mark = None
        findings, ran, skipped = final_audits(connected.target, activity, since, connected.admin_database_url)
        report = build_report(
            env.stats, counts, duration_s=duration, users=options.users,
            workers=options.workers + expect_workers, findings=[finding_json(f) for f in findings],
            audits_run=ran, audits_skipped=skipped, health=health_report, target=options.target,
        )  # fmt: skip
        outcome = verdict(report, options.max_failure_rate, options.max_p95_ms)
        report["drained"] = drained  # every scenario run in flight at the end finished (and cleaned up)
        report["passed"], report["reasons"] = outcome.passed, outcome.reasons
        for line in render_text(report, outcome):
            print(line, flush=True)
        if options.json_file:
            Path(options.json_file).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            _say(f"load: JSON report in {options.json_file}")
        if options.html_file:
            from locust.html import get_html_report

            Path(options.html_file).write_text(
                get_html_report(env, show_download_link=False),  # type: ignore[no-untyped-call]
                encoding="utf-8",
            )
            _say(f"load: Locust's HTML report in {options.html_file}")
        return 0 if outcome.passed else 1
    finally:
        if monitor is not None and monitor_mark is not None:
            monitor.end(monitor_mark)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
        connected.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness-load", description=__doc__)
    parser.add_argument("--options", required=True, help="the run's LoadOptions as JSON")
    parser.add_argument("--worker", action="store_true", help="join a master instead of leading the run")
    parser.add_argument(
        "--expect-workers", type=int, default=0, help="workers from other machines to wait for"
    )
    parser.add_argument("--bind-host", default="127.0.0.1", help="where the master listens for workers")
    args = parser.parse_args(argv)
    logging.getLogger("locust").setLevel(os.environ.get("HARNESS_LOAD_LOG_LEVEL", "WARNING"))
    options = LoadOptions.from_json(args.options)
    try:
        if args.worker:
            return run_worker(options)
        return run_leader(options, expect_workers=args.expect_workers, bind_host=args.bind_host)
    except HarnessError as exc:
        _say(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""))
        return 2
