"""`python -m harness.emulator`: the command line of the AWS emulator process."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.emulator.config import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_REGION,
    SNAPSHOT_MAX_DELAY_SECONDS,
    SNAPSHOT_QUIET_SECONDS,
    EmulatorConfig,
)
from harness.emulator.control_guard import CONTROL_FROM_CHOICES, CONTROL_FROM_ENV, CONTROL_TOKEN_ENV
from harness.emulator.fidelity.config import (
    CHECKS,
    ENV_CREDENTIALS,
    ENV_MFA_REQUIRED_GROUPS,
    ENV_OFF,
    ENV_PUBLIC_URL,
    FidelityConfig,
)
from harness.errors import HarnessError

EXIT_STARTUP_FAILED = 2


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, str]:
    """The emulator's configuration and log level from the command line (and MOTO_ACCOUNT_ID)."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.emulator",
        description="Every AWS service moto emulates, on one port, with state that survives restarts.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="restore state from this file at start and snapshot to it; without it state is in memory only",
    )
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"default region (default {DEFAULT_REGION})")
    parser.add_argument(
        "--account-id",
        default=os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID),
        help=f"the one account every request lands in (default $MOTO_ACCOUNT_ID or {DEFAULT_ACCOUNT_ID})",
    )
    parser.add_argument(
        "--snapshot-quiet",
        type=float,
        default=SNAPSHOT_QUIET_SECONDS,
        help=f"snapshot this many seconds after the last change (default {SNAPSHOT_QUIET_SECONDS})",
    )
    parser.add_argument(
        "--snapshot-max-delay",
        type=float,
        default=SNAPSHOT_MAX_DELAY_SECONDS,
        help=f"and at most this long after the first unsaved one (default {SNAPSHOT_MAX_DELAY_SECONDS})",
    )
    parser.add_argument(
        "--async-snapshots",
        action="store_true",
        help="answer changing requests before their snapshot is on disk (faster; a SIGKILL then loses the "
        "last second of changes)",
    )
    parser.add_argument("--no-prewarm", action="store_true", help="do not preload the app's services")
    parser.add_argument("--quiet", action="store_true", help="no access log line per request")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    fidelity = parser.add_argument_group(
        "AWS fidelity checks",
        "every check runs unless switched off; switch one off only to diagnose a difference from AWS. "
        f"Checks: {', '.join(CHECKS)}",
    )
    fidelity.add_argument(
        "--fidelity-off",
        action="append",
        default=[],
        metavar="CHECK[,CHECK]",
        help=f"switch checks off ('all' for every one); also ${ENV_OFF}",
    )
    fidelity.add_argument(
        "--cognito-mfa-required-groups",
        default=None,
        metavar="GROUP[,GROUP]",
        help="members of these Cognito groups must use MFA when their pool's MFA is OPTIONAL (the topology's "
        f"cognito.mfa_required_groups); also ${ENV_MFA_REQUIRED_GROUPS}",
    )
    fidelity.add_argument(
        "--public-url",
        default=None,
        help="the base of the local Cognito issuer (<public url>/<pool id>) when clients reach the emulator "
        f"under another address than http://HOST:PORT; also ${ENV_PUBLIC_URL}",
    )
    fidelity.add_argument(
        "--credentials",
        default=None,
        metavar="KEY:SECRET[,KEY:SECRET]",
        help="access keys S3 signatures are verified against (default test:test; IAM users' keys are found "
        f"too); also ${ENV_CREDENTIALS}",
    )
    args = parser.parse_args(argv)
    control_from = os.environ.get(CONTROL_FROM_ENV, "loopback")
    if control_from not in CONTROL_FROM_CHOICES:
        parser.error(f"${CONTROL_FROM_ENV}={control_from!r}: one of {', '.join(CONTROL_FROM_CHOICES)}")
    try:
        fidelity_config = FidelityConfig.from_env(
            off=args.fidelity_off,
            public_url=args.public_url,
            mfa_required_groups=args.cognito_mfa_required_groups,
            credentials=args.credentials,
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        state_file=args.state_file.resolve() if args.state_file else None,
        region=args.region,
        account_id=args.account_id,
        snapshot_quiet_seconds=args.snapshot_quiet,
        snapshot_max_delay_seconds=args.snapshot_max_delay,
        sync_snapshots=not args.async_snapshots,
        prewarm=not args.no_prewarm,
        access_log=not args.quiet,
        fidelity=fidelity_config,
        control_token=os.environ.get(CONTROL_TOKEN_ENV) or None,  # never argv: `ps` shows argv to everyone
        control_from=control_from,
    )
    return config, args.log_level


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT; returns the exit code (2 if it could not start)."""
    config, log_level = parse_args(argv)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from harness.emulator import lazy_ec2

    lazy_ec2.install()  # before moto's services import: SSM must not pull in EC2 (harness/emulator/lazy_ec2.py)
    from harness.emulator.server import EmulatorServer  # imports moto: after argument errors are reported

    try:
        return EmulatorServer(config).run()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
