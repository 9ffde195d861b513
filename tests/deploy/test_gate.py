"""The gate's contract with the scenario engine: a pytest subprocess with `--target deployed
--deployed-outputs FILE`, judged from the JUnit XML it writes. A stand-in plugin plays the engine here (the
real one, harness.pytest_plugin, is switched off with `-p no:harness` so these tests pin the contract only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.deploy.gate import run_scenario_gate

WITHOUT_ENGINE = ("-p", "no:harness")

STAND_IN_CONFTEST = """
import json, pytest

def pytest_addoption(parser):
    parser.addoption("--target")
    parser.addoption("--deployed-outputs")

@pytest.fixture
def outputs(request):
    assert request.config.getoption("--target") == "deployed"
    with open(request.config.getoption("--deployed-outputs")) as fh:
        return json.load(fh)
"""


def _scenarios(tmp_path: Path, body: str) -> Path:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "conftest.py").write_text(STAND_IN_CONFTEST)
    (directory / "test_scenarios.py").write_text(body)
    return directory


def test_gate_passes_and_sees_the_outputs(tmp_path: Path) -> None:
    directory = _scenarios(
        tmp_path,
        "def test_order_confirmation(outputs):\n    assert outputs['ApiUrl'] == 'https://api.example'\n",
    )
    result = run_scenario_gate(
        {"ApiUrl": "https://api.example"}, scenarios_dir=directory, extra_args=WITHOUT_ENGINE
    )
    assert result.passed, result.detail
    assert result.ran == 1


def test_gate_names_the_failing_scenario(tmp_path: Path) -> None:
    directory = _scenarios(
        tmp_path,
        "def test_ok(outputs):\n    pass\n\ndef test_second_tenant_sees_nothing(outputs):\n    assert False\n",
    )
    result = run_scenario_gate({"ApiUrl": "x"}, scenarios_dir=directory, extra_args=WITHOUT_ENGINE)
    assert not result.passed
    assert len(result.failed) == 1
    name, reason = result.failed[0].split(": ", 1)
    assert name == "test_scenarios::test_second_tenant_sees_nothing"
    assert "assert False" in reason  # the failure's first line, so the gate says why
    assert "test_second_tenant_sees_nothing" in result.render()


def test_gate_fails_when_no_scenario_runs(tmp_path: Path) -> None:
    directory = _scenarios(tmp_path, "")
    result = run_scenario_gate({}, scenarios_dir=directory, extra_args=WITHOUT_ENGINE)
    assert not result.passed and "no scenario" in result.detail


def test_gate_without_the_scenario_engine_fails_clearly(tmp_path: Path) -> None:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "test_x.py").write_text("def test_x():\n    pass\n")
    result = run_scenario_gate({}, scenarios_dir=directory, extra_args=WITHOUT_ENGINE)
    assert not result.passed
    assert "scenario engine" in result.detail and "--target" in result.detail
    json.dumps(result.detail)


def test_junit_names_a_failed_scenario_by_its_file(tmp_path: Path) -> None:
    from harness.deploy.gate import parse_junit

    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="scenarios.orders.yaml" name="order confirmation reaches the buyer">'
        "<failure message='x'/></testcase>"
        '<testcase classname="scenarios.health.yaml" name="health"/>'
        '<testcase classname="tests.test_x" name="test_y"><error message="e"/></testcase>'
        "</testsuite></testsuites>"
    )
    ran, failed = parse_junit(report)
    assert ran == 3
    assert failed == ["orders.yaml::order confirmation reaches the buyer", "test_x::test_y"]


def test_gate_requires_a_deployed_pass_of_scenarios_the_local_tier_cannot_prove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import fidelity
    from harness.deploy.gate import unproven_scenarios_without_a_pass

    (tmp_path / "media.yaml").write_text("name: x\n")
    (tmp_path / "orders.yaml").write_text("name: y\n")
    monkeypatch.setattr(
        fidelity,
        "SCENARIO_DEPENDENCIES",
        {
            "scenarios/media.yaml": ("s3.header-signed-requests",),
            "scenarios/orders.yaml": ("cognito.secret-hash",),
        },
    )
    assert unproven_scenarios_without_a_pass(tmp_path, passed={"orders.yaml"}) == [
        "media.yaml (relies on s3.header-signed-requests)"
    ]
    assert unproven_scenarios_without_a_pass(tmp_path, passed={"media.yaml"}) == []
