"""A Locust `User` class per scenario file. One iteration of a user is one fresh run of its scenario.

Why fresh tenants and actors per iteration rather than a pool prepared before the ramp: a scenario's
assertions are written for its own new tenant (`count: 1` order rows, the one confirmation email, the
invite that is accepted once), so reusing tenants across iterations would turn correct behaviour into
failures. Setting up a tenant is itself traffic a launch day has (sign-ups, tenant creation); it is reported
under `setup`, apart from the steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gevent
from locust import User, between, constant, task

from harness.scenarios.load.collector import CLEANUP, RATE_LIMITED, SETUP, Collector, step_name
from harness.scenarios.loader import LoadedScenario
from harness.scenarios.report import Masker, ScenarioFailed
from harness.scenarios.runner import RunHooks, ScenarioSession, StepEvent
from harness.scenarios.targets import Target


@dataclass
class LoadContext:
    """What every user of this process shares: the connected target, the loaded files, the counts."""

    target: Target
    scenarios: dict[str, LoadedScenario]  # by file stem
    collector: Collector


class ScenarioUser(User):
    """Runs `scenario_stem`'s scenario once per iteration on the process's target."""

    abstract = True
    scenario_stem: str = ""
    load_context: LoadContext | None = None  # set by main before the runner starts

    def on_start(self) -> None:
        assert self.load_context is not None
        self._session = ScenarioSession(self.load_context.target)

    def on_stop(self) -> None:
        self._session.close()

    @task
    def iterate(self) -> None:
        context = self.load_context
        assert context is not None
        if context.collector.draining:  # the run is ending: no new scenario run
            gevent.sleep(0.5)
            return
        loaded = context.scenarios[self.scenario_stem]
        fire = self.environment.events.request.fire
        stem = self.scenario_stem
        masker = Masker(context.target.secrets)

        def on_step(event: StepEvent) -> None:
            context.collector.step(event)
            name = step_name(stem, event.planned)
            if event.failure is not None and event.status == 429 and not _expects_429(event):
                fire(request_type=RATE_LIMITED, name=name, response_time=event.seconds * 1000,
                     response_length=0, exception=None, context={})  # fmt: skip
                return
            fire(
                request_type=event.planned.kind,
                name=name,
                response_time=event.seconds * 1000,
                response_length=0,
                exception=_StepFailed(masker.text(str(event.failure))[:300]) if event.failure else None,
                context={},
            )

        hooks = RunHooks(runs=context.collector.sampled, on_step=on_step, audits=False)
        failure: str | None = "interrupted"
        timings: dict[str, float] = {}
        context.collector.started()
        try:
            timings = self._session.run(loaded, hooks).timings
            failure = None
        except ScenarioFailed as exc:
            failure = _first_problem(exc)
        finally:
            context.collector.iteration(failure)
        if "setup_s" in timings:
            fire(request_type=SETUP, name=f"{stem} setup", response_time=timings["setup_s"] * 1000,
                 response_length=0, exception=None, context={})  # fmt: skip
        if "cleanup_s" in timings:
            fire(request_type=CLEANUP, name=f"{stem} cleanup", response_time=timings["cleanup_s"] * 1000,
                 response_length=0, exception=None, context={})  # fmt: skip


class _StepFailed(Exception):
    """A step's expectations did not hold (Locust counts it as a failure of that step)."""


def _expects_429(event: StepEvent) -> bool:
    expect = getattr(event.planned.step, "expect", None)
    statuses: Sequence[int] | None = getattr(expect, "status", None)
    return bool(statuses) and 429 in (statuses or ())


def _first_problem(exc: ScenarioFailed) -> str:
    report = exc.report
    if report.failed_step is not None and report.failure is not None:
        text = f"{report.failed_step.where}: {'; '.join(report.failure.problems)}"
    else:
        text = report.setup_error or report.error or "failed"
    return exc.masker.text(text)[:300]


def user_classes(
    stems: Sequence[str], weights: dict[str, int], think: tuple[float, float]
) -> list[type[User]]:
    """One class per file stem, same names in every process (Locust's master dispatches users by name)."""
    wait: Any = constant(think[0]) if think[0] == think[1] else between(*think)
    classes: list[type[User]] = []
    for stem in stems:
        if weights.get(stem, 1) <= 0:
            continue
        name = "Scenario_" + "".join(c if c.isalnum() else "_" for c in stem)
        attrs = {"scenario_stem": stem, "weight": weights.get(stem, 1), "wait_time": wait, "abstract": False}
        classes.append(type(name, (ScenarioUser,), attrs))
    return classes
