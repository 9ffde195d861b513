"""Runs a loaded scenario on a target: fresh actors and tenants, the steps in order, the audits, the cleanup.

A `ScenarioSession` is one per process (one per pytest-xdist worker) and runs one scenario at a time; runs in
different processes share nothing but the stack, and each run's tenants and users carry its own run id.
"""

from __future__ import annotations

import re
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.errors import ScenarioError
from harness.scenarios import audits
from harness.scenarios.actors import Actor, ActorFactory, SetupError, TenantHandle
from harness.scenarios.http import ApiClient, Exchange
from harness.scenarios.identity import SignInRefused
from harness.scenarios.loader import LoadedScenario, PlannedStep
from harness.scenarios.matchers import Matcher, check, describe, render_expected, show
from harness.scenarios.paths import Missing, parse_path, resolve
from harness.scenarios.probes.email import Mail
from harness.scenarios.report import (
    Masker,
    ScenarioFailed,
    ScenarioReport,
    StepFailure,
    StepRecord,
)
from harness.scenarios.schema import (
    EmailProbe,
    EmailStep,
    FetchStep,
    HttpExpect,
    ObjectStep,
    RedisStep,
    RequestStep,
    RowsStep,
    SetStep,
    SignInStep,
    TaskStep,
    UploadStep,
    _Step,
)
from harness.scenarios.targets import Capability, Target
from harness.scenarios.templates import UndefinedVariable, render, render_text

AT_LEAST_ONE = Matcher(ge=1)
NONE = Matcher(eq=0)
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass
class ScenarioResult:
    run_id: str
    steps_passed: int
    steps_skipped: int
    timings: dict[str, float]
    audits_run: list[str]
    audits_skipped: dict[str, str]
    cleanup_problems: list[str] = field(default_factory=list)


@dataclass
class Attempt:
    problems: list[str]
    outcome: dict[str, Any]
    exchange: Exchange | None = None
    observed: str | None = None


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


def poll(attempt: Callable[[], Attempt], within: float | None) -> tuple[Attempt, int, float]:
    """Try until the attempt has no problems or `within` seconds passed (backoff 50 ms -> 1 s)."""
    started = time.monotonic()
    deadline = started + (within or 0.0)
    delay = 0.05
    tries = 0
    while True:
        tries += 1
        result = attempt()
        now = time.monotonic()
        if not result.problems or now >= deadline:
            return result, tries, now - started
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 1.0)


