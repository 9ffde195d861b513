"""`harness scenarios load`: the scenario files as load, on Locust (harness/scenarios/load, docs/load.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from harness.cli_devloop import handled
from harness.errors import HarnessError
from harness.scenarios.load.options import (
    MAX_DURATION_S,
    MAX_USERS,
    LoadOptions,
    check_limits,
    parse_duration,
    parse_think,
    parse_weights,
)


@click.command("load")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--users", type=int, default=10, show_default=True, help="simulated users at the peak")
@click.option("--spawn-rate", type=float, default=5.0, show_default=True, help="users started per second")
@click.option("--duration", default="60s", show_default=True, help="how long the run lasts (30s, 2m, 1m30s)")
@click.option("--workers", type=int, default=0, show_default=True,
              help="Locust worker processes on this machine (0: users run in this process)")  # fmt: skip
@click.option("--target", type=click.Choice(["local", "deployed"]), default="local", show_default=True)
@click.option("--deployed-outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON outputs of the deployed stack (with --target deployed)")  # fmt: skip
@click.option("--weight", "weights", multiple=True, metavar="NAME=N",
              help="relative weight of a scenario file by its stem (default 1 each)")  # fmt: skip
@click.option("--think", default="0.5-1.5", show_default=True,
              help="think time between a user's runs, seconds or a range")  # fmt: skip
@click.option("--sample", type=float, default=0.1, show_default=True,
              help="fraction of runs whose mail/row/object/key/task probes are checked")  # fmt: skip
@click.option(
    "--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), help="write the JSON report"
)
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="write Locust's HTML report"
)
@click.option(
    "--max-failure-rate", type=float, help="fail the run above this fraction of failed steps (0.01)"
)
@click.option("--max-p95-ms", type=float, help="fail the run when the steps' p95 latency is above this")
@click.option("--ui", is_flag=True, help="serve Locust's web UI on 127.0.0.1 (--ui-port) while it runs")
@click.option("--ui-port", type=int, default=8089, show_default=True)
@click.option("--worker", is_flag=True, help="join a master on another machine (--master-host) as a worker")
@click.option("--master-host", default="127.0.0.1", show_default=True, help="the master a --worker joins")
@click.option("--master-port", type=int, default=5557, show_default=True, help="the master's port")
@click.option("--master-bind", default="127.0.0.1", show_default=True,
              help="where the master listens (0.0.0.0 to let other machines' workers join)")  # fmt: skip
@click.option("--expect-workers", type=int, default=0, show_default=True,
              help="workers from other machines the master waits for before the ramp")  # fmt: skip
@click.option("--max-users", type=int, default=MAX_USERS, show_default=True, help="the cap on --users")
@click.option(
    "--max-duration", default=f"{MAX_DURATION_S // 60}m", show_default=True, help="the cap on --duration"
)
@click.option("--production", is_flag=True, help="allow a deployed production target (asks to type its name)")
@click.pass_obj
@handled
def load(obj: Any, /, paths: tuple[Path, ...], **raw: Any) -> None:
    """Run scenario files as load on Locust: each simulated user runs a scenario again and again.

    Every run stops by itself after --duration; the audits (no cross-tenant row, object or key, no key
    outside its namespace, every task with its tenant id) run once at the end, and a finding fails the run.
    """
    from harness.scenarios.commands import scenario_files

    files = scenario_files(paths)
    options = LoadOptions(
        files=[str(f.resolve()) for f in files],
        users=raw["users"],
        spawn_rate=raw["spawn_rate"],
        duration_s=parse_duration(raw["duration"]),
        target=raw["target"],
        state_dir=str(obj.state_dir.resolve()) if obj.state_dir else None,
        topology_file=str(obj.topology_path.resolve()) if obj.topology_path else None,
        deployed_outputs=str(raw["deployed_outputs"].resolve()) if raw["deployed_outputs"] else None,
        weights=parse_weights(raw["weights"], files),
        think=parse_think(raw["think"]),
        sample=raw["sample"],
        workers=raw["workers"],
        master_host=raw["master_host"],
        master_port=raw["master_port"],
        ui=raw["ui"],
        ui_port=raw["ui_port"],
        json_file=str(raw["json_file"].resolve()) if raw["json_file"] else None,
        html_file=str(raw["html_file"].resolve()) if raw["html_file"] else None,
        max_failure_rate=raw["max_failure_rate"],
        max_p95_ms=raw["max_p95_ms"],
    )
    check_limits(options, max_users=raw["max_users"], max_duration_s=parse_duration(raw["max_duration"]))
    if options.target == "deployed":
        _guard_deployed(options, production=raw["production"])
    command = [sys.executable, "-m", "harness.loadproc", "--options", options.to_json()]
    if raw["worker"]:
        command.append("--worker")
    else:
        command += ["--expect-workers", str(raw["expect_workers"]), "--bind-host", raw["master_bind"]]
    sys.exit(subprocess.run(command, env=dict(os.environ), check=False).returncode)


def _guard_deployed(options: LoadOptions, *, production: bool) -> None:
    from harness.scenarios.targets import DeployedOutputs

    if options.deployed_outputs is None:
        raise HarnessError("--target deployed needs --deployed-outputs FILE", hint="see docs/load.md")
    environment = DeployedOutputs.load(Path(options.deployed_outputs)).environment
    if environment != "production":
        return
    if not production:
        raise HarnessError(
            "refusing to load the production environment",
            hint="load staging; if you really mean production, add --production and type its name when asked",
        )
    typed = click.prompt('type "production" to load it', default="", show_default=False)
    if typed.strip() != "production":
        raise HarnessError("not confirmed: nothing was run")
