"""`expect_object:`: objects in the bucket, under the tenant's prefix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, model_validator

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import Name, ProbeSpec, StepModel
from harness.scenarios.matchers import Expected, Matcher, check, render_expected
from harness.scenarios.registry import CheckScope, Need, Problem
from harness.scenarios.report import StepFailure
from harness.scenarios.targets import Capability

AT_LEAST_ONE = Matcher(ge=1)
NONE = Matcher(eq=0)


class ObjectProbe(ProbeSpec):
    tenant: Name
    key: str | None = Field(default=None, description="full key; must lie under the tenant's prefix")
    prefix: str | None = Field(default=None, description="relative to the tenant's prefix")
    exists: bool = True
    body: Expected = None
    content_type: Expected = None
    count: Expected = None

    @model_validator(mode="after")
    def _one_of(self) -> ObjectProbe:
        if (self.key is None) == (self.prefix is None):
            raise ValueError("give exactly one of `key` (one object) or `prefix` (objects under it)")
        if self.prefix is not None and ({"body", "content_type"} & self.model_fields_set):
            raise ValueError("`body` and `content_type` check one object: use `key`")
        if self.key is not None and "count" in self.model_fields_set:
            raise ValueError("`count` counts objects under a `prefix`")
        return self


class ObjectStep(StepModel):
    expect_object: ObjectProbe


def run(context: StepContext, step: ObjectStep) -> dict[str, Any]:
    spec = step.expect_object
    store = context.target.objects
    assert store is not None
    tenant = context.tenants[spec.tenant]
    prefix = store.tenant_prefix(tenant.id)
    if spec.key is not None:
        key = context.text(spec.key)
        if not key.startswith(prefix):
            raise StepFailure([f"key {key!r} is not under tenant {spec.tenant}'s prefix {prefix!r}"])

        def one() -> Attempt:
            stored = store.get(key)
            if stored is None:
                problems = [] if not spec.exists else [f"no object {key!r} in bucket {store.bucket}"]
                return Attempt(problems, {"key": key, "exists": False})
            if not spec.exists:
                return Attempt([f"object {key!r} exists ({stored.size} bytes), expected none"], {"key": key})
            text = stored.body.decode("utf-8", "replace")
            problems = []
            if "body" in spec.model_fields_set:
                problems += [f"body: {p}" for p in context.check(spec.body, text)]
            if "content_type" in spec.model_fields_set:
                expected = render_expected(spec.content_type, context.variables)
                problems += [f"content_type: {p}" for p in check(expected, stored.content_type)]
            outcome = {"key": key, "body": text, "content_type": stored.content_type, "size": stored.size}
            return Attempt(problems, outcome)

        return finish(*poll(one, spec.within))
    under = prefix + context.text(spec.prefix or "")
    default = AT_LEAST_ONE if spec.exists else NONE
    count = render_expected(spec.count, context.variables) if "count" in spec.model_fields_set else default

    def many() -> Attempt:
        keys = store.keys(under)
        problems = [f"objects under {under!r}: {p}" for p in check(count, len(keys))]
        return Attempt(problems, {"keys": keys, "count": len(keys)}, observed="\n".join(keys[:20]) or None)

    return finish(*poll(many, spec.within))


def needs(step: ObjectStep) -> Iterable[Need]:
    yield Capability.OBJECTS, ("expect_object",)


def describe(step: ObjectStep) -> str:
    probe = step.expect_object
    return f"expect_object {probe.key or probe.prefix} of {probe.tenant}"


def check_step(step: ObjectStep, scope: CheckScope) -> Iterable[Problem]:
    yield from scope.tenant(step.expect_object.tenant, ("expect_object", "tenant"))


KIND = registry.register(
    registry.StepKind(
        "expect_object",
        ObjectStep,
        run,
        save_roots=("key", "body", "content_type", "size", "keys", "count"),
        probe=True,
        needs=needs,
        describe=describe,
        check=check_step,
    )
)
