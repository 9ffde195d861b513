"""pytest plugin (entry point `pytest11`): the `stack` fixture, scenario files as tests, and scenario fixtures.

- `stack` (session): by default the first test that needs it starts a fresh stack on free ports in a
  temporary state dir and the session stops and wipes it at the end; `--stack attach` uses the stack already
  up (`nox -s up`). Under pytest-xdist the workers share one fresh stack (started by the first worker that
  needs it, stopped by the controller at the end), so `-n 2` means one stack, not two.
- Scenario files: YAML files under `--scenarios-dir` (default `<rootdir>/scenarios`), or named on the command
  line, are collected as tests (harness/scenarios/collect.py). `--target local|deployed` chooses where they
  run; `deployed` needs `--deployed-outputs FILE` (the stack's CloudFormation outputs).
- `tenant_factory`, `api_client`, `inbox` (and `scenario_target`, `scenario_session`) for Python tests.
- `pristine_database`: a migrated, empty database of the test's own, cloned from a template in milliseconds.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.testing import RunningStack, attach_stack, start_stack

if TYPE_CHECKING:
    from harness.clones import ClonedDatabase
    from harness.scenarios.collect import ScenarioFile
    from harness.scenarios.fixtures import ActorInbox, TenantFactory
    from harness.scenarios.http import ApiClient
    from harness.scenarios.runner import ScenarioSession
    from harness.scenarios.targets import Target

SHARED_STACK_ENV = "HARNESS_PYTEST_SHARED_STACK"
_SHARED_DIR = pytest.StashKey[Path]()
_EXTERNAL_AWS = pytest.StashKey[str]()  # the stack's external AWS endpoint, when it has one


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness")
    group.addoption(
        "--stack",
        choices=("fresh", "attach"),
        default="fresh",
        help="fresh: start a stack on free ports for this session (default); attach: use the running one",
    )
    group.addoption("--stack-no-app", action="store_true", help="start only the infrastructure")
    group.addoption(
        "--target",
        choices=("local", "deployed"),
        default="local",
        help="where scenario files run: the local stack (default) or a deployed one (--deployed-outputs)",
    )
    group.addoption(
        "--scenarios-dir",
        metavar="DIR",
        default=None,
        help="YAML files under DIR are scenarios (default: <rootdir>/scenarios)",
    )
    group.addoption(
        "--deployed-outputs",
        metavar="FILE",
        default=None,
        help="JSON outputs of the deployed stack (describe-stacks JSON or a flat object); with --target deployed",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fidelity_unproven(*ids): relies on AWS behaviours the local tier does not reproduce"
    )
    if config.getoption("--target") == "deployed" and not config.getoption("--deployed-outputs"):
        raise pytest.UsageError(
            "--target deployed needs --deployed-outputs FILE: the deployed stack's outputs (ApiUrl, UserPoolId, "
            "UserPoolClientId, ...); see docs/scenarios.md"
        )
    outputs = config.getoption("--deployed-outputs")
    if outputs and not Path(outputs).is_file():
        raise pytest.UsageError(f"--deployed-outputs {outputs}: no such file")
    if (
        _is_xdist_controller(config)
        and config.getoption("--stack") == "fresh"
        and SHARED_STACK_ENV not in os.environ
    ):
        shared = Path(tempfile.mkdtemp(prefix="harness-shared-stack-"))
        os.environ[SHARED_STACK_ENV] = str(shared)  # inherited by the workers xdist starts next
        config.stash[_SHARED_DIR] = shared


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Name the scenarios whose local pass proves nothing about some AWS behaviour (harness.fidelity)."""
    from harness.scenarios.collect import UNPROVEN_KEY

    if external := config.stash.get(_EXTERNAL_AWS, None):
        from harness.fidelity import aws_source_summary

        terminalreporter.section("fidelity: the stack's AWS is an external endpoint")
        terminalreporter.line(aws_source_summary("external", external))
        terminalreporter.line(
            "a scenario passing here proves the app's flow, not AWS's rules: run it on the harness's emulator "
            "(drop --aws-endpoint / [aws] endpoint) and on a deployed target"
        )
    unproven = config.stash.get(UNPROVEN_KEY, {})
    if not unproven:
        return
    terminalreporter.section("fidelity: not proven by the local tier")
    for path, ids in sorted(unproven.items()):
        terminalreporter.line(f"{path}: relies on {', '.join(ids)} (see docs/fidelity.md)")
    terminalreporter.line(
        "these scenarios must pass on a deployed target before promotion (the deploy gate checks)"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(_SHARED_DIR, None)
    if shared is None:
        return
    try:
        _stop_shared_stack(shared)
    finally:
        os.environ.pop(SHARED_STACK_ENV, None)
        shutil.rmtree(shared, ignore_errors=True)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from harness.scenarios.collect import ScenarioFile, is_scenario_file

    if not is_scenario_file(parent.config, file_path):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


# --- the stack ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[RunningStack]:
    """The running stack (infrastructure, provisioning, and the app unless --stack-no-app)."""
    if request.config.getoption("--stack") == "attach":
        yield _guarded(attach_stack())
        return
    with_app = not request.config.getoption("--stack-no-app")
    shared = os.environ.get(SHARED_STACK_ENV)
    if shared and hasattr(request.config, "workerinput"):
        yield _guarded(
            _shared_stack(Path(shared), with_app)
        )  # stopped by the controller (pytest_unconfigure)
        return
    running = start_stack(with_app=with_app)
    try:
        yield _guarded(running)
    finally:
        running.stop()


@pytest.fixture
def pristine_database(stack: RunningStack) -> Iterator[ClonedDatabase]:
    """A database of the test's own, migrated and empty, cloned from a template (harness/clones.py); dropped
    afterwards. `.database_url` (the runtime role, RLS enforced), `.migrator_url`, `.admin_url`, `.contract`
    (the backend's env contract pointed at it, to start an app process on it)."""
    from harness.clones import DatabaseCloner

    cloner = DatabaseCloner(stack.runner)
    clone = cloner.clone()
    try:
        yield clone
    finally:
        cloner.drop(clone.name)


def _guarded(running: RunningStack) -> RunningStack:
    """The stack, its secrets registered with the secret guard (no test output may show them)."""
    from harness.secret_guard import remember_all

    remember_all(running.secrets())
    return running


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """The secret guard (harness/secret_guard.py): a report whose traceback or captured output shows a
    secret the session knows fails, with the values masked before anything prints or stores it."""
    outcome = yield
    from harness.secret_guard import screen_report

    screen_report(outcome.get_result())  # type: ignore[attr-defined]


def _is_xdist_controller(config: pytest.Config) -> bool:
    return (
        config.pluginmanager.hasplugin("xdist")
        and getattr(config.option, "dist", "no") != "no"
        and bool(getattr(config.option, "numprocesses", None))
        and not hasattr(config, "workerinput")
    )


def _shared_stack(shared: Path, with_app: bool) -> RunningStack:
    """The xdist workers' one stack: the first worker starts it, the others attach to its state dir."""
    info = shared / "stack.json"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if info.exists():
            return _attach_state_dir(json.loads(info.read_text()))
        running = start_stack(with_app=with_app)
        info.write_text(
            json.dumps({"state_dir": str(running.state.root), "topology": str(running.topology.source)})
        )
        return running


def _attach_state_dir(info: dict[str, Any]) -> RunningStack:
    from harness.runner import LocalRunner
    from harness.state import StateDir
    from harness.topology import load_topology

    runner = LocalRunner(load_topology(Path(info["topology"])), StateDir(Path(info["state_dir"])))
    return RunningStack(runner, owned=False)


def _stop_shared_stack(shared: Path) -> None:
    info = shared / "stack.json"
    if info.exists():
        running = _attach_state_dir(json.loads(info.read_text()))
        running.owned = True
        running.stop()


# --- scenarios ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scenario_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The connected target of `--target`: the local `stack`, or the deployed stack of `--deployed-outputs`."""
    from harness.scenarios.collect import scenario_settings
    from harness.scenarios.targets import deployed_target, local_target

    settings = scenario_settings(request.config)
    if settings.outputs is None:
        stack = request.getfixturevalue("stack")
        if stack.runner.aws_endpoint:  # the summary says what such a run does not prove
            request.config.stash[_EXTERNAL_AWS] = stack.runner.aws_endpoint
        target = local_target(stack)
    else:
        target = deployed_target(settings.outputs, settings.topology)
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="session")
def scenario_session(scenario_target: Target) -> Iterator[ScenarioSession]:
    """Runs scenario files (one per process, one scenario at a time)."""
    from harness.scenarios.runner import ScenarioSession

    session = ScenarioSession(scenario_target)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def tenant_factory(scenario_session: ScenarioSession) -> Iterator[TenantFactory]:
    """`tenant_factory("shop", users={"owner": "owner", "buyer": "member"})`: fresh tenants, removed afterwards."""
    from harness.scenarios.fixtures import TenantFactory

    factory = TenantFactory(scenario_session)
    try:
        yield factory
    finally:
        problems = factory.cleanup()
        if problems:
            warnings.warn(f"tenant_factory cleanup incomplete: {'; '.join(problems)}", stacklevel=1)


@pytest.fixture(scope="session")
def api_client(scenario_session: ScenarioSession) -> ApiClient:
    """The API of the target: `api_client.as_actor(actor, tenant=handle).get("/api/v1/tenant")`."""
    return scenario_session.api


@pytest.fixture(scope="session")
def inbox(scenario_target: Target) -> ActorInbox:
    """Mail the app sent to actors: `inbox.wait_for(actor, subject_contains="Order", within=15)`."""
    from harness.scenarios.fixtures import ActorInbox

    if scenario_target.inbox is None:
        pytest.skip(f"no email probe on this target: {scenario_target.spec.why_not(_email_capability())}")
    return ActorInbox(scenario_target.inbox)


def _email_capability() -> Any:
    from harness.scenarios.targets import Capability

    return Capability.EMAIL
