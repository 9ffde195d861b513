"""YAML that remembers where each value came from: `load_yaml` returns plain data plus a line for every path.

PyYAML's `compose` keeps a mark (line, column) on every node; we build the data ourselves from the node tree so
that each mapping key, mapping value and sequence item gets a line, and so that duplicate keys (which
`safe_load` silently resolves to the last one) are an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ScenarioError

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class YamlDocument:
    """The data of one YAML file and, for each path in it, the line (1-based) it starts on."""

    source: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    key_lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[int | str]) -> int | None:
        """The line of the deepest existing prefix of `loc` (a missing key points at its parent mapping)."""
        path = tuple(loc)
        if path in self.key_lines and path not in self.lines:
            return self.key_lines[path]
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def key_line(self, loc: Sequence[int | str]) -> int | None:
        """The line of a mapping key itself (for 'unknown key' errors), else `line_of`."""
        return self.key_lines.get(tuple(loc)) or self.line_of(loc)

    def where(self, loc: Sequence[int | str]) -> str:
        line = self.line_of(loc)
        return f"{self.source}:{line}" if line else str(self.source)


def dotted(loc: Sequence[int | str]) -> str:
    """`('steps', 2, 'expect', 'status')` -> `steps[2].expect.status`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def load_yaml(source: Path, text: str | None = None) -> YamlDocument:
    """Parse one YAML document; syntax errors and duplicate keys are a `ScenarioError` naming file:line."""
    if text is None:
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{source}: cannot read the scenario file ({exc.strerror})") from exc
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise ScenarioError(
            f"{where}: not valid YAML: {exc.problem or exc}",
            hint="check indentation and quoting there (a value starting with { [ * & ! | > needs quotes)",
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if len(nodes) != 1:
        raise ScenarioError(
            f"{source}: expected exactly one YAML document, found {len(nodes)}",
            hint="one scenario per file; remove the extra `---` separators" if nodes else None,
        )
    builder = _Builder(source)
    data = builder.build(nodes[0], ())
    return YamlDocument(source, data, builder.lines, builder.key_lines)


class _Builder:
    def __init__(self, source: Path) -> None:
        self.source = source
        self.lines: dict[Loc, int] = {}
        self.key_lines: dict[Loc, int] = {}
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in _merged_pairs(node):
            key = self._constructor.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise ScenarioError(
                    f"{self.source}:{key_node.start_mark.line + 1}: {dotted(loc)}: a mapping key must be a scalar"
                )
            if key in out:
                raise ScenarioError(
                    f"{self.source}:{key_node.start_mark.line + 1}: {dotted((*loc, key))}: duplicate key "
                    f"(first given on line {self.key_lines[(*loc, key)]})",
                    hint="YAML keeps only the last value of a repeated key; remove or rename one",
                )
            self.key_lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*loc, key))
        return out


def _merged_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """The mapping's pairs with YAML merge keys (`<<: *base`) expanded, explicit keys winning."""
    explicit = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
    explicit_keys = {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)}
    for key_node, value_node in node.value:
        if key_node.tag != "tag:yaml.org,2002:merge":
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if isinstance(source, yaml.MappingNode):
                for k, v in _merged_pairs(source):
                    if isinstance(k, yaml.ScalarNode) and k.value not in explicit_keys:
                        explicit_keys.add(k.value)
                        yield k, v
    yield from explicit
