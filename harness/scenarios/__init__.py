"""The scenario engine: YAML scenario files that drive the API as real users of real tenants and assert on every
side effect, on the local stack or a deployed one (docs/scenarios.md).

- `load_scenario` (loader.py): YAML with line numbers -> typed schema -> whole-file checks for a target;
- `ScenarioSession` (runner.py): runs a loaded scenario: fresh actors, steps, audits, cleanup;
- `run_steps` / `run_step` / `StepContext` (execute.py): step execution, for code that drives steps itself;
- the step kinds (steps/, one module each) and their registry (registry.py), from which the schema's union,
  the loader's checks and the dispatch are derived;
- `local_target` / `deployed_target` (targets.py): the connected targets and their probes;
- collect.py: the pytest collection of scenario files (the plugin is harness/pytest_plugin.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.scenarios.loader import LoadedScenario, load_scenario
    from harness.scenarios.targets import LOCAL_SPEC, Capability, DeployedOutputs, TargetSpec

__all__ = ["LOCAL_SPEC", "Capability", "DeployedOutputs", "LoadedScenario", "TargetSpec", "load_scenario"]

# Imported on first use: `harness.scenarios.load.options` (the CLI's `scenarios load` flags) must not pay for
# the whole engine (schema, steps, probes: psycopg, redis, httpx) on every `harness` command.
_WHERE = {"LoadedScenario": "loader", "load_scenario": "loader", "LOCAL_SPEC": "targets",
          "Capability": "targets", "DeployedOutputs": "targets", "TargetSpec": "targets"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"harness.scenarios.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'harness.scenarios' has no attribute {name!r}")
