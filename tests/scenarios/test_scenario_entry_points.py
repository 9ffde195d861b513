"""The runner's entry points for code that drives steps itself (a load generator): a `ScenarioRun` subclass
plugged into a session, and `execute.run_steps` on the run's `StepContext`, against the real stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenarios import LOCAL_SPEC, load_scenario
from harness.scenarios.execute import run_steps
from harness.scenarios.report import ScenarioFailed, StepRecord
from harness.scenarios.runner import ScenarioRun, ScenarioSession

NAMESPACES = ["ai:quota:", "ai:limit:", "ai:catalog:", "rl:", "celery:"]
SCENARIO = """\
name: the health endpoint, again and again
targets: [local]
tenants:
  acme: {users: {owner: {role: owner}}}
steps:
  - request: GET /api/v1/health
    expect: {status: 200, json: {status: ok}}
    save: {status: json.status}
  - request: GET /api/v1/tenant
    as: acme.owner
    expect: {status: 200, json: {slug: "${tenants.acme.slug}"}}
    save: {slug: json.slug}
"""


class Rounds(ScenarioRun):
    """The same steps three times with the same actors and tenants (what a load generator does)."""

    rounds = 3

    def _steps(self) -> None:
        super()._steps()  # the first round, recorded in the report
        for _ in range(self.rounds - 1):
            records = [
                StepRecord(p.index + 1, p.label, self.loaded.where(p), "not run") for p in self.loaded.steps
            ]
            failed = run_steps(self.context, self.loaded.steps, records)
            if failed is not None:
                self.report.failed_step, self.report.failure = failed
                return
            assert [r.status for r in records] == ["passed", "passed"]


class RoundsSession(ScenarioSession):
    run_class = Rounds


@pytest.mark.integration
def test_a_session_runs_its_run_class(scenario_session: ScenarioSession, tmp_path: Path) -> None:
    path = tmp_path / "rounds.yaml"
    path.write_text(SCENARIO)
    loaded = load_scenario(path, target=LOCAL_SPEC, namespaces=NAMESPACES)
    session = RoundsSession(scenario_session.target)
    try:
        result = session.run(loaded)
        assert result.steps_passed == 2
        assert result.cleanup_problems == []
        failing = load_scenario(
            tmp_path / "failing.yaml",
            target=LOCAL_SPEC,
            namespaces=NAMESPACES,
            text=SCENARIO.replace("{status: 200, json: {status: ok}}", "{status: 201}"),
        )
        with pytest.raises(ScenarioFailed) as info:
            session.run(failing)
        assert info.value.report.failure is not None
        assert info.value.report.failure.problems == ["status: expected 201, got 200"]
    finally:
        session.close()
