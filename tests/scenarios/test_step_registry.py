"""The step registry: a new step kind is one module. The worked example of docs/scenarios.md ("Adding a step
kind or probe") is imported as a module of its own and run in a real scenario against the real stack."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from harness.errors import ScenarioError
from harness.scenarios import LOCAL_SPEC, load_scenario, registry
from harness.scenarios.fields import StepModel
from harness.scenarios.loader import required_capabilities
from harness.scenarios.report import ScenarioFailed
from harness.scenarios.runner import ScenarioSession
from harness.scenarios.schema import PROBE_KINDS, SAVE_ROOTS, STEP_KINDS, known_keys
from harness.scenarios.steps import BUILTIN
from harness.scenarios.targets import Capability, DeployedOutputs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scenarios.md"
NAMESPACES = ["ai:quota:", "ai:limit:", "ai:catalog:", "rl:", "celery:"]


def section() -> str:
    text = DOC.read_text()
    start = text.index("## Adding a step kind or probe")
    return text[start : text.index("\n## ", start + 1)]


def example_module() -> str:
    return re.findall(r"```python\n(.*?)```", section(), re.DOTALL)[0]


def example_scenario() -> str:
    return re.findall(r"```yaml expect_member\n(.*?)```", section(), re.DOTALL)[0]


@pytest.fixture
def member_kind(tmp_path: Path) -> Iterator[ModuleType]:
    """The docs' `expect_member` module, written to a file of its own and imported (which registers it)."""
    path = tmp_path / "expect_member.py"
    path.write_text(example_module())
    spec = importlib.util.spec_from_file_location("expect_member_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        if "expect_member" in registry.STEP_KINDS:
            registry.unregister("expect_member")


# A probe with a connection of its own (the superuser's, RLS off), still one module.
TABLE_MODULE = """
from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import Name, ProbeSpec, StepModel
from harness.scenarios.matchers import Expected

ADMIN = registry.register_connection(
    registry.Connection(
        "admin_database",
        local=lambda stack: psycopg.connect(stack.admin_database_url, autocommit=True),
        missing="the deployed database is private: expect_table is local-only",
    )
)


class TableProbe(ProbeSpec):
    table: Name
    tenant: Name
    count: Expected = None


class TableStep(StepModel):
    expect_table: TableProbe


def run(context: StepContext, step: TableStep) -> dict[str, Any]:
    spec = step.expect_table
    db = context.target.connection(ADMIN.name)
    tenant = context.tenants[spec.tenant]
    query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(sql.Identifier(spec.table))

    def attempt() -> Attempt:
        count = db.execute(query, (tenant.id,)).fetchone()[0]
        return Attempt([f"count: {p}" for p in context.check(spec.count, count)], {"count": count})

    return finish(*poll(attempt, spec.within))


KIND = registry.register(
    registry.StepKind(
        "expect_table", TableStep, run, save_roots=("count",), probe=True,
        needs=lambda step: [(ADMIN.name, ("expect_table",))],
    )
)
"""

TABLE_SCENARIO = """\
name: acme has two memberships
targets: [local, deployed]
tenants:
  acme: {users: {owner: {role: owner}, buyer: {role: member}}}
steps:
  - expect_table: {table: memberships, tenant: acme, count: 2}
    save: {members: count}
"""


@pytest.fixture
def table_kind(tmp_path: Path) -> Iterator[ModuleType]:
    path = tmp_path / "expect_table.py"
    path.write_text(TABLE_MODULE)
    spec = importlib.util.spec_from_file_location("expect_table_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        if "expect_table" in registry.STEP_KINDS:
            registry.unregister("expect_table")
        registry.CONNECTIONS.pop("admin_database", None)


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def deployed_spec() -> object:
    return DeployedOutputs(
        Path("o.json"), "https://api", "p", "c", ses_events_queue_url="q", bucket="b"
    ).spec()


# --- the registry derives the schema's tables ---------------------------------------------------------------


def test_the_builtin_kinds_come_from_their_modules() -> None:
    assert [kind.model.__module__.rsplit(".", 1)[1] for kind in registry.kinds()] == list(BUILTIN)
    assert list(STEP_KINDS) == [kind.key for kind in registry.kinds()]
    assert PROBE_KINDS == ["expect_email", "expect_object", "expect_rows", "expect_redis", "expect_task"]
    assert SAVE_ROOTS["request"] == ("status", "headers", "json", "body")
    assert SAVE_ROOTS["set"] == ()


def test_the_docs_table_lists_every_kind_with_its_save_roots() -> None:
    text = DOC.read_text()
    for kind in registry.kinds():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{kind.key}")), None)
        assert row is not None, f"docs/scenarios.md's step table has no row for {kind.key}"
        for root in kind.save_roots:
            assert f"`{root}`" in row or "| same |" in row, (kind.key, root)


def test_a_kind_key_or_model_is_registered_once(member_kind: ModuleType) -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(member_kind.KIND)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.StepKind("expect_other", member_kind.MemberStep, member_kind.run))

    class NothingStep(StepModel):
        something: int

    with pytest.raises(ValueError, match="needs a field named 'expect_nothing'"):
        registry.register(registry.StepKind("expect_nothing", NothingStep, member_kind.run))
    assert "expect_nothing" not in STEP_KINDS and "expect_other" not in STEP_KINDS


# --- the new kind at load time ------------------------------------------------------------------------------


def test_the_new_kind_is_one_module(member_kind: ModuleType, tmp_path: Path) -> None:
    assert STEP_KINDS["expect_member"] is member_kind.MemberStep
    assert "expect_member" in PROBE_KINDS and SAVE_ROOTS["expect_member"] == ("role",)
    assert "expect_member" in known_keys() and "user" in known_keys()
    loaded = load_scenario(write(tmp_path, example_scenario()), target=LOCAL_SPEC, namespaces=NAMESPACES)
    assert [step.kind for step in loaded.steps] == ["expect_member", "expect_member", "set"]
    assert loaded.steps[0].label == "expect_member acme.buyer of acme"
    assert required_capabilities(loaded.steps[0].step) == [(Capability.DATABASE, ("expect_member",))]


def test_without_the_module_the_kind_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, example_scenario()), target=LOCAL_SPEC, namespaces=NAMESPACES)
    assert re.search(
        r"s\.yaml:6: steps\[0\]: unknown step kind: a step needs one of request, fetch", str(info.value)
    )
    assert "expect_member" not in str(info.value).split("(got keys")[0]


