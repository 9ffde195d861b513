"""Matchers: what an expected value may say besides "equal to this".

In an expectation a scalar or a list is compared for equality; a mapping is a matcher, every key of which must
hold: `{gt: 0}`, `{type: string, matches: '^[0-9a-f-]{36}$'}`, `{contains: TSHIRT}`, `{exists: false}`.
To compare with a literal object, write `{eq: {...}}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, field_validator, model_validator

from harness.scenarios.paths import Missing
from harness.scenarios.templates import references, render

TypeName = Literal["string", "integer", "number", "boolean", "array", "object", "null"]
Number = int | float | str  # a string may be a ${variable} that renders to a number

MATCHER_KEYS = (
    "eq", "ne", "gt", "ge", "lt", "le", "between", "one_of", "contains", "not_contains",
    "starts_with", "ends_with", "matches", "type", "length", "exists",
)  # fmt: skip


class Matcher(BaseModel):
    """Every given key must hold for the actual value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eq: Any = None
    ne: Any = None
    gt: Number | None = None
    ge: Number | None = None
    lt: Number | None = None
    le: Number | None = None
    between: tuple[Number, Number] | None = None
    one_of: list[Any] | None = None
    contains: Any = None
    not_contains: Any = None
    starts_with: str | None = None
    ends_with: str | None = None
    matches: str | None = None
    type: TypeName | None = None
    length: int | Matcher | None = None
    exists: bool | None = None

    @field_validator("matches")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        if pattern is not None and not list(references(pattern)):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _not_empty(self) -> Matcher:
        if not self.model_fields_set:
            raise ValueError(f"an empty matcher matches nothing; use one of: {', '.join(MATCHER_KEYS)}")
        return self

    def given(self) -> dict[str, Any]:
        """The keys the scenario gave, in a stable order."""
        return {key: getattr(self, key) for key in MATCHER_KEYS if key in self.model_fields_set}


def _expected_kind(value: Any) -> str:
    return "Matcher" if isinstance(value, dict | Matcher) else "literal"


Expected = Annotated[
    Annotated[Matcher, Tag("Matcher")] | Annotated[Any, Tag("literal")],
    Discriminator(_expected_kind),
]
"""An expected value: a literal (compared for equality) or a `Matcher` (a mapping)."""


def render_expected(expected: Any, variables: Mapping[str, Any]) -> Any:
    """`expected` with `${...}` filled in (matchers keep their shape)."""
    if isinstance(expected, Matcher):
        update: dict[str, Any] = {}
        for key, value in expected.given().items():
            update[key] = (
                render_expected(value, variables) if isinstance(value, Matcher) else render(value, variables)
            )
        return expected.model_copy(update=update)
    return render(expected, variables)


def check(expected: Any, actual: Any) -> list[str]:
    """Why `actual` does not match `expected` (empty: it matches). `actual` may be a `paths.Missing`."""
    if isinstance(expected, Matcher):
        return _check_matcher(expected, actual)
    if isinstance(actual, Missing):
        return [f"expected {show(expected)}, but {actual.reason}"]
    if not _equal(expected, actual):
        return [f"expected {show(expected)}, got {show(actual)}"]
    return []


def describe(expected: Any) -> str:
    """A short human form of an expectation: `200`, `> 0`, `contains 'x'`."""
    if not isinstance(expected, Matcher):
        return show(expected)
    parts = []
    for key, value in expected.given().items():
        if key == "length":
            parts.append(f"length {describe(value)}")
        elif key == "between":
            parts.append(f"between {show(value[0])} and {show(value[1])}")
        else:
            symbol = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}.get(key)
            parts.append(f"{symbol} {show(value)}" if symbol else f"{key.replace('_', ' ')} {show(value)}")
    return " and ".join(parts)


