"""Where a topology problem is: the dotted key, the environment table it came from, and its line in the TOML.

tomllib keeps no positions, so lines are found in the text (best effort); pydantic's errors become
`(location, message)` pairs that `format_problems` prints as `file:line: dotted.key: message`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def describe_error(error: Any) -> tuple[tuple[int | str, ...], str]:
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (typo?); see docs/topology.md for the keys this table takes"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and error["type"] != "value_error":
        message += f" (got {error['input']!r})"
    return loc, message


def split_dotted(key: str) -> list[int | str]:
    parts: list[int | str] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def format_problems(
    problems: list[tuple[tuple[int | str, ...], str]],
    source: Path,
    text: str,
    env: str,
    override: Mapping[str, Any],
) -> str:
    lines = [f"{source}: invalid topology for environment {env!r} ({len(problems)} problem(s)):"]
    for loc, message in problems:
        key = dotted(loc) or "(top level)"
        if _in_override(override, loc):
            loc = ("environments", env, *loc)
            key = f"environments.{env}.{key}"
        where = _line_of(text, loc)
        lines.append(f"  {source}{':' + str(where) if where else ''}: {key}: {message}")
    lines.append("  (the keys and their meaning are documented in docs/topology.md)")
    return "\n".join(lines)


def _in_override(override: Mapping[str, Any], loc: tuple[int | str, ...]) -> bool:
    node: Any = override
    for part in loc:
        if isinstance(part, str) and isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False
    return bool(loc)


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line of a dotted key in the TOML text (tomllib keeps no positions)."""
    if not text:
        return None
    strs = [p for p in loc if isinstance(p, str)]
    if not strs:
        return None
    lines = text.splitlines()
    # Find the deepest table header that is a prefix of the key, then the key's own line below it.
    best: tuple[int, int] | None = None
    for depth in range(len(strs), 0, -1):
        header = ".".join(strs[:depth])
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped in (f"[{header}]", f"[[{header}]]"):
                best = (i, depth)
                break
        if best:
            break
    start, depth = best if best else (0, 0)
    rest = strs[depth:]
    if not rest:
        return start + 1
    leaf = rest[-1]
    pattern = re.compile(rf"^\s*(\"?{re.escape(leaf)}\"?|[\w.]*\.{re.escape(leaf)})\s*=")
    for i in range(start, len(lines)):
        if i > start and best and lines[i].lstrip().startswith("["):
            break  # the next table: the key is not set in this one
        if pattern.match(lines[i]):
            return i + 1
    return start + 1 if best else None
