"""What `harness deploy` does, behind the thin click command in harness/cli.py.

stdout carries only the rendered template (`--render`); plans, progress and the summary go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.console import plain_console, styled
from harness.deploy.deployer import AwsDeployer, DeployOptions, DeployReport
from harness.deploy.plandiff import plan_json
from harness.deploy.render import STACKS, render_stack_template
from harness.deploy.target import AwsTarget
from harness.errors import DeployError
from harness.topology import Topology, find_topology_file, load_topology

err = plain_console(soft_wrap=True)  # markup off: text is printed verbatim (harness/console.py)


@dataclass(frozen=True)
class DeployCommand:
    env: str
    topology_path: Path | None = None
    render: bool = False
    stack: str = "app"
    plan: bool = False
    yes: bool = False
    endpoint_url: str | None = None
    profile: str | None = None
    skip_gate: bool = False
    image_tag: str | None = None
    production: bool = False
    confirm_account: str | None = None
    scenarios: Path = Path("scenarios")
    only_base: bool = False
    rehearse: bool = False
    as_json: bool = False


def run_deploy_command(cmd: DeployCommand) -> int:
    """Run `harness deploy`; returns the exit code (errors are raised as DeployError)."""
    path = cmd.topology_path or find_topology_file()
    topology = load_topology(path, env=cmd.env)
    if cmd.render:
        if cmd.stack not in STACKS:
            raise DeployError(f"--stack {cmd.stack}: no such stack", hint=f"one of {', '.join(STACKS)}")
        sys.stdout.write(render_stack_template(topology, cmd.stack).to_json())
        return 0
    if cmd.as_json and not cmd.plan:
        raise DeployError("--json goes with --plan", hint=f"harness deploy --env {cmd.env} --plan --json")
    if cmd.rehearse:
        return _rehearse(cmd, topology, path)
    if cmd.endpoint_url is None and os.environ.get("AWS_ENDPOINT_URL"):
        raise DeployError(
            "AWS_ENDPOINT_URL is set in the environment (the local stack's `harness env` sets it): boto3 would "
            "send the deploy there, not to AWS",
            hint="unset AWS_ENDPOINT_URL, or pass that endpoint explicitly with --endpoint-url",
        )
    target = AwsTarget(region=topology.region, endpoint_url=cmd.endpoint_url, profile=cmd.profile)
    deployer = AwsDeployer(topology, target, progress=_progress, confirm=_confirm)
    options = _options(cmd, path)
    err.print(styled((f"{topology.project.name} {topology.env}", "bold"), f" → {target.where}"))
    if cmd.only_base:
        report = deployer.deploy_base(options)
        if cmd.plan:
            _print_plan(report)
        else:
            _print_summary(report)
        return 0
    report = deployer.deploy(options)
    if cmd.plan:
        if cmd.as_json:
            sys.stdout.write(json.dumps(plan_json(report, topology), indent=2) + "\n")
        _print_plan(report)
        return 0 if report.drift is None or report.drift.ok else 3
    _print_summary(report)
    return 0


def _options(cmd: DeployCommand, path: Path) -> DeployOptions:
    return DeployOptions(
        image_tag=cmd.image_tag,
        plan_only=cmd.plan,
        assume_yes=cmd.yes,
        production=cmd.production,
        confirm_account=cmd.confirm_account,
        skip_gate=cmd.skip_gate,
        scenarios_dir=cmd.scenarios if cmd.scenarios.is_absolute() else path.parent / cmd.scenarios,
    )


def _rehearse(cmd: DeployCommand, topology: Topology, path: Path) -> int:
    from harness.deploy.rehearsal import rehearse

    refused = [flag for flag, given in (("--endpoint-url", cmd.endpoint_url), ("--profile", cmd.profile),
               ("--plan", cmd.plan), ("--only-base", cmd.only_base), ("--render", cmd.render)) if given]  # fmt: skip
    if refused:
        raise DeployError(
            f"--rehearse runs against its own AWS stand-in: {', '.join(refused)} does not apply",
            hint=f"harness deploy --env {cmd.env} --rehearse --yes",
        )
    err.print(styled((f"{topology.project.name} {topology.env}", "bold"), " → rehearsal (the AWS stand-in)"))
    report = rehearse(topology, _options(cmd, path), progress=_progress, confirm=_confirm)
    _print_summary(report)
    verdict = "passed" if report.gate is not None and not report.gate.skipped else "applied (gate skipped)"
    err.print(
        styled(
            (f"rehearsal {verdict}", "green"), f" in {report.seconds:.1f}s; everything it started is stopped"
        )
    )
    return 0


def _progress(stage: str, message: str) -> None:
    failed = "FAILED" in message or "_FAILED" in message
    color = "red" if failed else "yellow" if "SKIPPED" in message else "cyan"
    for i, line in enumerate(message.splitlines()):
        label = (f"{stage:<18}", color) if i == 0 else " " * 18
        err.print(styled(label, f" {line}"))


def _confirm(prompt: str) -> str:
    import click

    if not sys.stdin.isatty():
        raise DeployError(
            "a confirmation is needed and there is no terminal", hint="pass --yes (staging) in CI"
        )
    return str(click.prompt(prompt, err=True, default="", show_default=False))


def _print_plan(report: DeployReport) -> None:
    if report.drift is None:  # deploy_base printed its plan already
        err.print(styled(("plan only:", "bold"), " nothing was changed"))
        return
    for plan in report.plans:
        err.print(plan.render())
    if report.drift is not None:
        err.print(report.drift.render())
    if report.latest is not None:
        err.print("running " + report.latest.describe())
        if report.record is not None and report.record.release.id != report.latest.release.id:
            err.print("this plan's " + report.record.describe())
    noop = " (no changes to apply)" if report.noop else ""
    err.print(styled(("plan only:", "bold"), " nothing was changed" + noop))


def _print_summary(report: DeployReport) -> None:
    if report.noop:
        err.print(styled(("no-op", "green"), f" in {report.seconds:.1f}s"))
        return
    stacks = ", ".join(dict.fromkeys(report.applied)) or "none"
    err.print(styled(("deployed", "green"), f" in {report.seconds:.1f}s (stacks changed: {stacks})"))
    for key in ("ApiUrl", "CloudFrontDomainName", "ClusterName"):
        if key in report.outputs:
            err.print(f"  {key}: {report.outputs[key]}")
    if report.gate is not None and report.gate.skipped:
        err.print(styled((report.gate.detail, "bold yellow")))
