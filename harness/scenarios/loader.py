"""Load a scenario file: YAML with line numbers -> the typed schema -> checks that need the whole file.

Everything that can be known before running is refused here, every problem at once, each naming the file, the
line and the dotted field (`scenarios/orders.yaml:14: steps[2].expect.status: expected an HTTP status ...`):
schema errors, unknown step kinds, undeclared actors and tenants, variables used before any step saves them,
Redis keys outside the declared namespaces, and steps the chosen target cannot run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import ScenarioError
from harness.scenarios import registry
from harness.scenarios.fields import StepModel
from harness.scenarios.matchers import show
from harness.scenarios.paths import parse_path
from harness.scenarios.registry import SAVE_ROOTS, STEP_KINDS, CheckScope, Need, Problem, kind_of
from harness.scenarios.schema import Scenario, known_keys, nested_homes, scenario_model
from harness.scenarios.source import Loc, YamlDocument, dotted, load_yaml
from harness.scenarios.targets import TargetSpec
from harness.scenarios.templates import check_reference, references

BUILTIN_ROOTS = ("tenants", "users", "run", "target")
MAX_PROBLEMS = 25


@dataclass(frozen=True)
class PlannedStep:
    index: int
    kind: str
    step: StepModel
    line: int | None
    runs: bool  # False: `only:` excludes the chosen target

    @property
    def label(self) -> str:
        """`the buyer orders two — POST /api/v1/orders as acme.buyer` (the name, then what the step does)."""
        what = describe_step(self.step)
        return f"{self.step.name} — {what}" if self.step.name else what


@dataclass(frozen=True)
class LoadedScenario:
    source: Path
    document: YamlDocument
    scenario: Scenario
    target: TargetSpec
    steps: tuple[PlannedStep, ...]

    @property
    def applicable(self) -> bool:
        """Whether the scenario lists the chosen target."""
        return self.target.name in self.scenario.targets

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def line(self) -> int:
        return self.document.line_of(("name",)) or 1

    def where(self, step: PlannedStep) -> str:
        return f"{self.source}:{step.line}" if step.line else str(self.source)


def describe_step(step: StepModel) -> str:
    """`POST /api/v1/orders as acme.buyer`, `expect_email to acme.owner`, ... (the kind's `describe`)."""
    return registry.kind_for(step).label(step)


def load_scenario(
    path: Path, *, target: TargetSpec, namespaces: Sequence[str], text: str | None = None
) -> LoadedScenario:
    """Parse and check a scenario for `target`; a `ScenarioError` lists every problem found."""
    document = load_yaml(path, text)
    if not isinstance(document.data, dict):
        raise ScenarioError(
            f"{path}:1: expected a mapping with name, targets, tenants and steps (got {show(document.data)})",
            hint="see docs/scenarios.md for the shape of a scenario file",
        )
    try:
        scenario = scenario_model().model_validate(document.data)
    except ValidationError as exc:
        problems = [_describe(document, error) for error in exc.errors()]
        raise ScenarioError(_format(path, document, problems), hint=_HINT) from None
    problems = list(_semantic_problems(document, scenario, namespaces))
    if target.name in scenario.targets:
        problems += _target_problems(document, scenario, target)
    if problems:
        raise ScenarioError(_format(path, document, problems), hint=_HINT) from None
    steps = tuple(
        PlannedStep(
            index=i,
            kind=kind_of(step),
            step=step,
            line=document.line_of(("steps", i)),
            runs=step.only is None or target.name in step.only,
        )
        for i, step in enumerate(scenario.steps)
    )
    return LoadedScenario(path, document, scenario, target, steps)


_HINT = "the keys, step kinds and matchers are documented in docs/scenarios.md"


def _format(path: Path, document: YamlDocument, problems: list[Problem]) -> str:
    unique: list[Problem] = []
    for problem in problems:
        if problem not in unique:
            unique.append(problem)
    lines = [f"{path}: invalid scenario ({len(unique)} problem(s)):"]
    for loc, message in unique[:MAX_PROBLEMS]:
        line = document.key_line(loc)
        lines.append(f"  {path}{':' + str(line) if line else ''}: {dotted(loc)}: {message}")
    if len(unique) > MAX_PROBLEMS:
        lines.append(f"  ... and {len(unique) - MAX_PROBLEMS} more")
    return "\n".join(lines)


# --- pydantic errors -> (data path, message) --------------------------------------------------------------


def _data_loc(data: Any, loc: Sequence[int | str], missing: bool) -> Loc:
    """The path in the data that a pydantic `loc` points at (union tags and model names skipped)."""
    out: list[int | str] = []
    node: Any = data
    for position, part in enumerate(loc):
        if _has(node, part):
            out.append(part)
            node = node[part]
        elif missing and position == len(loc) - 1:
            out.append(part)
    return tuple(out)


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _describe(document: YamlDocument, error: Any) -> Problem:
    kind = error["type"]
    loc = _data_loc(document.data, tuple(error["loc"]), missing=kind == "missing")
    value = error.get("input")
    if kind in ("union_tag_not_found", "union_tag_invalid") and len(loc) == 2 and loc[0] == "steps":
        return loc, _step_kind_problem(value)
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        if key in known_keys():  # a real key, one level off: say where it goes, not "did you mean <itself>"
            homes = nested_homes(key)
            where = f"; it is a key of {' or '.join(homes)}" if homes else ""
            return loc, f"unknown key here{where} (see docs/scenarios.md)"
        close = difflib.get_close_matches(key, sorted(known_keys()), n=1)
        return loc, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return loc, f"expected an integer (got {show(value)})"
    if kind in ("string_type",):
        return loc, f"expected a string (got {show(value)})"
    if kind in ("bool_parsing", "bool_type"):
        return loc, f"expected true or false (got {show(value)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"expected a mapping (got {show(value)})"
    if kind in ("list_type", "tuple_type"):
        return loc, f"expected a list (got {show(value)})"
    if kind == "literal_error":
        return (
            loc,
            f"expected {error.get('ctx', {}).get('expected', 'one of the allowed values')} (got {show(value)})",
        )
    if kind == "string_pattern_mismatch":
        if tuple(error["loc"])[-1:] == ("[key]",):
            return (
                loc,
                f"{show(value)} is not a valid name (lowercase letters, digits, _; starting with a letter)",
            )
        return loc, f"{show(value)} does not have the expected form ({error.get('ctx', {}).get('pattern')})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error") or kind not in _PYDANTIC_KINDS_WITH_INPUT:
        return loc, message[0].lower() + message[1:] if message else message
    return loc, f"{message[0].lower() + message[1:]} (got {show(value)})"


