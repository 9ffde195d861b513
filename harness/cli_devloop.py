"""`harness mail`, `harness tenant`, `harness db`, `harness restart`: the developer's loop on a running stack.

Registered in harness/cli.py (one `main.add_command` line each). The work is in harness/devloop/; this module
only parses options and prints. harness.cli is imported when a command runs, not at import (cli.py imports
this module).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def handled(func: F) -> F:
    """harness.cli's error handling (message + hint, exit 1), looked up when the command runs."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from harness.cli import handle_errors

        return handle_errors(func)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def say(message: str) -> None:
    """Human output: stderr (stdout stays machine-readable)."""
    from harness.cli import err

    err.print(message)


def _aws_endpoint(obj: Any) -> tuple[Any, str]:
    from harness.devloop import require_up

    runner = obj.runner()
    require_up(runner, ["aws"])
    return runner, runner.admin_connections()[2].url


# --- mail ------------------------------------------------------------------------------------------------


@click.group()
def mail() -> None:
    """Mail the app sent (captured by the AWS emulator): list, show, clear."""


@mail.command("list")
@click.option("--to", "to", metavar="ADDR", help="only messages to this address (to, cc or bcc)")
@click.option("--json", "as_json", is_flag=True, help="a JSON list on stdout")
@click.pass_obj
@handled
def mail_list(obj: Any, to: str | None, as_json: bool) -> None:
    """List captured messages, oldest first, with the links in each."""
    from harness.devloop.mail import list_mail

    _, endpoint = _aws_endpoint(obj)
    messages = list_mail(endpoint, to=to)
    if as_json:
        click.echo(json.dumps([m.summary() for m in messages], indent=2))
        return
    if not messages:
        say("no mail captured" + (f" to {to}" if to else ""))
        return
    for m in messages:
        click.echo(f"{m.id}  {m.timestamp or '-'}  {', '.join(m.to) or '-'}  {m.subject}")
        for url in m.summary()["links"]:
            click.echo(f"    {url}")


@mail.command("show")
@click.argument("message_id", metavar="ID")
@click.option("--text", "form", flag_value="text", default=True, help="the text part (default)")
@click.option("--html", "form", flag_value="html", help="the HTML part")
@click.option("--raw", "form", flag_value="raw", help="the whole RFC 5322 message")
@click.pass_obj
@handled
def mail_show(obj: Any, message_id: str, form: str) -> None:
    """Print one message (headers on stderr, the body on stdout) and the links in it."""
    from harness.devloop.mail import links, part, show_mail

    _, endpoint = _aws_endpoint(obj)
    message = show_mail(endpoint, message_id)
    if form != "raw":
        say(f"From:    {message.sender}\nTo:      {', '.join(message.to)}")
        if message.cc:
            say(f"Cc:      {', '.join(message.cc)}")
        say(f"Subject: {message.subject}\nDate:    {message.timestamp or '-'}\n")
    click.echo(part(message, form))
    found = links(message)
    if found and form != "raw":
        say("\nlinks:")
        for url in found:
            say(f"  {url}")


@mail.command("clear")
@click.pass_obj
@handled
def mail_clear(obj: Any) -> None:
    """Forget every captured message."""
    from harness.devloop.mail import clear_mail

    _, endpoint = _aws_endpoint(obj)
    say(f"cleared {clear_mail(endpoint)} message(s)")


def _progress(component: str, message: str) -> None:
    from harness.cli import _progress as progress

    progress(component, message)


# --- tenants and the database ---------------------------------------------------------------------------


@click.group()
def tenant() -> None:
    """The app's tenants: list them, put one back as the seed has it."""


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="a JSON list on stdout")
@click.pass_obj
@handled
def tenant_list(obj: Any, as_json: bool) -> None:
    """Every tenant in the database, and whether the seed has it."""
    from harness.devloop.tenants import list_tenants

    tenants = list_tenants(obj.runner())
    if as_json:
        click.echo(json.dumps([t.as_json() for t in tenants], indent=2))
        return
    for t in tenants:
        click.echo(
            f"{t.slug:<20} {t.id}  {t.members:>3} member(s)  {'seeded' if t.seeded else '-':<6}  {t.name}"
        )


@tenant.command("reset")
@click.argument("slug")
@click.option("--delete", is_flag=True, help="delete the tenant instead (any tenant, seeded or not)")
@click.pass_obj
@handled
def tenant_reset(obj: Any, slug: str, delete: bool) -> None:
    """Put a seeded tenant back exactly as the seed has it (rows, objects, Redis keys, Cognito users)."""
    from harness.devloop.tenants import reset_tenant

    report = reset_tenant(obj.runner(), slug, delete=delete, progress=_progress)
    say(f"tenant {slug} {'deleted' if delete else 'reset to the seed'} in {report.seconds:.2f}s")


@click.group()
def db() -> None:
    """The app database."""


@db.command("reset")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
@handled
def db_reset(obj: Any, yes: bool) -> None:
    """Drop the app database, migrate it and seed it again (every tenant's data is lost)."""
    from harness.devloop.tenants import reset_database

    runner = obj.runner()
    if not yes:
        if not sys.stdin.isatty():
            from harness.errors import HarnessError

            raise HarnessError("db reset drops every row of the app database", hint="confirm with --yes")
        click.confirm(
            f"Drop and re-seed the database {runner.topology.postgres.database}?", abort=True, err=True
        )
    report = reset_database(runner, progress=_progress)
    say(f"database {report.database} reset ({report.tenants} tenant(s) seeded) in {report.seconds:.2f}s")


# --- restart --------------------------------------------------------------------------------------------


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("components", nargs=-1, metavar="[COMPONENT ...]")
@click.pass_obj
@handled
def restart(obj: Any, components: tuple[str, ...]) -> None:
    """Stop and start exactly these components (none named: every app process), wait until healthy."""
    from harness.devloop.restart import restart as restart_components

    report = restart_components(obj.runner(), components, progress=_progress)
    each = ", ".join(
        f"{name} {report.timings[name]:.2f}s" for name in report.components if name in report.timings
    )
    say(f"restarted {', '.join(report.components)} in {report.seconds:.2f}s ({each})")
