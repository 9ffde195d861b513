"""`python -m harness.backends.docker build-image | compose | provision-compose` (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.state import StateDir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `build-image`, `compose`, `provision-compose` (see the module docstring)."""
    from harness.backends.docker.compose import render_compose, write_compose_contract
    from harness.backends.docker.engine import ensure_app_image
    from harness.topology import find_topology_file, load_topology

    parser = argparse.ArgumentParser(prog="python -m harness.backends.docker")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-image", help="build the project image unless it is up to date")
    build.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    sub.add_parser("compose", help="print compose/docker-compose.yml as generated from the topology")
    prov = sub.add_parser(
        "provision-compose", help="(inside the compose stack) provision and write env files"
    )
    prov.add_argument("--state-dir", type=Path, required=True)
    prov.add_argument("--postgres", required=True)
    prov.add_argument("--redis", required=True)
    prov.add_argument("--aws", required=True)
    prov.add_argument("--aws-public", required=True)
    args = parser.parse_args(argv)
    topology_file = Path(os.environ.get("HARNESS_TOPOLOGY") or find_topology_file())
    topology = load_topology(topology_file)
    try:
        if args.command == "build-image":
            pairs = dict(a.split("=", 1) for a in args.build_arg)
            name = ensure_app_image(topology_file.resolve().parent, pairs or None, progress=print)
            print(name)
        elif args.command == "compose":
            sys.stdout.write(render_compose(topology))
        else:
            for change in write_compose_contract(
                topology, StateDir(args.state_dir), args.postgres, args.redis, args.aws, args.aws_public
            ):
                print(change)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
