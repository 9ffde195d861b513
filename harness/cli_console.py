"""`harness console`: the local web console's URL (harness/webconsole), opened in a browser when there is one.

Registered in harness/cli.py with one `main.add_command` line; the console itself runs as the stack's
`console` component (started by `up`).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from harness.cli_devloop import handled, say


@click.command("console")
@click.option(
    "--open/--no-open", "open_browser", default=None, help="open a browser (default: on a terminal)"
)
@click.pass_obj
@handled
def console(obj: Any, open_browser: bool | None) -> None:
    """Print the web console's URL (mail, objects, rows per tenant, keys, users, tasks)."""
    from harness.errors import HarnessError

    runner = obj.runner()
    component = runner.components().get("console")
    if component is None:
        raise HarnessError(
            "the console is disabled in this topology ([console] enabled = false)",
            hint="set `enabled = true` under [console] in topology.toml, then `harness up`",
        )
    reason = component.health() if component.pid() else "it is not running"
    if reason is not None:
        raise HarnessError(
            f"the console at {component.endpoint} is not up ({reason})", hint="run `harness up`"
        )
    click.echo(component.endpoint)
    if open_browser is None:
        open_browser = sys.stdout.isatty() and sys.stdin.isatty()
    if open_browser:
        import webbrowser

        try:
            webbrowser.get().open(component.endpoint)
        except webbrowser.Error:
            say("no browser found here; open the URL above yourself")