_PYDANTIC_KINDS_WITH_INPUT = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "too_short",
        "too_long",
        "float_parsing",
    }
)


def _step_kind_problem(value: Any) -> str:
    kinds = ", ".join(STEP_KINDS)
    if not isinstance(value, dict):
        return f"a step is a mapping with one of: {kinds} (got {show(value)})"
    given = [key for key in value if key in STEP_KINDS]
    if len(given) > 1:
        return f"one step has one kind; got {' and '.join(given)}: split it into {len(given)} steps"
    hints = []
    for key in value:
        close = difflib.get_close_matches(str(key), list(STEP_KINDS), n=1, cutoff=0.7)
        if close:
            hints.append(f"{key!r} -> {close[0]!r}?")
    keys = ", ".join(map(str, value)) or "none"
    return f"unknown step kind: a step needs one of {kinds} (got keys: {keys})" + (
        f"; did you mean {', '.join(hints)}" if hints else ""
    )


# --- whole-file checks ------------------------------------------------------------------------------------


def _semantic_problems(
    document: YamlDocument, scenario: Scenario, namespaces: Sequence[str]
) -> Iterable[Problem]:
    for tenant_key, tenant in scenario.tenants.items():
        for user_key, user in tenant.users.items():
            if user.role is None:
                yield (
                    ("tenants", tenant_key, "users", user_key),
                    "a tenant's user needs a role (owner, admin or member)",
                )
    for user_key, user in scenario.users.items():
        if user.role is not None:
            yield (
                ("users", user_key, "role"),
                "a user outside tenants has no membership, so no role; declare it under a tenant's users",
            )
        if user_key in scenario.tenants:
            yield (("users", user_key), f"{user_key!r} names both a user and a tenant; rename one")
    actors = {f"{t}.{u}" for t, spec in scenario.tenants.items() for u in spec.users} | set(scenario.users)
    raw_steps = document.data.get("steps", []) if isinstance(document.data, dict) else []
    # A reference problem found on every target is reported once; on some targets only, it says which.
    by_target: dict[Problem, list[str]] = {}
    for target in scenario.targets:
        defined = set(BUILTIN_ROOTS) | set(scenario.vars)
        for index, step in enumerate(scenario.steps):
            at: Loc = ("steps", index)
            if target == scenario.targets[0]:
                yield from _step_problems(at, step, scenario, actors, namespaces)
            runs = step.only is None or target in step.only
            if not runs:
                continue
            raw = raw_steps[index] if index < len(raw_steps) else {}
            for expression in _templates_of(raw):
                problem = _reference_problem(expression, defined, scenario)
                if problem:
                    by_target.setdefault((at, problem), []).append(target)
            if registry.kind_for(step).key == "set":  # rendered value by value, in order
                for loc, problem in _set_problems(at, vars(step)["set"], defined, scenario):
                    by_target.setdefault((loc, problem), []).append(target)
            defined |= _defines(step)
    for (at, problem), targets in by_target.items():
        partial = len(targets) < len(scenario.targets)
        yield at, problem + (f" (on target {', '.join(targets)})" if partial else "")
    yield from _vars_problems(document.data.get("vars", {}), scenario)


