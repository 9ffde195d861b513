"""`harness scenarios check|run`: option handling (no stack needed)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.scenarios.commands import pytest_arguments

ROOT = Path(__file__).resolve().parents[2]


def test_check_loads_every_shipped_scenario_for_a_deployed_target(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"ApiUrl": "https://api.x", "UserPoolId": "p", "UserPoolClientId": "c"}))
    result = CliRunner().invoke(
        main,
        ["--topology", str(ROOT / "topology.toml"), "scenarios", "check", str(ROOT / "scenarios" / "roles.yaml"),
         "--target", "deployed", "--deployed-outputs", str(outputs)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "roles.yaml: admin and owner routes refuse lower roles: 12 of 12 steps on deployed" in result.output
    )


def test_check_reports_a_step_the_target_cannot_run(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"ApiUrl": "https://api.x", "UserPoolId": "p", "UserPoolClientId": "c"}))
    result = CliRunner().invoke(
        main,
        ["--topology", str(ROOT / "topology.toml"), "scenarios", "check", str(ROOT / "scenarios" / "orders.yaml"),
         "--target", "deployed", "--deployed-outputs", str(outputs)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "orders.yaml:34: steps[2].expect_email: target deployed cannot run this" in result.output


def test_run_needs_outputs_for_a_deployed_target() -> None:
    result = CliRunner().invoke(main, ["scenarios", "run", "--target", "deployed"])
    assert result.exit_code == 1
    assert "--target deployed needs --deployed-outputs FILE" in result.output


def test_pytest_arguments() -> None:
    assert pytest_arguments([], target="local") == [
        "scenarios", "--target", "local", "-p", "no:cacheprovider", "-r", "fEs", "--stack", "attach",
    ]  # fmt: skip
    args = pytest_arguments(
        [Path("scenarios/orders.yaml")], target="deployed", deployed_outputs=Path("o.json"),
        junit_xml=Path("gate.xml"), workers=2, keyword="orders",
    )  # fmt: skip
    assert args == [
        "scenarios/orders.yaml", "--target", "deployed", "-p", "no:cacheprovider", "-r", "fEs",
        "--deployed-outputs", "o.json", "--junitxml=gate.xml", "-n", "2", "-k", "orders",
    ]  # fmt: skip
