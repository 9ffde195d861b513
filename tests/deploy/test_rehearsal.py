"""`harness deploy --env staging --rehearse`: what docs/deploying.md tells a new user to run first. The real
deploy path against the AWS stand-in, the gate's scenarios against a local app stack, everything stopped after."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.deploy.deployer import DeployOptions
from harness.deploy.rehearsal import Rehearsal
from harness.topology import load_topology

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _listening(url: str) -> bool:
    host, port = url.rsplit("//", 1)[-1].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port.split("/")[0]))) == 0


def test_the_documented_rehearsal_passes_and_stops_what_it_started() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "deploy", "--env", "staging", "--rehearse", "--yes"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False,
    )  # fmt: skip
    err = proc.stderr
    assert proc.returncode == 0, err[-4000:]
    assert proc.stdout == ""
    steps = [
        "starting the AWS stand-in (account 111122223333)",  # the environment's own account: the guard rail passes
        "placeholder image saas-backend:rehearsal pushed",
        "stack saas-staging: create",  # the plan
        "env contract",  # the drift check
        "step 2/3: database roles: done (exit 0)",
        "step 2/3: migrations (app_migrator): done (exit 0)",
        "service saas-staging-backend: stable",
        "/api/v1/health answered 200",
        "gate passed:",
        "rehearsal passed",
    ]
    positions = [err.find(step) for step in steps]
    assert all(p >= 0 for p in positions), [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "the steps ran out of order"
    standin = re.search(r"stand-in on (http://127\.0\.0\.1:\d+)", err)
    local = re.search(r"gate target: (http://127\.0\.0\.1:\d+)", err)
    assert standin and local
    assert not _listening(standin.group(1)) and not _listening(local.group(1)), (
        "the rehearsal left a server running"
    )


def test_a_release_whose_gate_passed_is_a_noop_on_rerun(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(ROOT / "scenarios" / "health.yaml", scenarios)
    topology = load_topology(ROOT / "topology.toml", env="staging")
    said: list[str] = []
    options = DeployOptions(image_tag="r1", assume_yes=True, scenarios_dir=scenarios)
    with Rehearsal(topology, progress=lambda stage, message: said.append(f"{stage}: {message}")) as rehearsal:
        rehearsal.prepare(options, "r1")
        first = rehearsal.deploy(options)
        assert first.gate is not None and first.gate.passed, first.gate
        assert first.record is not None and first.record.gate == "passed"
        second = rehearsal.deploy(options)
        assert second.noop and second.gate is None
        assert rehearsal.gate_runs == 1  # a passed release is done: the rerun ran no gate
    assert any("gate passed" in line for line in said)
