"""The `harness` command: up, down, status, env, logs, psql, seed, migrate, reset, provision, deploy, scenarios.

Human output (progress, tables) goes to stderr; machine output (`env`, `status --json`) to stdout, so
`eval "$(harness env --format shell)"` and `harness status --json | jq` work.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from harness.backends.base import app_places, tier_names
from harness.console import plain_console, print_error, styled
from harness.errors import HarnessError
from harness.ports import PORT_MODES
from harness.state import STATE_DIR_ENV, StateDir, default_state_dir
from harness.topology import DEFAULT_ENV, find_topology_file, load_topology

err = plain_console()  # markup off: messages are printed verbatim (harness/console.py)
F = TypeVar("F", bound=Callable[..., Any])


BACKEND_CHOICES = tier_names()  # the tier registry, harness.backends.base.TIERS
APP_ON_CHOICES = app_places()


class Context:
    def __init__(
        self,
        topology_path: str | None,
        state_dir: str | None,
        env: str,
        ports: str | None,
        backend: str | None = None,
        app_on: str | None = None,
        aws_endpoint: str | None = None,
        reload: bool | None = None,
    ) -> None:
        self.reload = reload
        self.topology_path = Path(topology_path) if topology_path else None
        self.state_dir = Path(state_dir) if state_dir else None
        self.env = env
        self.ports = ports
        self.backend = backend
        self.app_on = app_on
        self.aws_endpoint = aws_endpoint

    def runner(self) -> Any:
        from harness.runner import LocalRunner

        path = self.topology_path or find_topology_file()
        topology = load_topology(path, env=self.env)
        state = StateDir(self.state_dir.resolve() if self.state_dir else default_state_dir(path))
        return LocalRunner(
            topology,
            state,
            self.ports,
            backend=self.backend,
            app_on=self.app_on,
            aws_endpoint=self.aws_endpoint,
            reload=self.reload,
        )


def handle_errors(func: F) -> F:
    """Print a HarnessError as a message with its hint (no traceback) and exit 1."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HarnessError as exc:
            print_error(exc, err)
            if os.environ.get("HARNESS_DEBUG"):
                raise
            sys.exit(1)
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _progress(component: str, message: str) -> None:
    mark = ("✓", "green") if message.startswith(("ready", "already", "done", "stopped")) else ("…", "cyan")
    err.print(styled(mark, " ", (f"{component:<10}", "bold"), " ", message))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--topology", "topology_path", metavar="FILE", help="topology file (default: ./topology.toml)")
@click.option("--state-dir", metavar="DIR", help=f"state dir (default: .harness/, or ${STATE_DIR_ENV})")
@click.option("--env", "env", default=DEFAULT_ENV, show_default=True, help="topology environment")
@click.option(
    "--ports",
    type=click.Choice(PORT_MODES),
    default=None,
    help="'auto' picks free ports (same as HARNESS_PORTS=auto); default: the topology's",
)
@click.option(
    "--backend",
    type=click.Choice(BACKEND_CHOICES),
    default=None,
    help="embedded (processes, the default) or docker (containers); same as HARNESS_BACKEND; "
    "default: what this state dir last ran on",
)
@click.option(
    "--app-on",
    type=click.Choice(APP_ON_CHOICES),
    default=None,
    help="docker tier: run the backend and worker in containers (default) or on this host beside the "
    "containers; same as HARNESS_APP_ON; default: what this state dir last did",
)
@click.pass_context
def main(
    ctx: click.Context,
    topology_path: str | None,
    state_dir: str | None,
    env: str,
    ports: str | None,
    backend: str | None,
    app_on: str | None,
) -> None:
    """Local-first emulated AWS environment for the multi-tenant SaaS."""
    ctx.obj = Context(topology_path, state_dir, env, ports, backend, app_on)


