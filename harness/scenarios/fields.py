"""The building blocks every scenario step kind shares: names, durations, status codes, HTTP expectations,
the step and probe base models (docs/scenarios.md describes every key).

A step kind's module (harness/scenarios/steps/) builds its model from these: a `StepModel` subclass with
exactly one *kind* key, e.g. `expect_email: EmailProbe` where `EmailProbe` is a `ProbeSpec`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from harness.scenarios.matchers import Expected, show
from harness.scenarios.paths import PathSyntaxError, parse_path

TARGETS = ("local", "deployed")
TargetName = Literal["local", "deployed"]
Role = Literal["owner", "admin", "member"]
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")]
"""A tenant, user or variable name: lowercase letters, digits and `_`, starting with a letter."""

ActorRef = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,23}(\.[a-z][a-z0-9_]{0,23})?$")]
"""`tenant.user` for a member of a declared tenant, or `user` for a user declared under `users:`."""


def parse_duration(value: Any) -> float:
    """`10s`, `500ms`, `2m`, `1.5s` or a number of seconds."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "duration", "expected a duration like 10s, 500ms or 2m (got {value})", {"value": show(value)}
        )
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", value)):
        seconds = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    else:
        raise PydanticCustomError(
            "duration", "expected a duration like 10s, 500ms or 2m (got {value})", {"value": show(value)}
        )
    if not 0 < seconds <= 600:
        raise PydanticCustomError(
            "duration", "a duration must be more than 0 and at most 10m (got {value})", {"value": show(value)}
        )
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _status_codes(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    codes: list[int] = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise PydanticCustomError(
                "status",
                "expected an HTTP status code (an integer 100-599) or a list of them (got {value})",
                {"value": show(value)},
            )
        codes.append(item)
    if not codes:
        raise PydanticCustomError("status", "give at least one status code", {})
    return tuple(codes)


StatusCodes = Annotated[tuple[int, ...], BeforeValidator(_status_codes)]


def _json_paths(value: dict[str, Any]) -> dict[str, Any]:
    for path in value:
        try:
            parse_path(path)
        except PathSyntaxError as exc:
            raise ValueError(f"bad path {path!r}: {exc}") from None
    return value


def _save_paths(value: dict[str, str]) -> dict[str, str]:
    for name, path in value.items():
        try:
            parts = parse_path(path)
        except PathSyntaxError as exc:
            raise ValueError(f"{name}: bad path {path!r}: {exc}") from None
        if not parts:
            raise ValueError(f"{name}: say what to save, e.g. json.id, headers.location, status")
    return value


class SpecModel(BaseModel):
    """The base of every scenario model: frozen, unknown keys refused, aliases (`as`, `json`) accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --- expectations -----------------------------------------------------------------------------------------


class HttpExpect(SpecModel):
    status: StatusCodes | None = None
    headers: dict[str, Expected] = {}
    json_: Annotated[dict[str, Expected], BeforeValidator(lambda v: _json_paths(v) if isinstance(v, dict) else v)] = Field(default={}, alias="json")  # fmt: skip
    body: Expected = None

    @field_validator("headers")
    @classmethod
    def _lower(cls, headers: dict[str, Any]) -> dict[str, Any]:
        return {name.lower(): value for name, value in headers.items()}


class Repeat(SpecModel):
    """Send the same request until the response matches `until` (at most `max` times)."""

    until: HttpExpect
    max: Annotated[int, Field(ge=1, le=100_000)] = 1000


SavePaths = Annotated[
    dict[Name, str], BeforeValidator(lambda v: _save_paths(v) if isinstance(v, dict) else v)
]


class StepModel(SpecModel):
    """A scenario step: the keys every kind shares; a kind adds its own key (see harness/scenarios/registry.py)."""

    name: str | None = Field(default=None, description="label in reports")
    only: tuple[TargetName, ...] | None = Field(
        default=None, description="run this step on these targets only"
    )
    save: SavePaths = {}

    @field_validator("only")
    @classmethod
    def _only(cls, only: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if only is not None and not only:
            raise ValueError("list at least one target (or remove `only`)")
        return only


class ProbeSpec(SpecModel):
    """The spec of a probe step (`expect_*`): what it observes; `within` polls until it holds."""

    within: Duration | None = Field(default=None, description="poll until it holds or the deadline passes")