class ScenarioSession:
    """One target, one API client; runs scenarios one after another."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.api = ApiClient(target.api_url, target.subdomain_host)

    def run(self, loaded: LoadedScenario, hooks: RunHooks | None = None) -> ScenarioResult:
        """Run `loaded`; raises `ScenarioFailed` (a readable, masked report) when anything failed."""
        if not loaded.applicable:
            raise ScenarioError(f"{loaded.source}: not valid on target {self.target.name}")
        return _Run(self, loaded, hooks).execute()

    def actors(self, run_id: str | None = None, masker: Masker | None = None) -> ActorFactory:
        masker = masker or Masker(self.target.secrets)
        return ActorFactory(self.target, self.api, run_id or new_run_id(), on_secret=masker.add)

    def close(self) -> None:
        self.api.close()


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


class _Run:
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
        self.tenants: dict[str, TenantHandle] = {}
        self.actors: dict[str, Actor] = {}
        self.variables: dict[str, Any] = {}
        self.saved: list[str] = []
        self.begin_mark: str | None = None
        self.started_at = datetime.now(UTC)
        self.report = ScenarioReport(self.scenario.name, str(loaded.source), self.target.name, self.run_id)

    # -- the run -----------------------------------------------------------------------------------------
    def execute(self) -> ScenarioResult:
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        try:
            if self.target.monitor is not None:
                self.begin_mark = self.target.monitor.begin(self.run_id)
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
            self.report.error = _brief_traceback(exc)
        finally:
            if self.begin_mark is not None and self.target.monitor is not None:
                try:  # the audits did not run: close the window anyway, or the monitor keeps recording
                    self.target.monitor.end(self.begin_mark)
                except Exception:
                    pass
            clock = time.perf_counter()
            self.report.cleanup_problems = self.factory.cleanup()
            timings["cleanup_s"] = time.perf_counter() - clock
        self.report.variables = {k: self.variables[k] for k in self._reported_variables()}
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
        names = ["tenants", *self.scenario.vars, *self.saved]
        return [n for n in dict.fromkeys(names) if n in self.variables]

    def _setup(self) -> None:
        for key, spec in self.scenario.users.items():
            self.actors[key] = self.factory.user(key, name=spec.name)
        for key, tenant in self.scenario.tenants.items():
            members = {u: (spec.role or "member", spec.name) for u, spec in tenant.users.items()}
            handle = self.factory.tenant(key, name=tenant.name, users=members)
            self.tenants[key] = handle
            for user_key, actor in handle.users.items():
                self.actors[f"{key}.{user_key}"] = actor
        users: dict[str, Any] = {k: self.actors[k].variables() for k in self.scenario.users}
        for key, handle in self.tenants.items():
            users[key] = {u: a.variables() for u, a in handle.users.items() if not u.startswith("_")}
        self.variables = {
            "run": {
                "id": self.run_id,
                "utc_month": self.started_at.strftime("%Y-%m"),
                "started_at": self.started_at.isoformat(),
            },
            "target": {"name": self.target.name, "api_url": self.target.api_url},
            "tenants": {k: h.variables() for k, h in self.tenants.items()},
            "users": users,
        }
        self.variables |= render(dict(self.scenario.vars), self.variables)

    def _steps(self) -> None:
        planned = self.loaded.steps
        self.report.steps = [
            StepRecord(p.index + 1, p.label, self.loaded.where(p), "not run" if p.runs else "skipped")
            for p in planned
        ]
        hooks = self.hooks
        for step, record in zip(planned, self.report.steps, strict=True):
            if not step.runs:
                continue
            if hooks.runs is not None and not hooks.runs(step):
                record.status = "skipped"
                continue
            clock = time.perf_counter()
            failure: StepFailure | None = None
            outcome: dict[str, Any] = {}
            try:
                outcome = self._execute(step)
                self._save(step.step, outcome)
            except StepFailure as exc:
                failure = exc
            except (
                UndefinedVariable,
                ScenarioError,
            ) as exc:  # a saved value lacks a path; Cognito refused ...
                failure = StepFailure([str(exc)])
            record.status = "failed" if failure else "passed"
            if hooks.on_step is not None:
                exchange = failure.exchange if failure else None
                status = exchange.status if exchange else outcome.get("status")
                seconds = time.perf_counter() - clock
                hooks.on_step(
                    StepEvent(step, record, seconds, status if isinstance(status, int) else None, failure)
                )
            if failure:
                self.report.failed_step, self.report.failure = record, failure
                return

    def _save(self, step: _Step, outcome: Mapping[str, Any]) -> None:
        for name, path in step.save.items():
            value = resolve(outcome, parse_path(path))
            if isinstance(value, Missing):
                raise StepFailure([f"save {name}: {path}: {value.reason}"], observed=_outcome_text(outcome))
            self.variables[name] = value
            self.saved.append(name)

    # -- steps -------------------------------------------------------------------------------------------
    def _execute(self, planned: PlannedStep) -> dict[str, Any]:
        step = planned.step
        handlers: dict[type[_Step], Callable[[Any], dict[str, Any]]] = {
            RequestStep: self._request,
            FetchStep: self._fetch,
            UploadStep: self._upload,
            SignInStep: self._sign_in,
            SetStep: self._set,
            EmailStep: self._email,
            ObjectStep: self._object,
            RowsStep: self._rows,
            RedisStep: self._redis,
            TaskStep: self._task,
        }
        return handlers[type(step)](step)

    def _finish(self, result: Attempt, tries: int, waited: float) -> dict[str, Any]:
        if result.problems:
            raise StepFailure(result.problems, result.exchange, result.observed, tries, waited)
        return result.outcome

    def _request(self, step: RequestStep) -> dict[str, Any]:
        actor = self.actors[step.as_] if step.as_ else None
        slug = self._tenant_slug(step, actor)
        path = render_text(step.path, self.variables)
        headers = {k: render_text(v, self.variables) for k, v in step.headers.items()}
        query = render(step.query, self.variables)
        body: dict[str, Any] = {}
        if "json_" in step.model_fields_set:
            body["json_body"] = render(step.json_, self.variables)
        elif step.body is not None:
            body["content"] = render_text(step.body, self.variables)

        def send() -> Exchange:
            token = actor.access_token() if actor is not None else None
            return self.api.send(
                step.method, path, token=token, tenant_slug=slug, tenant_via=step.tenant_via,
                headers=headers, query=query, **body,
            )  # fmt: skip

        expect_given = "expect" in step.model_fields_set
        if step.repeat is not None:
            until = step.repeat.until
            count = 0
            while count < step.repeat.max:
                count += 1
                exchange = send()
                if not self._http_problems(until, exchange):
                    break
            else:
                raise StepFailure(
                    [
                        f"repeat: no response matched `until` ({_describe_http(until)}) in {step.repeat.max} requests"
                    ],
                    exchange,
                    attempts=step.repeat.max,
                )
            problems = self._http_problems(step.expect, exchange) if expect_given else []
            return self._finish(Attempt(problems, exchange.outcome(), exchange), count, 0.0)

        def attempt() -> Attempt:
            exchange = send()
            return Attempt(self._http_problems(step.expect, exchange), exchange.outcome(), exchange)

        return self._finish(*poll(attempt, step.within))

    def _tenant_slug(self, step: RequestStep, actor: Actor | None) -> str | None:
        if step.tenant_slug is not None:
            return render_text(step.tenant_slug, self.variables)
        if step.tenant == "none":
            return None
        if step.tenant is not None:
            return self.tenants[step.tenant].slug
        if actor is not None and actor.tenant is not None:
            return self.tenants[actor.tenant].slug
        return None

    def _fetch(self, step: FetchStep) -> dict[str, Any]:
        url = render_text(step.url, self.variables)
        headers = {k: render_text(v, self.variables) for k, v in step.headers.items()}

        def attempt() -> Attempt:
            exchange = self.api.send(step.method, url, headers=headers)
            return Attempt(self._http_problems(step.expect, exchange), exchange.outcome(), exchange)

        return self._finish(*poll(attempt, step.within))

    def _upload(self, step: UploadStep) -> dict[str, Any]:
        spec = step.upload
        url = render_text(spec.url, self.variables)
        fields = render(spec.fields, self.variables)
        if not isinstance(fields, dict):
            raise StepFailure([f"upload.fields: expected a mapping of form fields, got {show(fields)}"])
        form = {str(k): str(v) for k, v in fields.items()}
        content = render_text(spec.file.content, self.variables).encode()
        content_type = spec.file.content_type or form.get("Content-Type") or "application/octet-stream"
        files = {spec.field_name: (render_text(spec.file.filename, self.variables), content, content_type)}
        exchange = self.api.send("POST", url, data=form, files=files)
        return self._finish(
            Attempt(self._http_problems(step.expect, exchange), exchange.outcome(), exchange), 1, 0.0
        )

    def _sign_in(self, step: SignInStep) -> dict[str, Any]:
        spec = step.sign_in
        actor = self.actors[spec.as_]
        password = render_text(spec.password, self.variables) if spec.password is not None else actor.password
        self.masker.add(password)
        try:
            tokens = self.target.identity.sign_in(actor.email, password)
        except SignInRefused as exc:
            if spec.expect == "refused":
                return {}
            raise StepFailure(
                [f"expected Cognito to accept the sign-in of {spec.as_}: {exc.message}"]
            ) from None
        self.masker.add(tokens.access)
        self.masker.add(tokens.id)
        if spec.expect == "refused":
            raise StepFailure([f"expected Cognito to refuse the sign-in of {spec.as_}, but it issued tokens"])
        if password == actor.password:
            actor.tokens = tokens
        return {"access_token": tokens.access, "id_token": tokens.id}

    def _set(self, step: SetStep) -> dict[str, Any]:
        for name, value in step.set.items():
            self.variables[name] = render(value, self.variables)
            self.saved.append(name)
        return {}

    # -- probes ------------------------------------------------------------------------------------------
    def _email(self, step: EmailStep) -> dict[str, Any]:
        spec = step.expect_email
        inbox = self.target.inbox
        assert inbox is not None  # the loader refused the step otherwise
        address = (
            self.actors[spec.to].email if spec.to in self.actors else render_text(spec.to, self.variables)
        )
        count = (
            render_expected(spec.count, self.variables) if "count" in spec.model_fields_set else AT_LEAST_ONE
        )

        def attempt() -> Attempt:
            messages = inbox.messages(address)
            matching = [m for m in messages if not self._mail_problems(spec, m)]
            problems = [f"count of matching messages: {p}" for p in check(count, len(matching))]
            outcome: dict[str, Any] = {"count": len(matching), "messages": [m.subject for m in matching]}
            if matching:
                latest = matching[-1]
                outcome |= latest.outcome()
                extracted, missing = self._extract(spec, latest)
                outcome["extracted"] = extracted
                problems += missing
            observed = f"messages to {address} ({len(messages)}):\n" + "\n".join(
                f"- {m.subject!r} [{m.id}]" + (f": {'; '.join(self._mail_problems(spec, m))}" if self._mail_problems(spec, m) else " (matches)")
                for m in messages[-10:]
            ) if messages else f"no message to {address} yet"  # fmt: skip
            return Attempt(problems, outcome, observed=observed)

        outcome = self._finish(*poll(attempt, spec.within))
        for name, value in outcome.pop("extracted", {}).items():
            self.variables[name] = value
            self.saved.append(name)
        return outcome

    def _mail_problems(self, spec: EmailProbe, mail: Mail) -> list[str]:
        problems: list[str] = []
        given = spec.model_fields_set
        if "subject" in given:
            problems += [
                f"subject {p}" for p in check(render_expected(spec.subject, self.variables), mail.subject)
            ]
        if spec.subject_contains is not None:
            wanted = render_text(spec.subject_contains, self.variables)
            if wanted not in mail.subject:
                problems.append(f"subject lacks {wanted!r}")
        body = mail.body or ""
        if "body" in given:
            problems += [f"body {p}" for p in check(render_expected(spec.body, self.variables), body)]
        if spec.body_contains is not None:
            needles = [spec.body_contains] if isinstance(spec.body_contains, str) else spec.body_contains
            for needle in needles:
                wanted = render_text(needle, self.variables)
                if wanted not in body:
                    problems.append(f"body lacks {wanted!r}")
        return problems

    def _extract(self, spec: EmailProbe, mail: Mail) -> tuple[dict[str, Any], list[str]]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        body = mail.body or ""
        for name, pattern in spec.extract.items():
            match = re.search(pattern, body)
            if match is None:
                problems.append(f"extract {name}: /{pattern}/ does not match the body of {mail.subject!r}")
            else:
                values[name] = match.group(1) if match.groups() else match.group(0)
                if "token" in name.lower() or "secret" in name.lower():
                    self.masker.add(str(values[name]))
        urls = _URL.findall(body)
        for name, pattern in spec.links.items():
            link = next((u for u in urls if re.search(pattern, u)), None)
            if link is None:
                problems.append(f"links {name}: no URL matching /{pattern}/ in the body (URLs: {urls[:5]})")
            else:
                values[name] = link
        return values, problems

    def _object(self, step: ObjectStep) -> dict[str, Any]:
        spec = step.expect_object
        store = self.target.objects
        assert store is not None
        tenant = self.tenants[spec.tenant]
        prefix = store.tenant_prefix(tenant.id)
        if spec.key is not None:
            key = render_text(spec.key, self.variables)
            if not key.startswith(prefix):
                raise StepFailure([f"key {key!r} is not under tenant {spec.tenant}'s prefix {prefix!r}"])

            def one() -> Attempt:
                stored = store.get(key)
                if stored is None:
                    problems = [] if not spec.exists else [f"no object {key!r} in bucket {store.bucket}"]
                    return Attempt(problems, {"key": key, "exists": False})
                if not spec.exists:
                    return Attempt(
                        [f"object {key!r} exists ({stored.size} bytes), expected none"], {"key": key}
                    )
                text = stored.body.decode("utf-8", "replace")
                problems = []
                if "body" in spec.model_fields_set:
                    problems += [
                        f"body: {p}" for p in check(render_expected(spec.body, self.variables), text)
                    ]
                if "content_type" in spec.model_fields_set:
                    expected = render_expected(spec.content_type, self.variables)
                    problems += [f"content_type: {p}" for p in check(expected, stored.content_type)]
                outcome = {"key": key, "body": text, "content_type": stored.content_type, "size": stored.size}
                return Attempt(problems, outcome)

            return self._finish(*poll(one, spec.within))
        under = prefix + render_text(spec.prefix or "", self.variables)
        default = AT_LEAST_ONE if spec.exists else NONE
        count = render_expected(spec.count, self.variables) if "count" in spec.model_fields_set else default

        def many() -> Attempt:
            keys = store.keys(under)
            problems = [f"objects under {under!r}: {p}" for p in check(count, len(keys))]
            return Attempt(
                problems, {"keys": keys, "count": len(keys)}, observed="\n".join(keys[:20]) or None
            )

        return self._finish(*poll(many, spec.within))

    def _rows(self, step: RowsStep) -> dict[str, Any]:
        spec = step.expect_rows
        database = self.target.database
        assert database is not None
        tenant = self.tenants[spec.tenant]
        params = render(spec.params, self.variables)

        def attempt() -> Attempt:
            rows = database.query(tenant.id, spec.sql, params)
            problems: list[str] = []
            if "count" in spec.model_fields_set:
                problems += [
                    f"count: {p}" for p in check(render_expected(spec.count, self.variables), len(rows))
                ]
            if spec.rows is not None:
                if len(rows) != len(spec.rows):
                    problems.append(f"rows: expected {len(spec.rows)} row(s), got {len(rows)}")
                for i, (expected, row) in enumerate(zip(spec.rows, rows, strict=False)):
                    problems += self._columns(f"rows[{i}]", expected, row)
            if spec.first is not None:
                if not rows:
                    problems.append("first: the query returned no rows")
                else:
                    problems += self._columns("first", spec.first, rows[0])
            observed = "\n".join(show(r, 400) for r in rows[:10]) or "no rows"
            return Attempt(
                problems,
                {"rows": rows, "count": len(rows), "first": rows[0] if rows else None},
                observed=observed,
            )

        return self._finish(*poll(attempt, spec.within))

    def _columns(self, where: str, expected: Mapping[str, Any], row: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        for column, value in expected.items():
            actual = (
                row[column]
                if column in row
                else Missing((), f"there is no column {column!r} (columns: {', '.join(row)})")
            )
            problems += [
                f"{where}.{column}: {p}" for p in check(render_expected(value, self.variables), actual)
            ]
        return problems

    def _redis(self, step: RedisStep) -> dict[str, Any]:
        spec = step.expect_redis
        keys = self.target.redis
        assert keys is not None
        namespaces = [ns.prefix for ns in self.target.topology.redis.namespaces]
        pattern = render_text(spec.pattern, self.variables)
        if not any(pattern.startswith(ns) for ns in namespaces) and spec.key is not None:
            raise StepFailure([f"key {pattern!r} is outside the declared namespaces {', '.join(namespaces)}"])
        if spec.key is not None:

            def one() -> Attempt:
                state = keys.inspect(pattern)
                if not state.exists:
                    return Attempt([f"no key {pattern!r}"] if spec.exists else [], state.outcome())
                if not spec.exists:
                    return Attempt([f"key {pattern!r} exists ({state.type}), expected none"], state.outcome())
                problems: list[str] = []
                given = spec.model_fields_set
                if spec.type is not None and state.type != spec.type:
                    problems.append(f"type: expected {spec.type}, got {state.type}")
                if "value" in given:
                    problems += [
                        f"value: {p}" for p in check(render_expected(spec.value, self.variables), state.value)
                    ]
                for name, expected in spec.fields.items():
                    actual = (
                        state.fields[name]
                        if name in state.fields
                        else Missing((), f"the hash has no field {name!r}")
                    )
                    problems += [
                        f"fields.{name}: {p}"
                        for p in check(render_expected(expected, self.variables), actual)
                    ]
                if "ttl" in given:
                    problems += [
                        f"ttl: {p}" for p in check(render_expected(spec.ttl, self.variables), state.ttl)
                    ]
                return Attempt(problems, state.outcome(), observed=show(state.outcome(), 1000))

            return self._finish(*poll(one, spec.within))
        default = AT_LEAST_ONE if spec.exists else NONE
        count = render_expected(spec.count, self.variables) if "count" in spec.model_fields_set else default

        def many() -> Attempt:
            found = keys.scan(pattern)
            problems = [f"keys matching {pattern!r}: {p}" for p in check(count, len(found))]
            return Attempt(
                problems, {"keys": found, "count": len(found)}, observed="\n".join(found[:20]) or None
            )

        return self._finish(*poll(many, spec.within))

    def _task(self, step: TaskStep) -> dict[str, Any]:
        spec = step.expect_task
        probe = self.target.tasks
        assert probe is not None and self.begin_mark is not None
        tenant = self.tenants[spec.tenant]
        count = (
            render_expected(spec.count, self.variables) if "count" in spec.model_fields_set else AT_LEAST_ONE
        )
        begin = self.begin_mark

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

        return self._finish(*poll(attempt, spec.within))

    def _http_problems(self, expect: HttpExpect, exchange: Exchange) -> list[str]:
        if exchange.error:
            return [f"no response: {exchange.error}"]
        problems: list[str] = []
        status = exchange.status or 0
        if expect.status is None:
            if not 200 <= status < 300:
                problems.append(f"status: expected a 2xx (no expect.status given), got {status}")
        elif status not in expect.status:
            wanted = expect.status[0] if len(expect.status) == 1 else list(expect.status)
            problems.append(f"status: expected {wanted}, got {status}")
        outcome = exchange.outcome()
        for name, expected in expect.headers.items():
            actual = outcome["headers"].get(name, Missing((), f"the response has no {name} header"))
            problems += [
                f"headers.{name}: {p}" for p in check(render_expected(expected, self.variables), actual)
            ]
        if expect.json_:
            if outcome["json"] is None and exchange.response_body.strip() not in ("null",):
                problems.append("json: the response body is not JSON")
            else:
                for path, expected in expect.json_.items():
                    actual = resolve(outcome["json"], parse_path(path))
                    problems += [
                        f"json.{path}: {p}" if path not in ("$", "") else f"json: {p}"
                        for p in check(render_expected(expected, self.variables), actual)
                    ]
        if "body" in expect.model_fields_set:
            problems += [
                f"body: {p}"
                for p in check(render_expected(expect.body, self.variables), exchange.response_body)
            ]
        return problems

    # -- audits ------------------------------------------------------------------------------------------
    def _audits(self) -> None:
        target, report = self.target, self.report
        monitor = target.monitor
        if not self.hooks.audits:  # the caller audits (once, at the end of a load run)
            if monitor is not None and self.begin_mark is not None:
                monitor.end(self.begin_mark)
                self.begin_mark = None
            return
        if monitor is not None and self.begin_mark is not None:
            activity = monitor.end(self.begin_mark)
            self.begin_mark = None
            namespaces = [ns.prefix for ns in target.topology.redis.namespaces]
            report.findings += audits.audit_redis_keys(activity, namespaces)
            report.findings += audits.audit_tasks(activity)
            report.audits_run += [audits.REDIS_NAMESPACES, audits.TASK_TENANT]
        else:
            why = target.spec.why_not(Capability.REDIS_AUDIT)
            report.audits_skipped |= {audits.REDIS_NAMESPACES: why, audits.TASK_TENANT: why}
        if target.objects is not None:
            report.findings += audits.audit_objects(target.objects, self.started_at)
            report.audits_run.append(audits.OBJECT_PREFIX)
        else:
            report.audits_skipped[audits.OBJECT_PREFIX] = target.spec.why_not(Capability.OBJECTS)


def _describe_http(expect: HttpExpect) -> str:
    parts = []
    if expect.status is not None:
        parts.append(f"status {'/'.join(map(str, expect.status))}")
    parts += [f"{name} {describe(value)}" for name, value in expect.headers.items()]
    parts += [f"json.{path} {describe(value)}" for path, value in expect.json_.items()]
    return ", ".join(parts) or "any 2xx"


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    return show({k: v for k, v in outcome.items() if k != "body"}, 1500)


def _brief_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(lines[-6:]).rstrip()
    return f"{type(exc).__name__}: {exc}\n" + "\n".join("    " + line for line in tail.splitlines())
