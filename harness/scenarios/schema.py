"""The typed schema of a scenario file (docs/scenarios.md describes every key with examples).

```yaml
name: order confirmation reaches the buyer
targets: [local, deployed]
tenants:
  acme: {users: {owner: {role: owner}, buyer: {role: member}}}
steps:
  - as: acme.buyer
    request: POST /api/v1/orders
    json: {items: [{sku: TSHIRT, qty: 2}]}
    expect: {status: 201, json: {id: {type: string}}}
    save: {order_id: json.id}
  - expect_email: {to: acme.buyer, subject_contains: "Order ${order_id}", within: 15s}
```

A step is a mapping with exactly one *kind* key (`request`, `fetch`, `upload`, `sign_in`, `set`, or a probe:
`expect_email`, `expect_object`, `expect_rows`, `expect_redis`, `expect_task`) plus the keys that kind takes.

The step kinds themselves live in harness/scenarios/steps/, one module each, registered in
harness/scenarios/registry.py; this module derives the tagged union of steps (`Step`, `scenario_model()`),
`STEP_KINDS`, `PROBE_KINDS` and `SAVE_ROOTS` from that registry, and re-exports the shared building blocks of
harness/scenarios/fields.py.
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Field, Tag, create_model, field_validator

import harness.scenarios.steps  # noqa: F401  (registers the built-in step kinds)
from harness.scenarios import registry
from harness.scenarios.fields import (  # noqa: F401  (re-exported: the schema's building blocks)
    METHODS,
    SAFE_METHODS,
    TARGETS,
    ActorRef,
    Duration,
    HttpExpect,
    Name,
    ProbeSpec,
    Repeat,
    Role,
    SavePaths,
    SpecModel,
    StatusCodes,
    StepModel,
    TargetName,
    parse_duration,
)
from harness.scenarios.matchers import Matcher
from harness.scenarios.registry import PROBE_KINDS, SAVE_ROOTS, STEP_KINDS, kind_of  # noqa: F401
from harness.scenarios.templates import references

step_kind = registry.step_tag
"""The union tag of a raw step mapping (pydantic's discriminator for `Step`)."""


def step_union() -> Any:
    """The tagged union of every registered step model, discriminated by the one kind key a step carries."""
    members = tuple(Annotated[kind.model, Tag(kind.tag)] for kind in registry.kinds())
    return Annotated[Union[members], Discriminator(registry.step_tag)]  # noqa: UP007


if TYPE_CHECKING:
    Step = StepModel
else:
    Step = step_union()
    """The union of the built-in step kinds (`scenario_model()` includes kinds registered later)."""

# --- who --------------------------------------------------------------------------------------------------


class UserSpec(SpecModel):
    """A Cognito user created fresh for each run; under a tenant it needs the role of its membership."""

    role: Role | None = None
    name: str | None = Field(default=None, description="display name (Cognito `name` attribute)")


class TenantSpec(SpecModel):
    """A tenant created fresh for each run (slug `<key>-<run id>`), its owner first, then the others invited."""

    name: str | None = Field(default=None, description="display name; default: the key, capitalised")
    users: dict[Name, UserSpec] = {}


class Scenario(SpecModel):
    """One scenario file."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    targets: tuple[TargetName, ...]
    vars: dict[Name, Any] = {}
    users: dict[Name, UserSpec] = Field(default={}, description="users with no membership (yet)")
    tenants: dict[Name, TenantSpec] = {}
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_validator("targets")
    @classmethod
    def _targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        if not targets:
            raise ValueError(f"list the targets this scenario is valid on ({', '.join(TARGETS)})")
        if len(set(targets)) != len(targets):
            raise ValueError("a target is listed twice")
        return targets


_MODELS: dict[int, type[Scenario]] = {registry.generation(): Scenario}


def scenario_model() -> type[Scenario]:
    """`Scenario`, or when kinds were registered since, a subclass whose `steps` accept them too."""
    generation = registry.generation()
    if generation not in _MODELS:
        _MODELS.clear()
        steps: Any = (Annotated[list[step_union()], Field(min_length=1)], ...)  # type: ignore[misc]
        _MODELS[generation] = create_model("Scenario", __base__=Scenario, steps=steps)
    return _MODELS[generation]


def names_in(value: Any) -> list[str]:
    """The `${...}` expressions in a value (re-exported for the loader)."""
    return list(references(value))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (through Annotated, unions, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        if not isinstance(argument, str | int | float | bool | types.NoneType):
            found += _models_in(argument)
    return found


def nested_homes(key: str) -> list[str]:
    """Where `key` is a key of a nested mapping (`expect.status`): for an unknown key that belongs one level
    down, so the hint names that place rather than suggesting the key itself."""
    homes: set[str] = set()
    pending: list[type[BaseModel]] = [Scenario, Matcher, *STEP_KINDS.values()]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            for inner in _models_in(info.annotation):
                if key in {i.alias or n for n, i in inner.model_fields.items()}:
                    homes.add(f"{info.alias or name}.{key}")
                pending.append(inner)
    return sorted(homes)


# Every key a scenario may use anywhere: for "did you mean ...?" hints on unknown keys.
def known_keys() -> set[str]:
    keys: set[str] = set()
    pending: list[type[BaseModel]] = [Scenario, Matcher, *STEP_KINDS.values()]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
            pending += _models_in(info.annotation)
    return keys
