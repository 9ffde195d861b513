"""What a stack proves depends on its AWS source: the harness's emulator (the ledger as written) or an external
endpoint (nothing of the ledger; the scenario collection marks every dependency unproven)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import fidelity
from harness.errors import HarnessError
from harness.scenarios.collect import ScenarioSettings, aws_source, unproven_behaviours
from harness.scenarios.targets import LOCAL_SPEC
from harness.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


def test_an_external_endpoint_proves_none_of_the_ledger() -> None:
    assert fidelity.unproven_on("external") == fidelity.behaviours()
    assert fidelity.unproven_on("harness") == fidelity.unproven_locally()
    summary = fidelity.aws_source_summary("external", "http://127.0.0.1:4566")
    assert "http://127.0.0.1:4566" in summary and "fidelity checks are not enforced there" in summary
    assert f"{len(fidelity.emulator_checks())} fidelity checks enforced" in fidelity.aws_source_summary(
        "harness"
    )
    with pytest.raises(HarnessError, match="unknown AWS source"):
        fidelity.unproven_on("localstack")


def test_scenario_collection_marks_every_dependency_unproven_on_an_external_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ScenarioSettings(
        target=LOCAL_SPEC,
        topology=load_topology(ROOT / "topology.toml"),
        scenarios_dir=ROOT / "scenarios",
        explicit_paths=(),
        outputs=None,
    )
    monkeypatch.delenv("HARNESS_AWS_ENDPOINT", raising=False)
    assert aws_source(settings) == "harness"
    monkeypatch.setenv("HARNESS_AWS_ENDPOINT", "http://127.0.0.1:4599")
    assert aws_source(settings) == "external"
    signup = ROOT / "scenarios" / "signup.yaml"
    deps = fidelity.scenario_dependencies()["scenarios/signup.yaml"]
    assert unproven_behaviours(signup, "external") == tuple(dict.fromkeys(deps))
    assert set(unproven_behaviours(signup, "harness")) < set(deps)
