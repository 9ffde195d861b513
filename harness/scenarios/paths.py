"""Paths into JSON-like data: `items[0].sku`, `error.code`, `["x-header.with.dots"]`, `$` for the root.

One grammar for expectations (`expect.json`), `save:` and `${variables}`: dot-separated names, `[n]` list
indexes (negative counts from the end) and `["quoted key"]` for keys with dots or brackets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

PathPart = str | int

_TOKEN = re.compile(
    r"""
    (?P<name>[^.\[\]"']+)            # a plain key
    | \[(?P<index>-?\d+)\]           # [3] / [-1]
    | \[(?P<quote>["'])(?P<quoted>.*?)(?P=quote)\]   # ["key.with.dots"]
    | (?P<dot>\.)
    """,
    re.VERBOSE,
)


class PathSyntaxError(ValueError):
    """A path that does not follow the grammar."""


def parse_path(text: str) -> tuple[PathPart, ...]:
    """`'items[0].sku'` -> `('items', 0, 'sku')`; `'$'` or `''` -> `()` (the root)."""
    text = text.strip()
    if text in ("", "$"):
        return ()
    if text.startswith("$."):
        text = text[2:]
    elif text.startswith("$["):
        text = text[1:]
    parts: list[PathPart] = []
    position = 0
    expect_part = True
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise PathSyntaxError(f"unexpected {text[position]!r} at position {position + 1} of {text!r}")
        if match.group("dot"):
            if expect_part:
                raise PathSyntaxError(f"empty segment at position {position + 1} of {text!r}")
            expect_part = True
        elif match.group("name") is not None:
            if not expect_part:
                raise PathSyntaxError(f"missing '.' before {match.group('name')!r} in {text!r}")
            parts.append(match.group("name").strip())
            expect_part = False
        elif match.group("index") is not None:
            parts.append(int(match.group("index")))
            expect_part = False
        else:
            parts.append(match.group("quoted"))
            expect_part = False
        position = match.end()
    if expect_part:
        raise PathSyntaxError(f"{text!r} ends with '.'")
    return tuple(parts)


def format_path(parts: Sequence[PathPart]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[^.\[\]\"']+", part):
            out += ("." if out else "") + part
        else:
            out += f'["{part}"]'
    return out or "$"


class Missing:
    """Why a path has no value: the deepest part that exists and what was there instead."""

    def __init__(self, found: Sequence[PathPart], reason: str) -> None:
        self.found = tuple(found)
        self.reason = reason

    def __repr__(self) -> str:
        return f"Missing({format_path(self.found)!r}, {self.reason!r})"


def resolve(data: Any, parts: Sequence[PathPart]) -> Any | Missing:
    """The value at `parts`, or a `Missing` explaining where the path stopped."""
    current = data
    for depth, part in enumerate(parts):
        here = parts[:depth]
        if isinstance(part, int):
            if not isinstance(current, Sequence) or isinstance(current, str | bytes):
                return Missing(here, f"{format_path(here)} is {_kind(current)}, not a list")
            if not -len(current) <= part < len(current):
                return Missing(here, f"{format_path(here)} has {len(current)} item(s), no [{part}]")
            current = current[part]
        else:
            if isinstance(current, Sequence) and not isinstance(current, str | bytes) and part == "length":
                current = len(current)
                continue
            if not isinstance(current, Mapping):
                return Missing(here, f"{format_path(here)} is {_kind(current)}, not an object")
            if part not in current:
                keys = ", ".join(sorted(map(str, current))[:12]) or "none"
                return Missing(here, f"{format_path(here)} has no key {part!r} (keys: {keys})")
            current = current[part]
    return current


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__
