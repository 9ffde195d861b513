"""`fetch: [METHOD] URL`: a plain HTTP request to a full URL (a presigned S3 URL), without a token."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from harness.scenarios import registry
from harness.scenarios.execute import Attempt, StepContext, finish, poll
from harness.scenarios.fields import (
    METHODS,
    SAFE_METHODS,
    Duration,
    HttpExpect,
    StepModel,
)
from harness.scenarios.steps._http import HTTP_SAVE_ROOTS, http_attempt


class FetchStep(StepModel):
    """A plain HTTP request to a full URL (a presigned S3 URL), without a token."""

    fetch: str
    headers: dict[str, str] = {}
    expect: HttpExpect = HttpExpect()
    within: Duration | None = None

    @property
    def method(self) -> str:
        parts = self.fetch.split(None, 1)
        return parts[0].upper() if len(parts) == 2 else "GET"

    @property
    def url(self) -> str:
        parts = self.fetch.split(None, 1)
        return parts[1].strip() if len(parts) == 2 else self.fetch.strip()

    @model_validator(mode="after")
    def _method(self) -> FetchStep:
        if self.method not in METHODS:
            raise ValueError(f"expected 'URL' or 'METHOD URL' with METHOD one of {', '.join(METHODS)}")
        if self.within is not None and self.method not in SAFE_METHODS:
            raise ValueError(f"`within` re-sends the request; {self.method} is not safe to repeat")
        return self


def run(context: StepContext, step: FetchStep) -> dict[str, Any]:
    url = context.text(step.url)
    headers = {k: context.text(v) for k, v in step.headers.items()}

    def attempt() -> Attempt:
        return http_attempt(context, step.expect, context.api.send(step.method, url, headers=headers))

    return finish(*poll(attempt, step.within))


def describe(step: FetchStep) -> str:
    return f"fetch {step.fetch}"


KIND = registry.register(
    registry.StepKind("fetch", FetchStep, run, save_roots=HTTP_SAVE_ROOTS, describe=describe)
)
