"""Runs a loaded scenario on a target: fresh actors and tenants, the steps in order, the audits, the cleanup.

A `ScenarioSession` is one per process (one per pytest-xdist worker) and runs one scenario at a time; runs in
different processes share nothing but the stack, and each run's tenants and users carry its own run id.

The reason-to-change split: this module is the session (fresh actors and tenants, the run's phases, the audits,
the cleanup); harness/scenarios/execute.py runs the steps (`run_steps`, `run_step`, `StepContext`: the entry
points for code that drives steps itself, such as a load generator); harness/scenarios/report.py reports
(`ScenarioReport`, `ScenarioFailed`, `ScenarioResult`); each step kind runs in its own module under
harness/scenarios/steps/.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from harness.errors import ScenarioError
from harness.scenarios import audits
from harness.scenarios.actors import ActorFactory, SetupError
from harness.scenarios.execute import (
    Attempt,
    RunHooks,
    StepContext,
    StepEvent,
    finish,
    poll,
    run_step,
    run_steps,
)
from harness.scenarios.http import ApiClient
from harness.scenarios.loader import LoadedScenario
from harness.scenarios.report import (
    Masker,
    ScenarioFailed,
    ScenarioReport,
    ScenarioResult,
    StepRecord,
    brief_traceback,
)
from harness.scenarios.targets import Capability, Target
from harness.scenarios.templates import render

__all__ = [
    "Attempt",
    "RunHooks",
    "ScenarioResult",
    "ScenarioRun",
    "ScenarioSession",
    "StepContext",
    "StepEvent",
    "finish",
    "new_run_id",
    "poll",
    "run_step",
    "run_steps",
]


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


class ScenarioRun:
    """One run of one scenario: `execute()` runs the phases `_setup` (fresh actors, tenants and the variables,
    in `self.context`, a `StepContext`), `_steps` (`execute.run_steps`), `_audits`, then the cleanup, and
    returns a `ScenarioResult` or raises `ScenarioFailed`."""

    def __init__(
        self, session: ScenarioSession, loaded: LoadedScenario, hooks: RunHooks | None = None
    ) -> None:
        self.session = session
        self.hooks = hooks or RunHooks()
        self.target = session.target
        self.api = session.api
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.run_id = new_run_id()
        self.masker = Masker(self.target.secrets)
        self.factory = ActorFactory(self.target, self.api, self.run_id, on_secret=self.masker.add)
        self.context = StepContext(self.target, self.api, self.masker)
        self.started_at = datetime.now(UTC)
        self.report = ScenarioReport(self.scenario.name, str(loaded.source), self.target.name, self.run_id)

    # -- the run -----------------------------------------------------------------------------------------
    def execute(self) -> ScenarioResult:
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        try:
            if self.target.monitor is not None:
                self.context.begin_mark = self.target.monitor.begin(self.run_id)
            try:
                self._setup()
            except SetupError as exc:
                self.report.setup_error, self.report.setup_exchange = exc.message, exc.exchange
            except ScenarioError as exc:
                self.report.setup_error = str(exc)
            timings["setup_s"] = time.perf_counter() - clock
            clock = time.perf_counter()
            if not self.report.setup_error:
                self._steps()
            timings["steps_s"] = time.perf_counter() - clock
            clock = time.perf_counter()
            self._audits()
            timings["audits_s"] = time.perf_counter() - clock
        except Exception as exc:  # a bug or a dead dependency: report it like a failure, then clean up
            self.report.error = brief_traceback(exc)
        finally:
            if self.context.begin_mark is not None and self.target.monitor is not None:
                try:  # the audits did not run: close the window anyway, or the monitor keeps recording
                    self.target.monitor.end(self.context.begin_mark)
                except Exception:
                    pass
            clock = time.perf_counter()
            self.report.cleanup_problems = self.factory.cleanup()
            timings["cleanup_s"] = time.perf_counter() - clock
        self.report.variables = {k: self.context.variables[k] for k in self._reported_variables()}
        if self.target.report_dir is not None:
            from harness.scenarios.last_run import save_last_run

            try:
                save_last_run(self.target.report_dir, self.report, self.masker, timings, self.started_at)
            except OSError:
                pass  # the console's copy of the report is a convenience; the run's result stands
        if self.report.failed:
            raise ScenarioFailed(self.report, self.masker)
        return ScenarioResult(
            run_id=self.run_id,
            steps_passed=sum(1 for s in self.report.steps if s.status == "passed"),
            steps_skipped=sum(1 for s in self.report.steps if s.status == "skipped"),
            timings=timings,
            audits_run=self.report.audits_run,
            audits_skipped=self.report.audits_skipped,
            cleanup_problems=self.report.cleanup_problems,
        )

    def _reported_variables(self) -> list[str]:
        names = ["tenants", *self.scenario.vars, *self.context.saved]
        return [n for n in dict.fromkeys(names) if n in self.context.variables]

    def _setup(self) -> None:
        for key, spec in self.scenario.users.items():
            self.context.actors[key] = self.factory.user(key, name=spec.name)
        for key, tenant in self.scenario.tenants.items():
            members = {u: (spec.role or "member", spec.name) for u, spec in tenant.users.items()}
            handle = self.factory.tenant(key, name=tenant.name, users=members)
            self.context.tenants[key] = handle
            for user_key, actor in handle.users.items():
                self.context.actors[f"{key}.{user_key}"] = actor
        users: dict[str, Any] = {k: self.context.actors[k].variables() for k in self.scenario.users}
        for key, handle in self.context.tenants.items():
            users[key] = {u: a.variables() for u, a in handle.users.items() if not u.startswith("_")}
        self.context.variables = {
            "run": {
                "id": self.run_id,
                "utc_month": self.started_at.strftime("%Y-%m"),
                "started_at": self.started_at.isoformat(),
            },
            "target": {"name": self.target.name, "api_url": self.target.api_url},
            "tenants": {k: h.variables() for k, h in self.context.tenants.items()},
            "users": users,
        }
        self.context.variables |= render(dict(self.scenario.vars), self.context.variables)

    def _steps(self) -> None:
        planned = self.loaded.steps
        self.report.steps = [
            StepRecord(p.index + 1, p.label, self.loaded.where(p), "not run" if p.runs else "skipped")
            for p in planned
        ]
        failed = run_steps(self.context, planned, self.report.steps, self.hooks)
        if failed is not None:
            self.report.failed_step, self.report.failure = failed

    # -- audits ------------------------------------------------------------------------------------------
    def _audits(self) -> None:
        target, report = self.target, self.report
        monitor = target.monitor
        if not self.hooks.audits:  # the caller audits (once, at the end of a load run)
            if monitor is not None and self.context.begin_mark is not None:
                monitor.end(self.context.begin_mark)
                self.context.begin_mark = None
            return
        if monitor is not None and self.context.begin_mark is not None:
            activity = monitor.end(self.context.begin_mark)
            self.context.begin_mark = None
            namespaces = [ns.prefix for ns in target.topology.redis.namespaces]
            report.findings += audits.audit_redis_keys(activity, namespaces)
            report.findings += audits.audit_tasks(activity)
            users = list(target.topology.redis.users)
            report.findings += audits.audit_refusals(monitor.refusals(users, self.started_at))
            report.audits_run += [audits.REDIS_NAMESPACES, audits.TASK_TENANT, audits.REDIS_REFUSALS]
        else:
            why = target.spec.why_not(Capability.REDIS_AUDIT)
            report.audits_skipped |= {
                audits.REDIS_NAMESPACES: why,
                audits.TASK_TENANT: why,
                audits.REDIS_REFUSALS: why,
            }
        if target.objects is not None:
            report.findings += audits.audit_objects(target.objects, self.started_at)
            report.audits_run.append(audits.OBJECT_PREFIX)
        else:
            report.audits_skipped[audits.OBJECT_PREFIX] = target.spec.why_not(Capability.OBJECTS)


class ScenarioSession:
    """One target, one API client; runs scenarios one after another.

    `run_class` is the `ScenarioRun` each `run()` uses: a subclass (a load generator's) can change a phase,
    e.g. `_steps` to run the steps many times against the same actors and tenants."""

    run_class: type[ScenarioRun] = ScenarioRun

    def __init__(self, target: Target) -> None:
        self.target = target
        self.api = ApiClient(target.api_url, target.subdomain_host)

    def run(self, loaded: LoadedScenario, hooks: RunHooks | None = None) -> ScenarioResult:
        """Run `loaded`; raises `ScenarioFailed` (a readable, masked report) when anything failed.

        `hooks`: how a load run samples probes, times steps and takes the audits over (execute.RunHooks)."""
        if not loaded.applicable:
            raise ScenarioError(f"{loaded.source}: not valid on target {self.target.name}")
        return self.run_class(self, loaded, hooks).execute()

    def actors(self, run_id: str | None = None, masker: Masker | None = None) -> ActorFactory:
        masker = masker or Masker(self.target.secrets)
        return ActorFactory(self.target, self.api, run_id or new_run_id(), on_secret=masker.add)

    def close(self) -> None:
        self.api.close()


_Run = ScenarioRun  # the name tests patch phases on
