"""Human output on stderr that never interprets what it prints.

Messages, hints, quoted logs, file names and table cells carry user text (`[app]`, `expected ',' or ']'`,
a pydantic pattern such as `^[A-Z]{3}$`, an emoji code like `:x:`). rich would read brackets as markup and
colons as emoji codes and drop them, so every console here has markup and emoji off, and colour is added
only through `styled()` spans, whose text is never parsed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from harness.errors import HarnessError


def plain_console(*, stderr: bool = True, **options: object) -> Console:
    """A Console that prints strings verbatim (no markup, no emoji codes, no highlighting)."""
    width = None if (sys.stderr if stderr else sys.stdout).isatty() else 120
    settings: dict[str, object] = {"width": width, **options}
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, **settings)  # type: ignore[arg-type]


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line of plain strings and (text, style) spans; no part is parsed as markup."""
    return Text.assemble(*parts)


def error_lines(exc: HarnessError) -> list[Text]:
    """What the CLI prints for a HarnessError: the message and its hint, verbatim."""
    lines = [styled(("error:", "bold red"), " ", exc.message)]
    if exc.hint:
        lines.append(styled(("hint:", "yellow"), " ", exc.hint))
    return lines


def print_error(exc: HarnessError, console: Console) -> None:
    for line in error_lines(exc):
        console.print(line)
