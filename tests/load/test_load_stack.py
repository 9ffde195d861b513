"""`harness scenarios load` on the real stack: Locust's master with worker processes, the report, and a leak
under load failing the run on its audit."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testing import RunningStack, private_temp_dir, start_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(state: Path, topology: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness.cli", "--topology", str(topology), "--state-dir", str(state),
               "scenarios", "load", *args, "--master-port", str(_free_port())]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def test_two_worker_processes_run_the_scenarios_and_report_every_step(
    stack: RunningStack, tmp_path: Path
) -> None:
    report_file, html_file = tmp_path / "load.json", tmp_path / "load.html"
    done = load(
        stack.runner.state.root, stack.topology.source,
        "scenarios/orders.yaml", "scenarios/health.yaml", "--users", "4", "--spawn-rate", "4",
        "--duration", "8s", "--workers", "2", "--think", "0", "--sample", "1",
        "--json", str(report_file), "--html", str(html_file), "--max-failure-rate", "0.5",
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    report = json.loads(report_file.read_text())
    assert report["workers"] == 2
    assert report["drained"] is True  # the workers got the drain message: runs finished, no one was cut off
    for name in ("requests", "failures", "p50_ms", "p95_ms", "p99_ms", "rps", "emails_expected",
                 "emails_delivered", "audit_findings", "steps"):  # fmt: skip
        assert name in report, name
    assert report["requests"] > 0 and report["audit_findings"] == []
    assert set(report["audits_run"]) == {
        "redis-namespaces",
        "task-tenant",
        "redis-refusals",
        "object-prefix",
        "row-tenant",
    }
    names = [s["name"] for s in report["steps"]]
    assert any(n.startswith("orders#2 ") for n in names) and any(n.startswith("health#") for n in names)
    assert report["emails_expected"] >= 1 and report["emails_delivered"] >= 1  # --sample 1: every probe ran
    assert report["health"]["samples"] >= 1
    assert "PASSED" in done.stdout and "orders#2" in done.stdout
    assert "<html" in html_file.read_text().lower()


def test_a_stack_that_is_down_is_refused_with_a_hint(tmp_path: Path) -> None:
    state = private_temp_dir()
    try:
        done = load(state, ROOT / "topology.toml", "scenarios/health.yaml", "--duration", "2s")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode != 0
    assert "not up" in done.stderr and "harness up" in done.stderr


LEAKY_APP = '''
"""The reference app with a leak: every order also writes an object outside every tenant prefix."""
import os
import uuid

import boto3

from app.main import app


@app.middleware("http")
async def leak(request, call_next):
    response = await call_next(request)
    if request.method == "POST" and request.url.path == "/api/v1/orders":
        boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).put_object(
            Bucket=os.environ["S3_BUCKET"], Key=f"exports/{uuid.uuid4()}.json", Body=b"{}"
        )
    return response
'''


@pytest.fixture(scope="module")
def leaky_stack() -> Iterator[RunningStack]:
    project = private_temp_dir("harness-leaky-")
    for name in ("app", "seed", "scenarios"):
        (project / name).symlink_to(ROOT / name)
    (project / "leaky_app.py").write_text(LEAKY_APP)
    text = (ROOT / "topology.toml").read_text()
    assert 'app = "app.main:app"' in text
    (project / "topology.toml").write_text(text.replace('app = "app.main:app"', 'app = "leaky_app:app"', 1))
    running = start_stack(project / "topology.toml")
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(project, ignore_errors=True)


@pytest.mark.slow
def test_a_leak_under_load_fails_the_run_on_its_audit(leaky_stack: RunningStack, tmp_path: Path) -> None:
    report_file = tmp_path / "load.json"
    done = load(
        leaky_stack.runner.state.root, leaky_stack.topology.source,
        str(ROOT / "scenarios/orders.yaml"), "--users", "2", "--spawn-rate", "2", "--duration", "6s",
        "--think", "0", "--json", str(report_file),
    )  # fmt: skip
    assert done.returncode == 1, f"{done.stdout}\n{done.stderr}"
    report = json.loads(report_file.read_text())
    leaks = [f for f in report["audit_findings"] if f["audit"] == "object-prefix"]
    assert leaks and all("exports/" in f["offending"] for f in leaks)
    assert "isolation did not hold" in done.stdout and "AUDIT object-prefix" in done.stdout


def test_overlapping_monitor_windows_keep_what_the_outer_window_needs(stack: RunningStack) -> None:
    """A load run's own window spans every scenario run's window in the same process; closing an inner
    window once dropped the outer one's marker (KeyError at the end of the run)."""
    import uuid

    import redis

    from harness.scenarios.monitor import RedisMonitor

    monitor = RedisMonitor(stack.redis_admin_url)
    monitor.start()
    client = redis.Redis.from_url(stack.redis_admin_url)
    prefix = f"ai:quota:overlap-{uuid.uuid4().hex[:6]}"
    try:
        outer = monitor.begin("load")
        client.set(f"{prefix}:before", 1)
        inner = monitor.begin("run")
        client.set(f"{prefix}:inside", 1)
        inner_keys = {k.key for k in monitor.end(inner).keys}
        client.set(f"{prefix}:after", 1)
        outer_keys = {k.key for k in monitor.end(outer).keys}
    finally:
        client.delete(f"{prefix}:before", f"{prefix}:inside", f"{prefix}:after")
        client.close()
        monitor.close()
    assert {k for k in inner_keys if k.startswith(prefix)} == {f"{prefix}:inside"}
    assert {k for k in outer_keys if k.startswith(prefix)} == {f"{prefix}:before", f"{prefix}:inside",
                                                               f"{prefix}:after"}  # fmt: skip