def backend_option(func: F) -> F:
    """`--backend` and `--app-on` after the command too (`nox -s up -- --backend docker` appends them there)."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            obj = ctx.find_object(Context)
            if obj is not None:
                setattr(obj, str(param.name), value)

    with_backend = click.option(
        "--backend",
        type=click.Choice(BACKEND_CHOICES),
        default=None,
        expose_value=False,
        callback=remember,
        help="embedded or docker (same as `harness --backend`)",
    )(func)
    return click.option(
        "--app-on",
        "app_on",
        type=click.Choice(APP_ON_CHOICES),
        default=None,
        expose_value=False,
        callback=remember,
        help="docker tier: the app in containers or on this host (same as `harness --app-on`)",
    )(with_backend)


@main.command()
@click.option("--no-app", is_flag=True, help="infrastructure only: no migrate/seed, no backend/worker")
@click.option(
    "--aws-endpoint",
    metavar="URL",
    default=None,
    help="attach to an AWS emulator already running there (LocalStack, moto, …) instead of the harness's own; "
    "remembered per state dir ('' goes back to the harness's); same as HARNESS_AWS_ENDPOINT or [aws] endpoint",
)
@click.option(
    "--reload/--no-reload",
    "live_reload",
    default=None,
    help="live reload: a saved Python file of the app restarts the backend/worker (default on; off with "
    "HARNESS_RELOAD=0 or CI=true; remembered per state dir)",
)
@backend_option
@click.pass_obj
@handle_errors
def up(obj: Context, no_app: bool, aws_endpoint: str | None, live_reload: bool | None) -> None:
    """Start (or heal) the whole stack, provisioned and seeded; a no-op when it is already healthy."""
    obj.aws_endpoint = aws_endpoint
    obj.reload = live_reload
    runner = obj.runner()
    report = runner.up(with_app=not no_app, progress=_progress)
    if report.provision_changes:
        for change in report.provision_changes:
            err.print(styled("  ", (change, "dim")))
    _print_endpoints(runner, include_app=not no_app)
    if runner.aws_endpoint:  # say what such a stack does not prove (harness.fidelity)
        from harness.fidelity import aws_source_summary

        err.print(f"aws: {aws_source_summary('external', runner.aws_endpoint)}")
    err.print(f"stack up in {report.seconds:.2f}s (state: {runner.state.root})")


@main.command()
@backend_option
@click.pass_obj
@handle_errors
def down(obj: Context) -> None:
    """Stop every process of this stack (data is kept)."""
    runner = obj.runner()
    stopped = runner.down(progress=_progress)
    err.print(f"stopped {len(stopped)} process(es)" if stopped else "nothing was running")


@main.command()
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@backend_option
@click.pass_obj
@handle_errors
def reset(obj: Context, yes: bool) -> None:
    """Stop the stack and wipe its state (databases, objects, Cognito users, secrets)."""
    runner = obj.runner()
    if not yes and sys.stdin.isatty():
        click.confirm(f"Wipe {runner.state.root} (all local data)?", abort=True, err=True)
    runner.reset(progress=_progress)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print a JSON list on stdout")
@backend_option
@click.pass_obj
@handle_errors
def status(obj: Context, as_json: bool) -> None:
    """Show each component: state, pid, endpoint, health."""
    runner = obj.runner()
    rows = runner.status()
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    table = Table("component", "state", "pid", "endpoint", "detail")
    colors = {"running": "green", "stopped": "dim", "unhealthy": "red"}
    for r in rows:
        table.add_row(r.name, styled((r.state, colors[r.state])), str(r.pid or "-"), r.endpoint, r.detail)
    plain_console(stderr=False).print(table)
    if any(r.state != "running" for r in rows):
        sys.exit(3)


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dotenv", "json", "shell", "nextjs"]),
    default="dotenv",
    show_default=True,
    help="nextjs: a .env.local for the Next.js frontend (NEXT_PUBLIC_* and server-side names)",
)
@click.option(
    "--component", default="backend", show_default=True, help="whose env (REDIS_URL is per component)"
)
@click.option("--public", is_flag=True, help="with --format nextjs: only what may reach a browser")
@backend_option
@click.pass_obj
@handle_errors
def env(obj: Context, fmt: str, component: str, public: bool) -> None:
    """Print the env contract the app reads (DATABASE_URL, REDIS_URL, AWS_*, COGNITO_*, ...)."""
    if fmt == "nextjs":
        from harness.devloop.frontend import nextjs_env, render_dotenv

        click.echo(render_dotenv(nextjs_env(obj.runner(), public=public), _dotenv_quote))
        return
    if public:
        raise HarnessError("--public goes with --format nextjs", hint="harness env --format nextjs --public")
    values = obj.runner().env(component)
    if fmt == "json":
        click.echo(json.dumps(values, indent=2, sort_keys=True))
    elif fmt == "shell":
        click.echo("\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(values.items())))
    else:
        click.echo("\n".join(f"{k}={_dotenv_quote(v)}" for k, v in sorted(values.items())))


@main.command()
@click.argument("component", required=False)
@click.option("-n", "--lines", default=40, show_default=True, help="lines to show (of each, with -f alone)")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines (Ctrl-C to stop)")
@backend_option
@click.pass_obj
@handle_errors
def logs(obj: Context, component: str | None, lines: int, follow: bool) -> None:
    """Show a component's log (no argument: list the logs; `-f`: follow every component's log at once)."""
    from harness.process import tail

    runner = obj.runner()
    log_dir = runner.state.root / "logs"
    available = sorted(p.stem for p in log_dir.glob("*.log")) if log_dir.exists() else []
    if component is None and follow:
        from harness.devloop.logs import follow_logs

        follow_logs(runner, lines=lines)
        return
    if component is None:
        for name in available:
            click.echo(f"{name:<10} {log_dir / (name + '.log')}")
        return
    if component not in available:
        raise HarnessError(
            f"no log for {component!r} in {log_dir}", hint=f"available: {', '.join(available) or 'none yet'}"
        )
    path = log_dir / f"{component}.log"
    click.echo(tail(path, lines))
    if follow:
        with open(path) as fh:
            fh.seek(0, os.SEEK_END)
            while True:
                line = fh.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.2)


def _app_step(obj: Context, step: str) -> None:
    runner = obj.runner()
    argv = getattr(runner.topology.app, step)
    if not argv:
        raise HarnessError(f"the topology's [app] table has no `{step}` command", hint="see docs/topology.md")
    down = [s.name for s in runner.status(include_app=False) if not s.healthy]
    if down:
        raise HarnessError(
            f"the stack is not up ({', '.join(down)} not healthy)", hint="run `harness up` first"
        )
    t0 = time.monotonic()
    runner.run_one_off(step, argv, runner.env("backend"), progress=_progress)
    if step == "migrate":
        runner.apply_privileges()
    err.print(f"{step}: done in {time.monotonic() - t0:.2f}s (log: {runner.state.log_file(step)})")


@main.command()
@click.pass_obj
@handle_errors
def seed(obj: Context) -> None:
    """Load the seed again (idempotent: seeded users get their dev passwords and groups back)."""
    _app_step(obj, "seed")


@main.command()
@click.pass_obj
@handle_errors
def migrate(obj: Context) -> None:
    """Run the app's migrations (as app_migrator) against the running stack."""
    _app_step(obj, "migrate")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--role", default="app_user", show_default=True, help="a topology role, or `admin` (superuser)")
