"""The scenario examples in docs/scenarios.md load on both targets and pass on the local stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.scenarios import LOCAL_SPEC, load_scenario
from harness.scenarios.runner import ScenarioSession
from harness.scenarios.targets import DeployedOutputs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scenarios.md"
NAMESPACES = ["ai:quota:", "ai:limit:", "ai:catalog:", "rl:", "celery:"]


def examples() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    return [block for block in blocks if re.search(r"^name: ", block, re.MULTILINE) and "\nsteps:" in block]


def write(tmp_path: Path, index: int, text: str) -> Path:
    path = tmp_path / f"example{index}.yaml"
    path.write_text(text)
    return path


def test_the_docs_have_scenario_examples() -> None:
    assert examples()


@pytest.mark.parametrize("index", range(len(examples())))
def test_examples_load_on_both_targets(tmp_path: Path, index: int) -> None:
    path = write(tmp_path, index, examples()[index])
    deployed = DeployedOutputs(
        Path("o.json"), "https://api", "p", "c", ses_events_queue_url="q", bucket="b"
    ).spec()
    assert load_scenario(path, target=LOCAL_SPEC, namespaces=NAMESPACES).applicable
    assert load_scenario(path, target=deployed, namespaces=NAMESPACES).applicable


@pytest.mark.integration
@pytest.mark.parametrize("index", range(len(examples())))
def test_examples_pass_on_the_local_stack(
    scenario_session: ScenarioSession, tmp_path: Path, index: int
) -> None:
    path = write(tmp_path, index, examples()[index])
    scenario_session.run(load_scenario(path, target=LOCAL_SPEC, namespaces=NAMESPACES))
