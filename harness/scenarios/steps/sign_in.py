"""`sign_in:`: sign in to Cognito with the app client (USER_PASSWORD_AUTH + SECRET_HASH)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from harness.scenarios import registry
from harness.scenarios.execute import StepContext
from harness.scenarios.fields import (
    ActorRef,
    SpecModel,
    StepModel,
)
from harness.scenarios.identity import SignInRefused
from harness.scenarios.registry import CheckScope, Problem
from harness.scenarios.report import StepFailure


class SignInSpec(SpecModel):
    as_: ActorRef = Field(alias="as")
    password: str | None = Field(default=None, repr=False, description="default: the actor's own password")
    expect: Literal["ok", "refused"] = "ok"


class SignInStep(StepModel):
    """Sign in to Cognito with the app client (USER_PASSWORD_AUTH + SECRET_HASH); saves fresh tokens on ok."""

    sign_in: SignInSpec


def run(context: StepContext, step: SignInStep) -> dict[str, Any]:
    spec = step.sign_in
    actor = context.actors[spec.as_]
    password = context.text(spec.password) if spec.password is not None else actor.password
    context.masker.add(password)
    try:
        tokens = context.target.identity.sign_in(actor.email, password)
    except SignInRefused as exc:
        if spec.expect == "refused":
            return {}
        raise StepFailure([f"expected Cognito to accept the sign-in of {spec.as_}: {exc.message}"]) from None
    context.masker.add(tokens.access)
    context.masker.add(tokens.id)
    context.masker.add(tokens.refresh)
    if spec.expect == "refused":
        raise StepFailure([f"expected Cognito to refuse the sign-in of {spec.as_}, but it issued tokens"])
    if password == actor.password:
        actor.tokens = tokens
    return {"access_token": tokens.access, "id_token": tokens.id}


def describe(step: SignInStep) -> str:
    return f"sign_in as {step.sign_in.as_}"


def check(step: SignInStep, scope: CheckScope) -> Iterable[Problem]:
    yield from scope.actor(step.sign_in.as_, ("sign_in", "as"))


KIND = registry.register(
    registry.StepKind(
        "sign_in", SignInStep, run, save_roots=("access_token", "id_token"), describe=describe, check=check
    )
)