@click.option("--tenant", metavar="SLUG|ID", help="run inside this tenant's RLS context (app.tenant_id)")
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
@handle_errors
def psql(obj: Context, role: str, tenant: str | None, psql_args: tuple[str, ...]) -> None:
    """Open psql on the app's database as ROLE, optionally as one tenant sees it (extra args go to psql)."""
    from harness.backends.embedded import postgres_bin_dir
    from harness.provision.apply import role_password
    from harness.psql import psql_invocation, tenant_by_slug

    runner = obj.runner()
    admin = runner.admin_connections()[0]
    invocation = psql_invocation(
        runner.topology,
        admin,
        lambda name: role_password(runner.state, name),
        postgres_bin_dir() / "psql",
        role=role,
        tenant=tenant,
        args=psql_args,
        find_tenant=tenant_by_slug(admin, runner.topology.postgres.database),
    )
    where = f" in tenant {tenant} ({invocation.tenant_id})" if invocation.tenant_id else ""
    err.print(f"psql as {invocation.role}{where} on {admin.endpoint}/{runner.topology.postgres.database}")
    sys.stdout.flush()
    os.execve(invocation.argv[0], invocation.argv, os.environ | invocation.env)


@main.command()
@backend_option
@click.pass_obj
@handle_errors
def provision(obj: Context) -> None:
    """Apply the topology to the running stack again and list what changed (nothing, when in sync)."""
    from harness.provision.apply import provision as apply

    runner = obj.runner()
    result = apply(runner.topology, runner.infrastructure(), runner.state)
    for change in result.changes:
        err.print(change)
    err.print(f"{len(result.changes)} change(s)")


