"""`expect_task:`: Celery tasks of a tenant enqueued during the run, completed or failed (local only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import Name, ProbeSpec, StepModel
from harness.scenarios.matchers import Expected, Matcher, check, render_expected, show
from harness.scenarios.registry import CheckScope, Need, Problem
from harness.scenarios.targets import Capability

AT_LEAST_ONE = Matcher(ge=1)


class TaskProbe(ProbeSpec):
    name: str = Field(description="the Celery task name, e.g. emails.order_confirmation")
    tenant: Name
    state: Literal["completed", "failed"] = "completed"
    count: Expected = None


class TaskStep(StepModel):
    expect_task: TaskProbe


def run(context: StepContext, step: TaskStep) -> dict[str, Any]:
    spec = step.expect_task
    probe = context.target.tasks
    assert probe is not None and context.begin_mark is not None
    tenant = context.tenants[spec.tenant]
    count = (
        render_expected(spec.count, context.variables) if "count" in spec.model_fields_set else AT_LEAST_ONE
    )
    begin = context.begin_mark

    def attempt() -> Attempt:
        runs = probe.runs(spec.name, tenant.id, since=begin)
        matching = [r for r in runs if r.state == spec.state]
        problems = [
            f"{spec.name} tasks {spec.state} for tenant {spec.tenant}: {p}"
            for p in check(count, len(matching))
        ]
        outcome: dict[str, Any] = {"count": len(matching), "tasks": [r.outcome() for r in runs]}
        if matching:
            outcome |= matching[0].outcome()
        observed = "\n".join(f"- {r.name}[{r.id}] {r.state} {show(r.result, 200)}" for r in runs) or (
            f"no {spec.name} task enqueued for tenant {spec.tenant} ({tenant.id}) during this run"
        )
        return Attempt(problems, outcome, observed=observed)

    return finish(*poll(attempt, spec.within))


def needs(step: TaskStep) -> Iterable[Need]:
    yield Capability.TASKS, ("expect_task",)


def describe(step: TaskStep) -> str:
    return f"expect_task {step.expect_task.name} {step.expect_task.state}"


def check_step(step: TaskStep, scope: CheckScope) -> Iterable[Problem]:
    yield from scope.tenant(step.expect_task.tenant, ("expect_task", "tenant"))


KIND = registry.register(
    registry.StepKind(
        "expect_task",
        TaskStep,
        run,
        save_roots=("id", "state", "result", "count", "tasks"),
        probe=True,
        needs=needs,
        describe=describe,
        check=check_step,
    )
)
