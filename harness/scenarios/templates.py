"""`${variables}` in scenario values: found statically at load time, filled in at run time.

`"${order_id}"` alone keeps the variable's JSON type (a number stays a number, an object an object);
inside a longer string it is interpolated (objects and lists as JSON). `$${` writes a literal `${`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from harness.scenarios.paths import Missing, PathSyntaxError, format_path, parse_path, resolve

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")


class UndefinedVariable(LookupError):
    """A `${name}` with no value (at run time: a saved value lacks the sub-path)."""

    def __init__(self, reference: str, reason: str) -> None:
        super().__init__(f"${{{reference}}}: {reason}")
        self.reference = reference
        self.reason = reason


def references(value: Any) -> Iterator[str]:
    """Every `${...}` expression in `value` (strings, and lists/dicts of them, keys included)."""
    if isinstance(value, str):
        for match in _REFERENCE.finditer(value):
            if match.group(1) is not None:
                yield match.group(1).strip()
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references(key)
            yield from references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from references(item)


def check_reference(expression: str) -> tuple[str | int, ...]:
    """The parsed path of one `${...}` expression; `ValueError` with a reason when malformed."""
    if not expression:
        raise ValueError("empty ${}")
    try:
        parts = parse_path(expression)
    except PathSyntaxError as exc:
        raise ValueError(f"${{{expression}}}: {exc}") from None
    if not parts or not isinstance(parts[0], str):
        raise ValueError(f"${{{expression}}}: must start with a variable name")
    return parts


def lookup(expression: str, variables: Mapping[str, Any]) -> Any:
    parts = check_reference(expression)
    value = resolve(variables, parts)
    if isinstance(value, Missing):
        if not value.found:
            raise UndefinedVariable(expression, "no such variable")
        raise UndefinedVariable(
            expression,
            value.reason.replace(format_path(value.found), "${" + format_path(value.found) + "}", 1),
        )
    return value


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """`value` with every `${...}` filled from `variables` (recursively through lists and dicts)."""
    if isinstance(value, str):
        return _render_string(value, variables)
    if isinstance(value, Mapping):
        return {render(k, variables): render(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, variables) for item in value]
    return value


def render_text(value: str, variables: Mapping[str, Any]) -> str:
    """Like `render`, but always a string."""
    rendered = render(value, variables)
    return rendered if isinstance(rendered, str) else _as_text(rendered)


def _render_string(text: str, variables: Mapping[str, Any]) -> Any:
    whole = _REFERENCE.fullmatch(text)
    if whole and whole.group(1) is not None:
        return lookup(whole.group(1).strip(), variables)

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "${"
        return _as_text(lookup(match.group(1).strip(), variables))

    return _REFERENCE.sub(fill, text)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)
