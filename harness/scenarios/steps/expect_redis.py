"""`expect_redis:`: a Redis key or the keys matching a pattern, inside the declared namespaces."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import ProbeSpec, StepModel
from harness.scenarios.matchers import Expected, Matcher, check, render_expected, show
from harness.scenarios.paths import Missing
from harness.scenarios.registry import CheckScope, Need, Problem
from harness.scenarios.report import StepFailure
from harness.scenarios.targets import Capability

AT_LEAST_ONE = Matcher(ge=1)
NONE = Matcher(eq=0)


class RedisProbe(ProbeSpec):
    key: str | None = None
    match: str | None = Field(default=None, description="a SCAN pattern, e.g. ai:quota:${tenants.acme.id}:*")
    exists: bool = True
    type: Literal["string", "hash", "list", "set", "zset"] | None = None
    value: Expected = None
    fields: dict[str, Expected] = {}
    ttl: Expected = Field(default=None, description="seconds; -1 when the key has no expiry")
    count: Expected = None

    @model_validator(mode="after")
    def _one_of(self) -> RedisProbe:
        if (self.key is None) == (self.match is None):
            raise ValueError("give exactly one of `key` (one key) or `match` (a pattern)")
        if self.match is not None and ({"value", "fields", "ttl", "type"} & self.model_fields_set):
            raise ValueError("`value`, `fields`, `ttl` and `type` check one key: use `key`")
        if self.key is not None and "count" in self.model_fields_set:
            raise ValueError("`count` counts keys matching a `match` pattern")
        return self

    @property
    def pattern(self) -> str:
        return self.key if self.key is not None else self.match or ""


class RedisStep(StepModel):
    expect_redis: RedisProbe


def run(context: StepContext, step: RedisStep) -> dict[str, Any]:
    spec = step.expect_redis
    keys = context.target.redis
    assert keys is not None
    namespaces = [ns.prefix for ns in context.target.topology.redis.namespaces]
    pattern = context.text(spec.pattern)
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
                problems += [f"value: {p}" for p in context.check(spec.value, state.value)]
            for name, expected in spec.fields.items():
                actual = (
                    state.fields[name]
                    if name in state.fields
                    else Missing((), f"the hash has no field {name!r}")
                )
                problems += [f"fields.{name}: {p}" for p in context.check(expected, actual)]
            if "ttl" in given:
                problems += [f"ttl: {p}" for p in context.check(spec.ttl, state.ttl)]
            return Attempt(problems, state.outcome(), observed=show(state.outcome(), 1000))

        return finish(*poll(one, spec.within))
    default = AT_LEAST_ONE if spec.exists else NONE
    count = render_expected(spec.count, context.variables) if "count" in spec.model_fields_set else default

    def many() -> Attempt:
        found = keys.scan(pattern)
        problems = [f"keys matching {pattern!r}: {p}" for p in check(count, len(found))]
        return Attempt(problems, {"keys": found, "count": len(found)}, observed="\n".join(found[:20]) or None)

    return finish(*poll(many, spec.within))


def needs(step: RedisStep) -> Iterable[Need]:
    yield Capability.REDIS, ("expect_redis",)


def describe(step: RedisStep) -> str:
    return f"expect_redis {step.expect_redis.pattern}"


def check_step(step: RedisStep, scope: CheckScope) -> Iterable[Problem]:
    field = "key" if step.expect_redis.key is not None else "match"
    head = re.split(r"\$\{|[*?\[]", step.expect_redis.pattern, maxsplit=1)[0]
    namespaces = scope.namespaces
    if head and not any(head.startswith(ns) or ns.startswith(head) for ns in namespaces):
        yield (
            ("expect_redis", field),
            (
                f"{head!r} is outside the declared Redis namespaces ({', '.join(namespaces)}; topology.toml "
                "[[redis.namespaces]])"
            ),
        )


KIND = registry.register(
    registry.StepKind(
        "expect_redis",
        RedisStep,
        run,
        save_roots=("key", "value", "fields", "ttl", "type", "keys", "count"),
        probe=True,
        needs=needs,
        describe=describe,
        check=check_step,
    )
)