def test_the_new_kind_keeps_file_line_and_dotted_key_errors(member_kind: ModuleType, tmp_path: Path) -> None:
    text = example_scenario().replace("user: acme.buyer, role: member", "user: acme.nobody, role: member")
    text = text.replace("save: {buyer_role: role}", "save: {buyer_role: json.role}")
    text += "  - expect_member: {tenant: acme, user: acme.owner, rolle: owner, within: 11m}\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text), target=LOCAL_SPEC, namespaces=NAMESPACES)
    message = str(info.value)
    assert "s.yaml:10: steps[3].expect_member.rolle: unknown key (did you mean 'role'?)" in message
    assert (
        "s.yaml:10: steps[3].expect_member.within: a duration must be more than 0 and at most 10m" in message
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(
            write(tmp_path, text.rsplit("  - expect_member", 1)[0]), target=LOCAL_SPEC, namespaces=NAMESPACES
        )
    message = str(info.value)
    assert "s.yaml:6: steps[0].expect_member.user: no actor 'acme.nobody'" in message
    assert (
        "s.yaml:7: steps[0].save.buyer_role: a expect_member step can save role (got 'json.role')" in message
    )


def test_a_target_without_its_capability_refuses_it(member_kind: ModuleType, tmp_path: Path) -> None:
    text = example_scenario().replace("targets: [local]", "targets: [local, deployed]")
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text), target=deployed_spec(), namespaces=NAMESPACES)  # type: ignore[arg-type]
    message = str(info.value)
    assert (
        "s.yaml:6: steps[0].expect_member: target deployed cannot run this: the deployed database is private"
        in message
    )
    only = text.replace("role: member}\n", "role: member}\n    only: [local]\n", 1).replace(
        "- expect_member: {tenant: acme, user: acme.owner",
        "- only: [local]\n    expect_member: {tenant: acme, user: acme.owner",
    )
    only = only.replace("the buyer is a ${buyer_role}", "done")
    assert load_scenario(write(tmp_path, only), target=deployed_spec(), namespaces=NAMESPACES).applicable  # type: ignore[arg-type]


# --- the new kind runs against the real stack ---------------------------------------------------------------


@pytest.mark.integration
def test_the_new_kind_runs_in_a_real_scenario(
    member_kind: ModuleType, scenario_session: ScenarioSession, tmp_path: Path
) -> None:
    loaded = load_scenario(write(tmp_path, example_scenario()), target=LOCAL_SPEC, namespaces=NAMESPACES)
    result = scenario_session.run(loaded)
    assert result.steps_passed == 3


@pytest.mark.integration
def test_the_new_kind_fails_with_what_it_saw(
    member_kind: ModuleType, scenario_session: ScenarioSession, tmp_path: Path
) -> None:
    text = example_scenario().replace("user: acme.buyer, role: member", "user: acme.buyer, role: owner")
    loaded = load_scenario(write(tmp_path, text), target=LOCAL_SPEC, namespaces=NAMESPACES)
    with pytest.raises(ScenarioFailed) as info:
        scenario_session.run(loaded)
    report = info.value.report
    assert report.failed_step is not None and report.failed_step.label == "expect_member acme.buyer of acme"
    assert report.failure is not None and report.failure.problems == ['role: expected "owner", got "member"']


def test_a_probe_with_its_own_connection_is_refused_where_it_cannot_connect(
    table_kind: ModuleType, tmp_path: Path
) -> None:
    assert LOCAL_SPEC.can("admin_database") and not deployed_spec().can("admin_database")  # type: ignore[attr-defined]
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, TABLE_SCENARIO), target=deployed_spec(), namespaces=NAMESPACES)  # type: ignore[arg-type]
    assert (
        "s.yaml:6: steps[0].expect_table: target deployed cannot run this: the deployed database is private: "
        "expect_table is local-only"
    ) in str(info.value)
    with pytest.raises(ValueError, match="already a capability"):
        registry.register_connection(registry.Connection("database"))


@pytest.mark.integration
def test_a_probe_with_its_own_connection_runs_on_the_real_stack(
    table_kind: ModuleType, scenario_session: ScenarioSession, tmp_path: Path
) -> None:
    loaded = load_scenario(write(tmp_path, TABLE_SCENARIO), target=LOCAL_SPEC, namespaces=NAMESPACES)
    assert scenario_session.run(loaded).steps_passed == 1
    wrong = TABLE_SCENARIO.replace("count: 2}", "count: 3}")
    with pytest.raises(ScenarioFailed) as info:
        scenario_session.run(load_scenario(write(tmp_path, wrong), target=LOCAL_SPEC, namespaces=NAMESPACES))
    assert info.value.report.failure is not None
    assert info.value.report.failure.problems == ["count: expected 3, got 2"]
