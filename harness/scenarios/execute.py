"""Step execution: run a scenario's planned steps in order against a `StepContext` (the run's variables,
actors, tenants and the connected target), dispatching each to its kind (harness/scenarios/registry.py).

The entry points for code that drives steps itself (a load generator, a custom runner):

- `run_steps(context, planned, records)`: every step in order, recording each; stops at the first failure
  and returns it (`StepFailure`) or None;
- `run_step(context, planned)`: one step, its `save:` applied; raises `StepFailure`.

`runner.ScenarioSession` builds the context (fresh actors and tenants) and calls `run_steps`; the step kinds
use `poll`/`finish` and the context's `text`/`value`/`check` helpers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ScenarioError
from harness.readiness import NotYet, WaitTimeout, wait_for
from harness.scenarios import registry
from harness.scenarios.matchers import Expected, check, render_expected, show
from harness.scenarios.paths import Missing, parse_path, resolve
from harness.scenarios.report import Masker, StepFailure, StepRecord
from harness.scenarios.templates import UndefinedVariable, render, render_text

if TYPE_CHECKING:
    from harness.scenarios.actors import Actor, TenantHandle
    from harness.scenarios.fields import StepModel
    from harness.scenarios.http import ApiClient, Exchange
    from harness.scenarios.loader import PlannedStep
    from harness.scenarios.targets import Target


@dataclass
class StepContext:
    """What a step runs against: the target and its API client, the run's actors, tenants and variables.

    `begin_mark` is the Redis monitor's mark for this run (task probes look for tasks enqueued since it)."""

    target: Target
    api: ApiClient
    masker: Masker
    variables: dict[str, Any] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    tenants: dict[str, TenantHandle] = field(default_factory=dict)
    saved: list[str] = field(default_factory=list)
    begin_mark: str | None = None

    def define(self, name: str, value: Any) -> None:
        """Set a variable the scenario's later steps (and the report) see."""
        self.variables[name] = value
        self.saved.append(name)

    def text(self, template: str) -> str:
        """`template` with its `${...}` filled in (raises `UndefinedVariable`)."""
        return render_text(template, self.variables)

    def value(self, value: Any) -> Any:
        """A structure with every `${...}` filled in."""
        return render(value, self.variables)

    def check(self, expected: Expected, actual: Any) -> list[str]:
        """The problems of `actual` against an expectation whose templates are filled in first."""
        return check(render_expected(expected, self.variables), actual)


@dataclass
class Attempt:
    """One try of a step: its problems (none: it holds), its outcome, and what to show when it fails."""

    problems: list[str]
    outcome: dict[str, Any]
    exchange: Exchange | None = None
    observed: str | None = None


def poll(attempt: Callable[[], Attempt], within: float | None) -> tuple[Attempt, int, float]:
    """Try until the attempt has no problems or `within` seconds passed (backoff 50 ms -> 1 s); the last
    attempt, how many there were and how long it took (harness.readiness.wait_for)."""
    started = time.monotonic()
    tries = 0

    def holds() -> Attempt | NotYet:
        nonlocal tries
        tries += 1
        result = attempt()
        return NotYet("; ".join(result.problems), seen=result) if result.problems else result

    try:
        result = wait_for("step", holds, timeout=within or 0.0, max_interval=1.0)
    except WaitTimeout as exc:
        result = exc.last
    return result, tries, time.monotonic() - started


def finish(result: Attempt, tries: int, waited: float) -> dict[str, Any]:
    """The outcome of the last attempt, or a `StepFailure` with its problems."""
    if result.problems:
        raise StepFailure(result.problems, result.exchange, result.observed, tries, waited)
    return result.outcome


def run_step(context: StepContext, planned: PlannedStep) -> dict[str, Any]:
    """Run one step (dispatched to its registered kind) and apply its `save:`; returns its outcome."""
    step = planned.step
    outcome = registry.kind_for(step).run(context, step)
    save(context, step, outcome)
    return outcome


def save(context: StepContext, step: StepModel, outcome: Mapping[str, Any]) -> None:
    for name, path in step.save.items():
        value = resolve(outcome, parse_path(path))
        if isinstance(value, Missing):
            raise StepFailure([f"save {name}: {path}: {value.reason}"], observed=outcome_text(outcome))
        context.define(name, value)


@dataclass
class StepEvent:
    """What a `RunHooks.on_step` callback sees of one executed step (for load: timings per step)."""

    planned: PlannedStep
    record: StepRecord
    seconds: float  # wall time of the step, polling included
    status: int | None  # the HTTP status of a request step (None for probes and transport errors)
    failure: StepFailure | None


@dataclass
class RunHooks:
    """How a caller other than the test runner (`harness scenarios load`) takes part in a run.

    `runs(planned)`: False skips an applicable step (load samples its probes); `on_step`: called after each
    executed step; `audits=False`: the per-run audits are left to the caller (load audits once at the end).
    """

    runs: Callable[[PlannedStep], bool] | None = None
    on_step: Callable[[StepEvent], None] | None = None
    audits: bool = True


def run_steps(
    context: StepContext,
    planned: Iterable[PlannedStep],
    records: Iterable[StepRecord],
    hooks: RunHooks | None = None,
) -> tuple[StepRecord, StepFailure] | None:
    """Run the steps that run on this target in order, setting each record's status; stops at the first
    failure and returns (its record, the failure), or None when every step passed."""
    hooks = hooks or RunHooks()
    for step, record in zip(planned, records, strict=True):
        if not step.runs:
            continue
        if hooks.runs is not None and not hooks.runs(step):
            record.status = "skipped"
            continue
        clock = time.perf_counter()
        failure: StepFailure | None = None
        outcome: dict[str, Any] = {}
        try:
            outcome = run_step(context, step)
        except StepFailure as exc:
            failure = exc
        except (UndefinedVariable, ScenarioError) as exc:  # a saved value lacks a path; Cognito refused ...
            failure = StepFailure([str(exc)])
        record.status = "failed" if failure else "passed"
        if hooks.on_step is not None:
            exchange = failure.exchange if failure else None
            status = exchange.status if exchange else outcome.get("status")
            seconds = time.perf_counter() - clock
            code = status if isinstance(status, int) else None
            hooks.on_step(StepEvent(step, record, seconds, code, failure))
        if failure:
            return record, failure
    return None


def outcome_text(outcome: Mapping[str, Any]) -> str:
    return show({k: v for k, v in outcome.items() if k != "body"}, 1500)