@main.group()
def scenarios() -> None:
    """Scenario files (scenarios/*.yaml): run them as tests, or check them without running."""


@scenarios.command("run")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--target", type=click.Choice(["local", "deployed"]), default="local", show_default=True)
@click.option(
    "--deployed-outputs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON outputs of the deployed stack (with --target deployed)",
)
@click.option("--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="write a JUnit XML report")
@click.option("-n", "--workers", type=int, default=0, show_default=True, help="parallel pytest-xdist workers")
@click.option("-k", "keyword", metavar="EXPR", help="pytest -k selection")
@click.pass_obj
@handle_errors
def scenarios_run(
    obj: Context,
    files: tuple[Path, ...],
    target: str,
    deployed_outputs: Path | None,
    junit_xml: Path | None,
    workers: int,
    keyword: str | None,
) -> None:
    """Run scenario files (default: scenarios/) on the local stack (brought up if down) or a deployed one."""
    from harness.scenarios.commands import pytest_arguments, run_scenarios

    state_dir = topology_file = None
    if target == "local":
        runner = obj.runner()
        runner.up(progress=_progress)
        state_dir, topology_file = runner.state.root, runner.topology.source
    elif deployed_outputs is None:
        raise HarnessError("--target deployed needs --deployed-outputs FILE", hint="see docs/scenarios.md")
    args = pytest_arguments(
        files, target=target, deployed_outputs=deployed_outputs, junit_xml=junit_xml, workers=workers,
        keyword=keyword,
    )  # fmt: skip
    sys.exit(run_scenarios(args, state_dir=state_dir, topology_file=topology_file))


@scenarios.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--target", type=click.Choice(["local", "deployed"]), default="local", show_default=True)
@click.option("--deployed-outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@handle_errors
def scenarios_check(
    obj: Context, files: tuple[Path, ...], target: str, deployed_outputs: Path | None
) -> None:
    """Load scenario files for a target without running them (schema, variables, target refusals)."""
    from harness.scenarios.commands import check_scenarios

    results = check_scenarios(
        files, target=target, deployed_outputs=deployed_outputs,
        topology_file=obj.topology_path or find_topology_file(),
    )  # fmt: skip
    marks = {"ok": ("✓", "green"), "skipped": ("-", "dim"), "invalid": ("✗", "red")}
    for path, status, detail in results:
        suffix = f": {detail}" if status != "invalid" else ""
        err.print(styled(marks[status], f" {path}{suffix}"))
        if status == "invalid":
            err.print(detail)
    if any(status == "invalid" for _, status, _ in results):
        sys.exit(1)


def _print_endpoints(runner: Any, include_app: bool) -> None:
    pg, rd, aws = runner.admin_connections()
    table = Table("component", "endpoint", "connect as", title="endpoints", title_justify="left")
    table.add_row("postgres", pg.endpoint, f"{', '.join(runner.topology.postgres.roles)} (see `harness env`)")
    table.add_row("redis", rd.endpoint, f"ACL users {', '.join(runner.topology.redis.users)}")
    table.add_row("aws", aws.url, f"region {aws.region}, bucket {runner.topology.s3.bucket}")
    if include_app:
        for app in runner.apps(with_env=False):
            table.add_row(app.name, app.endpoint, getattr(getattr(app, "service", None), "app", ""))
    err.print(table)


def _dotenv_quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@%+=,~" for c in value):
        return value
    return json.dumps(value)


from harness import cli_console, cli_devloop, cli_snapshot  # noqa: E402  (the developer's loop; imports nothing from here at load)

main.add_command(cli_devloop.mail)
main.add_command(cli_devloop.tenant)
main.add_command(cli_devloop.db)
main.add_command(cli_console.console)
main.add_command(cli_snapshot.snapshot)
main.add_command(cli_devloop.restart)

from harness import cli_deploy  # noqa: E402  (deploy and cost; imports nothing from here at load)

main.add_command(cli_deploy.deploy)
main.add_command(cli_deploy.cost)

from harness import cli_load  # noqa: E402

scenarios.add_command(cli_load.load)

if __name__ == "__main__":
    main()
