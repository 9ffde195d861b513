"""The gate's verdict is part of the release: a release whose gate failed (or never ran) is not done, and a
plain rerun runs the gate again. Against the AWS stand-in, through the real CLI, with a real failing gate: the
API's name does not resolve (`.invalid` never does, RFC 6761), which is a permanent error and fails at once."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from harness.deploy.gate import check_health

Endpoint = Any  # conftest.Endpoint
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
UNRESOLVABLE = "api.gate-test.invalid"


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = (ROOT / "topology.toml").read_text()
    text = text.replace(
        "[environments.staging]\n", f'[environments.staging]\ndeploy.edge.api_domain = "{UNRESOLVABLE}"\n', 1
    )
    path = tmp_path_factory.mktemp("gate-topology") / "topology.toml"
    path.write_text(text)
    return path


def test_a_name_that_does_not_resolve_fails_the_health_check_at_once() -> None:
    started = time.monotonic()
    result = check_health(f"https://{UNRESOLVABLE}/api/v1/health", timeout=180, interval=5)
    elapsed = time.monotonic() - started
    assert not result.passed
    assert "DNS:" in result.detail and "not retried" in result.detail, result.detail
    assert elapsed < 15, f"a DNS failure was retried for {elapsed:.0f}s"


def test_a_failed_gate_fails_the_deploy_and_a_plain_rerun_runs_it_again(
    endpoint: Endpoint, topology: Path
) -> None:
    proc = endpoint.harness("--env", "staging", "--yes", "--only-base", topology=topology)
    assert proc.returncode == 0, proc.stderr
    endpoint.push_image("v1")
    first = endpoint.harness("--env", "staging", "--yes", "--image-tag", "v1", topology=topology)
    assert first.returncode == 1, first.stderr
    assert "service saas-staging-backend: stable" in first.stderr
    # the gate's progress line (the final error repeats it, wrapped to the terminal)
    assert re.search(rf"https://{re.escape(UNRESOLVABLE)}/api/v1/health: DNS: .+not retried", first.stderr)
    assert "gate FAILED" in first.stderr
    assert "is marked FAILED: a rerun runs the gate again" in first.stderr

    started = time.monotonic()
    rerun = endpoint.harness("--env", "staging", "--yes", "--image-tag", "v1", topology=topology)
    elapsed = time.monotonic() - started
    assert rerun.returncode == 1, rerun.stderr
    assert "no-op" not in rerun.stderr and "nothing to do" not in rerun.stderr
    assert "gate FAILED —" in rerun.stderr and "the gate runs again" in rerun.stderr
    assert "applying" not in rerun.stderr  # nothing to apply: only the gate ran
    assert re.search(r"https://\S+/api/v1/health: DNS: .+not retried", rerun.stderr)
    assert elapsed < 120, f"the rerun took {elapsed:.0f}s"

    plan = endpoint.harness("--env", "staging", "--plan", topology=topology)
    assert plan.returncode == 0, plan.stderr
    assert re.search(r"running release \w+ \(image v1, .+\): gate FAILED", plan.stderr), plan.stderr


def test_a_skip_gate_release_is_marked_and_reported_by_the_next_plan(
    endpoint: Endpoint, topology: Path
) -> None:
    endpoint.push_image("v2")
    proc = endpoint.harness(
        "--env", "staging", "--yes", "--image-tag", "v2", "--skip-gate", topology=topology
    )
    assert proc.returncode == 0, proc.stderr
    assert "GATE SKIPPED" in proc.stderr
    plan = endpoint.harness("--env", "staging", "--plan", topology=topology)
    assert re.search(r"running release \w+ \(image v2, .+\): deployed with --skip-gate", plan.stderr), (
        plan.stderr
    )
    # without --skip-gate, the same release is not done: the gate runs (and fails: the name does not resolve)
    rerun = endpoint.harness("--env", "staging", "--yes", "--image-tag", "v2", topology=topology)
    assert rerun.returncode == 1 and "the gate runs again" in rerun.stderr, rerun.stderr
