"""`harness deploy` and `harness cost`: the topology promoted to AWS (or rehearsed against the AWS stand-in),
and what the rendered stacks cost a month.

Registered in harness/cli.py (one `main.add_command` line each). The work is in harness/deploy/; this module
only parses options. harness.cli is imported when a command runs, not at import (cli.py imports this module).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.cli_devloop import handled


def _env(obj: Any, given: str | None, command: str) -> str:
    from harness.errors import HarnessError
    from harness.topology import DEFAULT_ENV

    env = given or (obj.env if obj.env != DEFAULT_ENV else None)
    if env is None:
        raise HarnessError("which environment?", hint=f"harness {command} --env staging")
    return str(env)


@click.command()
@click.option(
    "--env", "deploy_env", metavar="ENV", help="environment to deploy (required unless given to `harness`)"
)
@click.option("--render", is_flag=True, help="print the CloudFormation template on stdout and exit")
@click.option("--stack", default="app", show_default=True, help="with --render: base | edge | app")
@click.option("--plan", is_flag=True, help="show the change sets and the drift check; change nothing")
@click.option("--json", "as_json", is_flag=True, help="with --plan: the plan as JSON on stdout (CI)")
@click.option(
    "--rehearse",
    is_flag=True,
    help="the whole deploy against the AWS stand-in, gate on a local app stack; nothing leaves this machine",
)
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (not enough for production)")
@click.option(
    "--endpoint-url", metavar="URL", help="send every AWS call to this AWS-compatible endpoint (moto)"
)
@click.option("--profile", metavar="NAME", help="AWS profile (default: the usual credential chain)")
@click.option("--image-tag", metavar="TAG", help="image tag to release (default: the one running now)")
@click.option(
    "--skip-gate", is_flag=True, help="deploy without the health check and scenarios (says so loudly)"
)
@click.option("--production", is_flag=True, help="required to touch the production environment")
@click.option("--confirm-account", metavar="ID", help="confirm the target account without a prompt (CI)")
@click.option("--scenarios", default="scenarios", show_default=True, help="scenario dir of the gate")
@click.option(
    "--only-base", is_flag=True, help="deploy only the base stack (ECR repository): before the first push"
)
@click.pass_obj
@handled
def deploy(obj: Any, /, deploy_env: str | None, **options: Any) -> None:
    """Promote the topology to AWS with CloudFormation: plan, apply, migrate, roll, gate."""
    from harness.deploy.command import DeployCommand, run_deploy_command

    env = _env(obj, deploy_env, "deploy")
    scenarios = Path(options.pop("scenarios"))
    sys.exit(
        run_deploy_command(
            DeployCommand(env=env, topology_path=obj.topology_path, scenarios=scenarios, **options)
        )
    )


@click.command()
@click.option("--env", "cost_env", metavar="ENV", help="environment whose rendered stacks are priced")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout: total_usd_month and services")
@click.pass_obj
@handled
def cost(obj: Any, /, cost_env: str | None, as_json: bool) -> None:
    """Estimate the monthly cost of an environment's stacks from the price table in the repository."""
    from harness.deploy.costs import run_cost_command

    sys.exit(run_cost_command(_env(obj, cost_env, "cost"), obj.topology_path, as_json=as_json))