def _vars_problems(raw_vars: Any, scenario: Scenario) -> Iterator[Problem]:
    """`vars:` values are rendered with the built-ins only: a reference to another variable of `vars:` is
    refused at that variable's own key, naming the cycle when there is one."""
    if not isinstance(raw_vars, dict):
        return
    graph = {name: _roots_of(value) & set(raw_vars) for name, value in raw_vars.items()}
    for name, value in raw_vars.items():
        for expression in references(value):
            root = _root_of(expression)
            if root in raw_vars and root not in BUILTIN_ROOTS:
                cycle = _cycle_through(graph, str(name), root)
                why = f" ({' → '.join(cycle)} is a cycle)" if cycle else ""
                yield (
                    ("vars", name),
                    (
                        f"${{{expression}}}: a `vars:` value may use only the built-ins ({', '.join(BUILTIN_ROOTS)}), "
                        f"not another variable of `vars:`{why}; build {name!r} from {root!r} in a `set:` step"
                    ),
                )
                continue
            problem = _reference_problem(expression, set(BUILTIN_ROOTS), scenario)
            if problem:
                yield ("vars", name), problem


def _set_problems(
    at: Loc, values: dict[str, Any], defined: set[str], scenario: Scenario
) -> Iterator[Problem]:
    """A `set:` renders its values in order: a value may use the variables defined before the step and the
    keys above it, not itself or a key below it (which would be a cycle or a use before definition)."""
    graph = {name: _roots_of(value) & set(values) for name, value in values.items()}
    available = set(defined)
    for name, value in values.items():
        for expression in references(value):
            root = _root_of(expression)
            if root in graph and root not in available:
                cycle = _cycle_through(graph, name, root)
                why = f"{' → '.join(cycle)} is a cycle" if cycle else f"{root!r} is set below {name!r}"
                yield (
                    (*at, "set", name),
                    (
                        f"${{{expression}}}: `set:` values are rendered in order and {why}; "
                        "use a variable defined earlier, or set it in an earlier step"
                    ),
                )
                continue
            problem = _reference_problem(expression, available, scenario)
            if problem:
                yield (*at, "set", name), problem
        available.add(name)


def _root_of(expression: str) -> str:
    try:
        return str(check_reference(expression)[0])
    except ValueError:
        return ""


def _roots_of(value: Any) -> set[str]:
    return {_root_of(e) for e in references(value)}


