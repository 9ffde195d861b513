"""The step registry: every scenario step kind, each declared once in its own module under
harness/scenarios/steps/ (docs/scenarios.md, "Adding a step kind or probe").

A `StepKind` bundles what the engine needs to know about one kind: its key (`expect_email`), its pydantic
model, what `save:` may read from its outcome, what it needs from the target, the load-time checks only it can
make, and how to run it. Everything else is derived from the registry: the schema's tagged union of steps
(`schema.scenario_model()`), `STEP_KINDS`, `PROBE_KINDS`, `SAVE_ROOTS`, `loader.required_capabilities`, the
target capability checks and the runner's dispatch. A probe that needs a client the built-in targets do not
make registers a `Connection` too (same module): the targets make it on first use.

```python
from harness.scenarios import registry
from harness.scenarios.fields import ProbeSpec, StepModel


class PingSpec(ProbeSpec): ...
class PingStep(StepModel):
    ping: PingSpec

def run(context: StepContext, step: PingStep) -> dict[str, Any]: ...

registry.register(registry.StepKind("ping", PingStep, run, save_roots=("status",), probe=True))
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from harness.scenarios.fields import StepModel
from harness.scenarios.source import Loc

if TYPE_CHECKING:
    from harness.scenarios.execute import StepContext
    from harness.scenarios.schema import Scenario
    from harness.scenarios.targets import Capability, DeployedOutputs, TargetSpec
    from harness.testing import RunningStack
    from harness.topology import Topology

Problem = tuple[Loc, str]
"""A load-time problem: where (a path in the scenario data; a kind's hooks give it relative to the step, e.g.
`("expect_email", "to")`, and the loader prefixes `("steps", index)`) and what is wrong."""
Need = tuple["Capability | str", Loc]
"""A capability the step needs from the target (a built-in `Capability`, or the name of a registered
`Connection`), with the field (relative to the step) that needs it."""

S = TypeVar("S", bound=StepModel)


@dataclass(frozen=True)
class CheckScope:
    """What a kind's load-time `check` may consult: the scenario, its actors and the Redis namespaces."""

    scenario: Scenario
    actors: frozenset[str]
    namespaces: tuple[str, ...]

    def actor(self, ref: str | None, loc: Loc) -> Iterable[Problem]:
        """A problem when `ref` names no declared actor (tenant.user or a user under `users:`)."""
        if ref is not None and ref not in self.actors:
            yield loc, f"no actor {ref!r}: actors are tenant.user for users of declared tenants, or a user " \
                f"declared under `users:` (declared: {', '.join(sorted(self.actors)) or 'none'})"  # fmt: skip

    def tenant(self, ref: str, loc: Loc) -> Iterable[Problem]:
        """A problem when `ref` names no declared tenant."""
        tenants = self.scenario.tenants
        if ref not in tenants:
            yield loc, f"no tenant {ref!r} is declared (tenants: {', '.join(tenants) or 'none'})"


def _nothing(*_: Any) -> Iterable[Any]:
    return ()


@dataclass(frozen=True)
class StepKind(Generic[S]):
    """One step kind. Only `key`, `model` and `run` are required; every hook defaults to "nothing"."""

    key: str
    """The kind key a step mapping carries (`request`, `expect_email`); the model has a field of this name."""
    model: type[S]
    run: Callable[[StepContext, S], dict[str, Any]]
    """Run the step; returns its outcome (what `save:` reads); raises `report.StepFailure` when it fails."""
    save_roots: tuple[str, ...] = ()
    """What `save:` paths may start with (the outcome's keys)."""
    probe: bool = False
    """Whether it observes a side effect (`expect_*`) rather than acting."""
    needs: Callable[[S], Iterable[Need]] = field(default=_nothing)
    """The target capabilities the step needs; a target without one refuses the step at load time."""
    describe: Callable[[S], str] | None = None
    """The step in a report line (`expect_email to acme.owner`); default: the kind key."""
    defines: Callable[[S], Iterable[str]] = field(default=_nothing)
    """Variables the step defines besides its `save:` (as `set:` and `extract:` do)."""
    check: Callable[[S, CheckScope], Iterable[Problem]] = field(default=_nothing)
    """Load-time problems only this kind can see (undeclared actors, tenants, namespaces)."""
    check_target: Callable[[S, TargetSpec], Iterable[Problem]] = field(default=_nothing)
    """Load-time problems on a given target beyond missing capabilities."""

    @property
    def tag(self) -> str:
        """The union tag pydantic uses (the model's class name: never a data key, so error paths skip it)."""
        return self.model.__name__

    def label(self, step: S) -> str:
        return self.describe(step) if self.describe is not None else self.key


