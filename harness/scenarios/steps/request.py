"""`request: METHOD /path`: an API request as an actor, for a tenant (header or subdomain)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from harness.scenarios import registry
from harness.scenarios.actors import Actor
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import (
    METHODS,
    SAFE_METHODS,
    ActorRef,
    Duration,
    HttpExpect,
    Repeat,
    StepModel,
)
from harness.scenarios.http import Exchange
from harness.scenarios.matchers import show
from harness.scenarios.registry import CheckScope, Need, Problem
from harness.scenarios.report import StepFailure
from harness.scenarios.steps._http import HTTP_SAVE_ROOTS, describe_http, http_attempt, http_problems
from harness.scenarios.targets import Capability


def _request_line(value: str) -> str:
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\s*([A-Za-z]+)\s+(\S+)\s*", value)
    if not match or match.group(1).upper() not in METHODS:
        raise PydanticCustomError(
            "request_line",
            "expected 'METHOD /path' with METHOD one of {methods} (got {value})",
            {"methods": ", ".join(METHODS), "value": show(value)},
        )
    return f"{match.group(1).upper()} {match.group(2)}"


RequestLine = Annotated[str, BeforeValidator(_request_line)]


class RequestStep(StepModel):
    """An API request, as an actor (bearer token from Cognito) and for a tenant (header or subdomain)."""

    request: RequestLine
    as_: ActorRef | None = Field(default=None, alias="as")
    tenant: str | None = Field(default=None, description="a declared tenant, or `none`; default: the actor's")
    tenant_slug: str | None = None
    tenant_via: Literal["header", "subdomain"] = "header"
    headers: dict[str, str] = {}
    query: dict[str, Any] = {}
    json_: Any = Field(default=None, alias="json")
    body: str | None = None
    expect: HttpExpect = HttpExpect()
    within: Duration | None = None
    repeat: Repeat | None = None

    @property
    def method(self) -> str:
        return self.request.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.request.split(" ", 1)[1]

    @model_validator(mode="after")
    def _consistent(self) -> RequestStep:
        if not (self.path.startswith("/") or self.path.startswith("${")):
            raise ValueError(f"the path must start with '/' (got {self.path!r}); use `fetch` for other URLs")
        if "json" in self.model_fields_set and self.body is not None:
            raise ValueError("give `json` or `body`, not both")
        if self.tenant is not None and self.tenant_slug is not None:
            raise ValueError("give `tenant` or `tenant_slug`, not both")
        if self.within is not None and self.repeat is not None:
            raise ValueError("give `within` or `repeat`, not both")
        if self.within is not None and self.method not in SAFE_METHODS:
            raise ValueError(
                f"`within` re-sends the request until it matches; {self.method} is not safe to repeat "
                "(poll with a GET step instead)"
            )
        return self


def run(context: StepContext, step: RequestStep) -> dict[str, Any]:
    actor = context.actors[step.as_] if step.as_ else None
    slug = _tenant_slug(context, step, actor)
    path = context.text(step.path)
    headers = {k: context.text(v) for k, v in step.headers.items()}
    query = context.value(step.query)
    body: dict[str, Any] = {}
    if "json_" in step.model_fields_set:
        body["json_body"] = context.value(step.json_)
    elif step.body is not None:
        body["content"] = context.text(step.body)

    def send() -> Exchange:
        token = actor.access_token() if actor is not None else None
        return context.api.send(
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
            if not http_problems(context, until, exchange):
                break
        else:
            raise StepFailure(
                [
                    f"repeat: no response matched `until` ({describe_http(until)}) in {step.repeat.max} requests"
                ],
                exchange,
                attempts=step.repeat.max,
            )
        problems = http_problems(context, step.expect, exchange) if expect_given else []
        return finish(Attempt(problems, exchange.outcome(), exchange), count, 0.0)

    def attempt() -> Attempt:
        return http_attempt(context, step.expect, send())

    return finish(*poll(attempt, step.within))


def _tenant_slug(context: StepContext, step: RequestStep, actor: Actor | None) -> str | None:
    if step.tenant_slug is not None:
        return context.text(step.tenant_slug)
    if step.tenant == "none":
        return None
    if step.tenant is not None:
        return context.tenants[step.tenant].slug
    if actor is not None and actor.tenant is not None:
        return context.tenants[actor.tenant].slug
    return None


def needs(step: RequestStep) -> Iterable[Need]:
    if step.tenant_via == "subdomain":
        yield Capability.SUBDOMAIN, ("tenant_via",)


def describe(step: RequestStep) -> str:
    who = f" as {step.as_}" if step.as_ else " (anonymous)"
    return f"{step.request}{who}"


def check(step: RequestStep, scope: CheckScope) -> Iterable[Problem]:
    yield from scope.actor(step.as_, ("as",))
    if step.tenant is not None and step.tenant != "none":
        yield from scope.tenant(step.tenant, ("tenant",))


KIND = registry.register(
    registry.StepKind(
        "request", RequestStep, run, save_roots=HTTP_SAVE_ROOTS, needs=needs, describe=describe, check=check
    )
)