def _cycle_through(graph: dict[str, set[str]], start: str, via: str) -> list[str] | None:
    """The shortest path `start → via → … → start` in `graph`, or None."""
    paths: list[list[str]] = [[start, via]]
    seen = {via}
    while paths:
        path = paths.pop(0)
        if path[-1] == start:
            return path
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return None


def _templates_of(raw: Any) -> list[str]:
    """The `${...}` of a raw step, except in `save:` (its values are paths, not templates) and `set:`
    (checked value by value, in order: `_set_problems`)."""
    if not isinstance(raw, dict):
        return []
    return list(references({k: v for k, v in raw.items() if k not in ("save", "set")}))


def _defines(step: StepModel) -> set[str]:
    return set(step.save) | set(registry.kind_for(step).defines(step))


def _reference_problem(expression: str, defined: set[str], scenario: Scenario) -> str | None:
    try:
        parts = check_reference(expression)
    except ValueError as exc:
        return str(exc)
    root = str(parts[0])
    if root not in defined:
        close = difflib.get_close_matches(root, sorted(defined), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"${{{expression}}}: {root!r} is not defined here{hint}; a variable comes from `vars:`, " \
            "`set:`, or the `save:`/`extract:` of an earlier step"  # fmt: skip
    if root == "tenants" and len(parts) >= 2 and parts[1] not in scenario.tenants:
        return f"${{{expression}}}: no tenant {parts[1]!r} is declared (tenants: {', '.join(scenario.tenants) or 'none'})"
    if root == "users" and len(parts) >= 2:
        name = str(parts[1])
        if name in scenario.tenants:
            users = scenario.tenants[name].users
            if len(parts) >= 3 and parts[2] not in users:
                return f"${{{expression}}}: tenant {name!r} declares no user {parts[2]!r} (users: {', '.join(users) or 'none'})"
        elif name not in scenario.users:
            return f"${{{expression}}}: no user {name!r} is declared (users: {', '.join(scenario.users) or 'none'}; a tenant's user is users.<tenant>.<user>)"
    if root == "run" and len(parts) >= 2 and parts[1] not in ("id", "utc_month", "started_at"):
        return f"${{{expression}}}: run has id, utc_month and started_at"
    if root == "target" and len(parts) >= 2 and parts[1] not in ("name", "api_url"):
        return f"${{{expression}}}: target has name and api_url"
    return None


def _step_problems(
    at: Loc, step: StepModel, scenario: Scenario, actors: set[str], namespaces: Sequence[str]
) -> Iterable[Problem]:
    kind = kind_of(step)
    for target in step.only or ():
        if target not in scenario.targets:
            yield (
                (*at, "only"),
                f"{target!r} is not one of this scenario's targets ({', '.join(scenario.targets)})",
            )
    for name, path in step.save.items():
        root = parse_path(path)[0]
        if root not in SAVE_ROOTS[kind]:
            yield (
                (*at, "save", name),
                f"a {kind} step can save {', '.join(SAVE_ROOTS[kind]) or 'nothing'} (got {path!r})",
            )
    for name in _defines(step):
        if name in BUILTIN_ROOTS:
            yield at, f"{name!r} is a built-in variable; choose another name"

    scope = CheckScope(scenario, frozenset(actors), tuple(namespaces))
    for loc, message in registry.kind_for(step).check(step, scope):
        yield (*at, *loc), message


def required_capabilities(step: StepModel) -> list[Need]:
    """What a step needs from the target, each with the field that needs it (the kind's `needs`)."""
    return list(registry.kind_for(step).needs(step))


def _target_problems(document: YamlDocument, scenario: Scenario, target: TargetSpec) -> list[Problem]:
    problems: list[Problem] = []
    for index, step in enumerate(scenario.steps):
        if step.only is not None and target.name not in step.only:
            continue
        for capability, field in required_capabilities(step):
            if not target.can(capability):
                problems.append(
                    (
                        ("steps", index, *field),
                        f"target {target.name} cannot run this: {target.why_not(capability)}",
                    )
                )
        for loc, message in registry.kind_for(step).check_target(step, target):
            problems.append((("steps", index, *loc), message))
    return problems