# Live views, in registration order: the schema, the loader and the docs read these.
STEP_KINDS: dict[str, type[StepModel]] = {}
SAVE_ROOTS: dict[str, tuple[str, ...]] = {}
PROBE_KINDS: list[str] = []
_KINDS: dict[str, StepKind[Any]] = {}
_BY_MODEL: dict[type[StepModel], StepKind[Any]] = {}
_generation = 0


def register(kind: StepKind[S]) -> StepKind[S]:
    """Add a step kind; refuses a key or model already registered, and a model lacking its kind key."""
    global _generation
    if kind.key in _KINDS:
        raise ValueError(
            f"step kind {kind.key!r} is already registered (by {_KINDS[kind.key].model.__module__})"
        )
    if kind.model in _BY_MODEL or any(k.tag == kind.tag for k in _KINDS.values()):
        raise ValueError(f"step model {kind.tag} is already registered; give each kind its own model class")
    fields = kind.model.model_fields
    if kind.key not in fields or fields[kind.key].alias not in (None, kind.key):
        raise ValueError(f"step model {kind.tag} needs a field named {kind.key!r} (the kind key)")
    kind.model.model_rebuild()  # a model whose annotations do not resolve fails here, naming what is missing
    _KINDS[kind.key] = kind
    _BY_MODEL[kind.model] = kind
    STEP_KINDS[kind.key] = kind.model
    SAVE_ROOTS[kind.key] = kind.save_roots
    if kind.probe:
        PROBE_KINDS.append(kind.key)
    _generation += 1
    return kind


def unregister(key: str) -> None:
    """Remove a step kind (tests that register one of their own)."""
    global _generation
    kind = _KINDS.pop(key)
    del _BY_MODEL[kind.model], STEP_KINDS[key], SAVE_ROOTS[key]
    if key in PROBE_KINDS:
        PROBE_KINDS.remove(key)
    _generation += 1


@contextmanager
def registered(kind: StepKind[S]) -> Iterator[StepKind[S]]:
    """`with registered(kind): ...`: the kind exists inside the block only."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.key)


def generation() -> int:
    """Changes whenever a kind is registered or removed (the schema rebuilds its union then)."""
    return _generation


def kinds() -> tuple[StepKind[Any], ...]:
    return tuple(_KINDS.values())


def get(key: str) -> StepKind[Any]:
    return _KINDS[key]


def kind_for(step: StepModel) -> StepKind[Any]:
    """The kind of a validated step."""
    try:
        return _BY_MODEL[type(step)]
    except KeyError:
        raise LookupError(f"{type(step).__name__} is not a registered step model") from None


def kind_of(step: StepModel) -> str:
    """The kind key of a validated step (`request`, `expect_email`, ...)."""
    return kind_for(step).key


def step_tag(value: Any) -> str | None:
    """The union tag of a raw step mapping, or None when it has no kind key or several (pydantic's
    discriminator: the loader turns None into "unknown step kind" or "one step has one kind")."""
    if isinstance(value, StepModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    keys = [key for key in value if key in _KINDS]
    return _KINDS[keys[0]].tag if len(keys) == 1 else None


# --- connections: what a probe reads that the built-in targets do not connect to ----------------------------


@dataclass(frozen=True)
class Connection:
    """A way into the target that a probe needs and the built-in `Target` lacks (its own client).

    Its `name` is a capability: a kind's `needs` names it, a target that cannot make it refuses the step at
    load time with `missing`. The target makes it on first use (`Target.connection(name)`) and closes it
    (its `close()`, if any) with the target."""

    name: str
    local: Callable[[RunningStack], Any] | None = None
    """The client on the local stack; None: local targets lack it."""
    deployed: Callable[[DeployedOutputs, Topology], Any] | None = None
    """The client on a deployed stack, from its outputs; None: deployed targets lack it."""
    missing: str = ""
    """Why a target lacks it (the load-time refusal); default: "the <target> target has no <name> probe"."""

    def available_on(self, target: str) -> bool:
        return (
            self.local if target == "local" else self.deployed if target == "deployed" else None
        ) is not None


CONNECTIONS: dict[str, Connection] = {}


def register_connection(connection: Connection) -> Connection:
    """Add a connection; refuses a name already registered or a built-in capability's."""
    from harness.scenarios.targets import Capability

    if connection.name in CONNECTIONS or connection.name in set(Capability):
        raise ValueError(f"connection {connection.name!r} is already a capability; choose another name")
    CONNECTIONS[connection.name] = connection
    return connection


def unregister_connection(name: str) -> None:
    del CONNECTIONS[name]
