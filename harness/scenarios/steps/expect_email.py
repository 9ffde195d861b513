"""`expect_email:`: mail the app sent (local: the emulator's SES store; deployed: SES events over SQS)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import Field, field_validator

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import Name, ProbeSpec, StepModel
from harness.scenarios.matchers import Expected, Matcher, check, render_expected
from harness.scenarios.probes.email import Mail
from harness.scenarios.registry import CheckScope, Need, Problem
from harness.scenarios.targets import Capability, TargetSpec

AT_LEAST_ONE = Matcher(ge=1)

_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_ACTOR_REF = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


class EmailProbe(ProbeSpec):
    to: str = Field(description="an actor (`acme.owner`) or an address")
    subject: Expected = None
    subject_contains: str | None = None
    body: Expected = None
    body_contains: str | list[str] | None = None
    extract: dict[Name, str] = Field(
        default={}, description="variable -> regex over the body (group 1 or the match)"
    )
    links: dict[Name, str] = Field(default={}, description="variable -> regex a URL in the body must match")
    count: Expected = None

    @field_validator("extract", "links")
    @classmethod
    def _regexes(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{name}: not a valid regular expression: {exc}") from None
        return patterns

    @property
    def reads_body(self) -> bool:
        given = self.model_fields_set
        return bool({"body", "body_contains", "extract", "links"} & given)


class EmailStep(StepModel):
    expect_email: EmailProbe


def run(context: StepContext, step: EmailStep) -> dict[str, Any]:
    spec = step.expect_email
    inbox = context.target.inbox
    assert inbox is not None  # the loader refused the step otherwise
    address = context.actors[spec.to].email if spec.to in context.actors else context.text(spec.to)
    count = (
        render_expected(spec.count, context.variables) if "count" in spec.model_fields_set else AT_LEAST_ONE
    )

    def attempt() -> Attempt:
        messages = inbox.messages(address)
        matching = [m for m in messages if not _mail_problems(context, spec, m)]
        problems = [f"count of matching messages: {p}" for p in check(count, len(matching))]
        outcome: dict[str, Any] = {"count": len(matching), "messages": [m.subject for m in matching]}
        if matching:
            latest = matching[-1]
            outcome |= latest.outcome()
            extracted, missing = _extract(context, spec, latest)
            outcome["extracted"] = extracted
            problems += missing
        observed = f"messages to {address} ({len(messages)}):\n" + "\n".join(
            f"- {m.subject!r} [{m.id}]" + (f": {'; '.join(_mail_problems(context, spec, m))}" if _mail_problems(context, spec, m) else " (matches)")
            for m in messages[-10:]
        ) if messages else f"no message to {address} yet"  # fmt: skip
        return Attempt(problems, outcome, observed=observed)

    outcome = finish(*poll(attempt, spec.within))
    for name, value in outcome.pop("extracted", {}).items():
        context.define(name, value)
    return outcome


def _mail_problems(context: StepContext, spec: EmailProbe, mail: Mail) -> list[str]:
    problems: list[str] = []
    given = spec.model_fields_set
    if "subject" in given:
        problems += [f"subject {p}" for p in context.check(spec.subject, mail.subject)]
    if spec.subject_contains is not None:
        wanted = context.text(spec.subject_contains)
        if wanted not in mail.subject:
            problems.append(f"subject lacks {wanted!r}")
    body = mail.body or ""
    if "body" in given:
        problems += [f"body {p}" for p in context.check(spec.body, body)]
    if spec.body_contains is not None:
        needles = [spec.body_contains] if isinstance(spec.body_contains, str) else spec.body_contains
        for needle in needles:
            wanted = context.text(needle)
            if wanted not in body:
                problems.append(f"body lacks {wanted!r}")
    return problems


def _extract(context: StepContext, spec: EmailProbe, mail: Mail) -> tuple[dict[str, Any], list[str]]:
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
                context.masker.add(str(values[name]))
    urls = _URL.findall(body)
    for name, pattern in spec.links.items():
        link = next((u for u in urls if re.search(pattern, u)), None)
        if link is None:
            problems.append(f"links {name}: no URL matching /{pattern}/ in the body (URLs: {urls[:5]})")
        else:
            values[name] = link
    return values, problems


def needs(step: EmailStep) -> Iterable[Need]:
    yield Capability.EMAIL, ("expect_email",)
    for name in ("body", "body_contains", "extract", "links"):
        if name in step.expect_email.model_fields_set:
            yield Capability.EMAIL_BODY, ("expect_email", name)


def describe(step: EmailStep) -> str:
    return f"expect_email to {step.expect_email.to}"


def defines(step: EmailStep) -> Iterable[str]:
    return [*step.expect_email.extract, *step.expect_email.links]


def check_step(step: EmailStep, scope: CheckScope) -> Iterable[Problem]:
    to = step.expect_email.to
    if _ACTOR_REF.match(to):
        yield from scope.actor(to, ("expect_email", "to"))
    elif "@" not in to and "${" not in to:
        yield ("expect_email", "to"), f"expected an actor (tenant.user or user) or an address (got {to!r})"


def check_target(step: EmailStep, target: TargetSpec) -> Iterable[Problem]:
    to = step.expect_email.to
    if target.name == "deployed" and not _ACTOR_REF.match(to) and "${users." not in to:
        yield (
            ("expect_email", "to"),
            "on a deployed target mail is observed only for actors (their SES mailbox-simulator "
            "addresses); name an actor or use ${users...email}",
        )


KIND = registry.register(
    registry.StepKind(
        "expect_email",
        EmailStep,
        run,
        save_roots=("id", "to", "subject", "body", "source", "count", "messages"),
        probe=True,
        needs=needs,
        describe=describe,
        defines=defines,
        check=check_step,
        check_target=check_target,
    )
)
