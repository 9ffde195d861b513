"""Scenario files as pytest tests: one `ScenarioFile` collector per YAML file, one `ScenarioItem` in it.

A scenario item is a `pytest.Function` around `run_scenario`, so it gets fixtures (the session's
`scenario_session`, hence `stack`) like any test, works with pytest-xdist, and reports through the usual
channels (terminal, `--junitxml`). Loading happens at collection: an invalid file, or a step the chosen target
cannot run, is a collection error with the file:line of every problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError, ScenarioError
from harness.scenarios.loader import LoadedScenario, load_scenario
from harness.scenarios.runner import ScenarioSession
from harness.scenarios.targets import LOCAL_SPEC, DeployedOutputs, TargetSpec
from harness.topology import Topology, find_topology_file, load_topology

SCENARIO_SUFFIXES = (".yaml", ".yml")
DEFAULT_SCENARIOS_DIR = "scenarios"


@dataclass(frozen=True)
class ScenarioSettings:
    """What collection needs: the target's capabilities, the topology (namespaces), where scenarios live."""

    target: TargetSpec
    topology: Topology
    scenarios_dir: Path
    explicit_paths: tuple[Path, ...]
    outputs: DeployedOutputs | None

    def is_scenario_file(self, path: Path) -> bool:
        if path.suffix not in SCENARIO_SUFFIXES:
            return False
        path = path.resolve()
        roots = (self.scenarios_dir, *self.explicit_paths)
        return any(path == root or root in path.parents for root in roots)


_SETTINGS = pytest.StashKey[ScenarioSettings]()


def scenario_settings(config: pytest.Config) -> ScenarioSettings:
    """Built on first use (a test run with no scenario never loads the topology for them)."""
    if _SETTINGS in config.stash:
        return config.stash[_SETTINGS]
    target_name = config.getoption("--target")
    outputs_file = config.getoption("--deployed-outputs")
    outputs = DeployedOutputs.load(Path(outputs_file)) if target_name == "deployed" and outputs_file else None
    env = outputs.environment if outputs is not None else "local"
    try:
        topology = load_topology(_topology_file(config), env=env)
    except HarnessError as exc:
        raise pytest.UsageError(f"scenarios need the topology (environment {env!r}): {exc}") from None
    spec = outputs.spec() if outputs is not None else LOCAL_SPEC
    directory = config.getoption("--scenarios-dir") or str(config.rootpath / DEFAULT_SCENARIOS_DIR)
    settings = ScenarioSettings(
        target=spec,
        topology=topology,
        scenarios_dir=Path(directory).resolve(),
        explicit_paths=_explicit_paths(config),
        outputs=outputs,
    )
    config.stash[_SETTINGS] = settings
    return settings


def _topology_file(config: pytest.Config) -> Path:
    """`$HARNESS_TOPOLOGY`, else topology.toml above the current directory, else above the rootdir."""
    try:
        return find_topology_file(config.invocation_params.dir)
    except HarnessError:
        return find_topology_file(config.rootpath)


def _explicit_paths(config: pytest.Config) -> tuple[Path, ...]:
    """YAML files named on the command line, and directories named `scenarios` (a copy of scenarios/ elsewhere).

    Other directories are not: `pytest tests` must not turn a test's YAML fixture into a scenario.
    """
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return ()
    found: list[Path] = []
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
        if (path.is_file() and path.suffix in SCENARIO_SUFFIXES) or (
            path.is_dir() and path.name == DEFAULT_SCENARIOS_DIR
        ):
            found.append(path)
    return tuple(found)


def is_scenario_file(config: pytest.Config, path: Path) -> bool:
    if path.suffix not in SCENARIO_SUFFIXES:
        return False
    return scenario_settings(config).is_scenario_file(path)


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        settings = scenario_settings(self.config)
        namespaces = [ns.prefix for ns in settings.topology.redis.namespaces]
        try:
            loaded = load_scenario(_shown_path(self.path), target=settings.target, namespaces=namespaces)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        item = ScenarioItem.from_parent(self, name=loaded.name.replace("::", ":"), callobj=run_scenario)
        item.loaded = loaded
        if not loaded.applicable:
            targets = ", ".join(loaded.scenario.targets)
            item.add_marker(
                pytest.mark.skip(reason=f"valid on {targets}; this run targets {settings.target.name}")
            )
        unproven = unproven_behaviours(self.path, aws_source(settings))
        if unproven:
            # The fidelity ledger: a local pass proves nothing about these; the deploy gate requires a deployed pass.
            item.add_marker(pytest.mark.fidelity_unproven(*unproven))
            item.user_properties.append(("fidelity_unproven_locally", " ".join(unproven)))
            if settings.target.name == "local":
                self.config.stash.setdefault(UNPROVEN_KEY, {})[str(_shown_path(self.path))] = unproven
        yield item


UNPROVEN_KEY = pytest.StashKey[dict[str, tuple[str, ...]]]()


def aws_source(settings: ScenarioSettings) -> str:
    """The local stack's AWS source as far as collection can tell: "external" when HARNESS_AWS_ENDPOINT or the
    topology's `[aws] endpoint` names one (the stack fixture reports the stack's own at the end), else "harness"."""
    from harness.tier_choice import AWS_ENDPOINT_ENV

    if settings.outputs is None and (os.environ.get(AWS_ENDPOINT_ENV) or settings.topology.aws.endpoint):
        return "external"
    return "harness"


def unproven_behaviours(path: Path, source: str = "harness") -> tuple[str, ...]:
    """Ids of the behaviours this scenario relies on that the local stack does not prove (harness.fidelity):
    those its emulator does not reproduce, or, on an external AWS endpoint, all of them."""
    from harness import fidelity

    deps = fidelity.scenario_dependencies()
    key = next(
        (k for k in deps if Path(k).name == path.name and path.parent.name == Path(k).parent.name), None
    )
    if key is None:
        return ()
    return tuple(b.id for b in fidelity.unproven_on(source, deps[key]))


def _shown_path(path: Path) -> Path:
    """The path relative to the current directory when it is below it (shorter messages)."""
    try:
        return path.resolve().relative_to(Path(os.getcwd()).resolve())
    except ValueError:
        return path


class ScenarioItem(pytest.Function):
    loaded: LoadedScenario

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.line - 1, f"scenario: {self.loaded.name}"


def run_scenario(scenario_session: ScenarioSession, request: pytest.FixtureRequest) -> None:
    """The body of every scenario item."""
    item = request.node
    assert isinstance(item, ScenarioItem)
    result = scenario_session.run(item.loaded)
    item.user_properties.append(("target", scenario_session.target.name))
    item.user_properties.append(("run_id", result.run_id))
    for name, seconds in result.timings.items():
        item.user_properties.append((name, f"{seconds:.3f}"))
    if result.cleanup_problems:
        import warnings

        warnings.warn(
            f"{item.loaded.source}: cleanup of run {result.run_id} incomplete: {'; '.join(result.cleanup_problems)}",
            stacklevel=1,
        )
