"""`set:`: set variables (values may use `${...}`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.scenarios import registry
from harness.scenarios.execute import StepContext
from harness.scenarios.fields import (
    Name,
    StepModel,
)


class SetStep(StepModel):
    """Set variables (values may use `${...}`)."""

    set: dict[Name, Any]


def run(context: StepContext, step: SetStep) -> dict[str, Any]:
    for name, value in step.set.items():
        context.define(name, context.value(value))
    return {}


def describe(step: SetStep) -> str:
    return "set " + ", ".join(step.set)


def defines(step: SetStep) -> Iterable[str]:
    return step.set


KIND = registry.register(registry.StepKind("set", SetStep, run, describe=describe, defines=defines))
