"""What `harness scenarios run|check` do (harness/cli.py only parses the options).

`run` is pytest underneath, so a CLI run and `pytest scenarios/` behave the same: same collection, same
reports, same JUnit XML.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError, ScenarioError
from harness.scenarios.loader import load_scenario
from harness.scenarios.targets import LOCAL_SPEC, DeployedOutputs, TargetSpec
from harness.topology import Topology, load_topology

DEFAULT_FILES = ("scenarios",)


def pytest_arguments(
    files: Sequence[Path],
    *,
    target: str,
    deployed_outputs: Path | None = None,
    junit_xml: Path | None = None,
    workers: int = 0,
    keyword: str | None = None,
) -> list[str]:
    """The pytest command line of a scenario run."""
    args = [str(f) for f in files or [Path(d) for d in DEFAULT_FILES]]
    args += ["--target", target, "-p", "no:cacheprovider", "-r", "fEs"]
    if target == "local":
        args += ["--stack", "attach"]
    if deployed_outputs is not None:
        args += ["--deployed-outputs", str(deployed_outputs)]
    if junit_xml is not None:
        args += [f"--junitxml={junit_xml}"]
    if workers:
        args += ["-n", str(workers)]
    if keyword:
        args += ["-k", keyword]
    return args


def run_scenarios(args: Sequence[str], *, state_dir: Path | None, topology_file: Path | None) -> int:
    """Run pytest in this process with the stack of `state_dir` (local target); returns pytest's exit code."""
    import pytest

    if state_dir is not None:
        os.environ["HARNESS_STATE_DIR"] = str(state_dir)
    if topology_file is not None:
        os.environ["HARNESS_TOPOLOGY"] = str(topology_file)
    return int(pytest.main(list(args)))


def scenario_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths or [Path(d) for d in DEFAULT_FILES]:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    if not files:
        raise HarnessError(f"no scenario files in {', '.join(map(str, paths or DEFAULT_FILES))}")
    return files


def target_spec(target: str, deployed_outputs: Path | None) -> tuple[TargetSpec, str]:
    """The target's capabilities and its topology environment."""
    if target == "local":
        return LOCAL_SPEC, "local"
    if deployed_outputs is None:
        raise HarnessError("--target deployed needs --deployed-outputs FILE", hint="see docs/scenarios.md")
    outputs = DeployedOutputs.load(deployed_outputs)
    return outputs.spec(), outputs.environment


def check_scenarios(
    paths: Sequence[Path], *, target: str, deployed_outputs: Path | None, topology_file: Path
) -> list[tuple[Path, str, str]]:
    """Load every file for `target` without running anything: (file, "ok" | "skipped" | "invalid", detail)."""
    spec, env = target_spec(target, deployed_outputs)
    topology: Topology = load_topology(topology_file, env=env)
    namespaces = [ns.prefix for ns in topology.redis.namespaces]
    results: list[tuple[Path, str, str]] = []
    for path in scenario_files(paths):
        try:
            loaded = load_scenario(path, target=spec, namespaces=namespaces)
        except ScenarioError as exc:
            results.append((path, "invalid", str(exc)))
            continue
        if not loaded.applicable:
            results.append((path, "skipped", f"valid on {', '.join(loaded.scenario.targets)} only"))
        else:
            runs = sum(1 for step in loaded.steps if step.runs)
            results.append((path, "ok", f"{loaded.name}: {runs} of {len(loaded.steps)} steps on {target}"))
    return results