def _check_matcher(matcher: Matcher, actual: Any) -> list[str]:
    given = matcher.given()
    if isinstance(actual, Missing):
        if given.get("exists") is False:
            return []
        return [f"expected {describe(matcher)}, but {actual.reason}"]
    problems: list[str] = []
    for key, expected in given.items():
        problem = _CHECKS[key](expected, actual)
        if problem:
            problems.append(f"expected {describe(matcher)}, got {show(actual)} ({problem})")
            break
    return problems


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _compare(op: Callable[[float, float], bool], symbol: str) -> Callable[[Any, Any], str | None]:
    def run(expected: Any, actual: Any) -> str | None:
        a, e = _number(actual), _number(expected)
        if e is None:
            return f"{show(expected)} is not a number"
        if a is None:
            return "not a number"
        return None if op(a, e) else f"not {symbol} {show(expected)}"

    return run


def _between(expected: Any, actual: Any) -> str | None:
    low, high = _number(expected[0]), _number(expected[1])
    value = _number(actual)
    if low is None or high is None:
        return "the bounds are not numbers"
    if value is None:
        return "not a number"
    return None if low <= value <= high else "out of range"


def _contains(expected: Any, actual: Any) -> str | None:
    if isinstance(actual, str):
        return None if str(expected) in actual else "substring not found"
    if isinstance(actual, Mapping):
        if isinstance(expected, Mapping):
            ok = all(k in actual and _equal(v, actual[k]) for k, v in expected.items())
            return None if ok else "the object lacks those key/values"
        return None if expected in actual else "no such key"
    if isinstance(actual, Sequence):
        for item in actual:
            if isinstance(expected, Mapping) and isinstance(item, Mapping):
                if all(k in item and _equal(v, item[k]) for k, v in expected.items()):
                    return None
            elif _equal(expected, item):
                return None
        return "no such item"
    return "cannot look inside " + show(actual)


def _not_contains(expected: Any, actual: Any) -> str | None:
    return "it does" if _contains(expected, actual) is None else None


def _type(expected: str, actual: Any) -> str | None:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list | tuple),
        "object": lambda v: isinstance(v, Mapping),
        "null": lambda v: v is None,
    }
    return None if checks[expected](actual) else "wrong type"


def _length(expected: Any, actual: Any) -> str | None:
    if not isinstance(actual, str | Sequence | Mapping):
        return "has no length"
    problems = check(expected, len(actual))
    return None if not problems else f"length {len(actual)}"


def _matches(expected: str, actual: Any) -> str | None:
    if not isinstance(actual, str | int | float) or isinstance(actual, bool):
        return "not a string"
    return None if re.search(expected, str(actual)) else "no match"


def _text_check(test: Callable[[str, str], bool]) -> Callable[[Any, Any], str | None]:
    def run(expected: Any, actual: Any) -> str | None:
        if not isinstance(actual, str):
            return "not a string"
        return None if test(actual, str(expected)) else "no"

    return run


_CHECKS: dict[str, Callable[[Any, Any], str | None]] = {
    "eq": lambda e, a: None if _equal(e, a) else "not equal",
    "ne": lambda e, a: "equal" if _equal(e, a) else None,
    "gt": _compare(lambda a, e: a > e, ">"),
    "ge": _compare(lambda a, e: a >= e, ">="),
    "lt": _compare(lambda a, e: a < e, "<"),
    "le": _compare(lambda a, e: a <= e, "<="),
    "between": _between,
    "one_of": lambda e, a: None if any(_equal(x, a) for x in e) else "not one of them",
    "contains": _contains,
    "not_contains": _not_contains,
    "starts_with": _text_check(str.startswith),
    "ends_with": _text_check(str.endswith),
    "matches": _matches,
    "type": _type,
    "length": _length,
    "exists": lambda e, a: None if e else "it exists",
}


def _equal(expected: Any, actual: Any) -> bool:
    """Equality, lenient only between a number and its text (headers are strings)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual if isinstance(expected, bool) and isinstance(actual, bool) else False
    if isinstance(expected, str) != isinstance(actual, str):
        e, a = _number(expected), _number(actual)
        return e is not None and a is not None and e == a
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and all(_equal(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(
            _equal(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return bool(expected == actual)


def show(value: Any, limit: int = 200) -> str:
    """A value as JSON, shortened."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except ValueError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
