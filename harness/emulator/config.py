"""Defaults and the typed configuration of one AWS emulator process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.emulator.fidelity.config import FidelityConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566  # what localstack-client and awslocal expect
DEFAULT_REGION = "me-south-1"
# topology.toml's local account (LocalStack's default too); moto's own default is 123456789012
DEFAULT_ACCOUNT_ID = "000000000000"

# Durability: a changing request is answered only once a snapshot holding its change is on disk (group
# commit: concurrent requests share one snapshot), so a SIGKILL loses nothing acknowledged. With
# `sync_snapshots` off (`--async-snapshots`), snapshots run in the background: once changes settle for
# SNAPSHOT_QUIET_SECONDS, and at the latest SNAPSHOT_MAX_DELAY_SECONDS after the first unsaved change.
SNAPSHOT_QUIET_SECONDS = 0.5
SNAPSHOT_MAX_DELAY_SECONDS = 1.0
SNAPSHOT_RETRY_SECONDS = 2.0
# How long a snapshot waits for running requests to finish (an SQS long poll holds one for up to 20 s).
SNAPSHOT_WAIT_SECONDS = 30.0
SHUTDOWN_WAIT_SECONDS = 10.0

# The harness's own endpoints. S3 bucket names cannot contain "_", so no path-style bucket route can collide.
CONTROL_PREFIX = "/_harness/"

# Services whose moto app is built in the background right after start, so the app's first calls do not pay
# for importing them (ssm alone takes about a second).
# A WSGI environ key a check sets when a read-only request changed the state (e.g. made a pool's signing key),
# so the request gate schedules a snapshot as for a changing request.
STATE_CHANGED_KEY = "harness.state_changed"
PREWARM_SERVICES = ("s3", "cognito-idp", "ses", "sesv2", "secretsmanager", "ssm", "sts")


@dataclass(frozen=True)
class EmulatorConfig:
    """How one emulator process runs. `state_file=None` keeps state in memory only."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    state_file: Path | None = None
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    snapshot_quiet_seconds: float = SNAPSHOT_QUIET_SECONDS
    snapshot_max_delay_seconds: float = SNAPSHOT_MAX_DELAY_SECONDS
    sync_snapshots: bool = True  # answer a changing request only after its snapshot is on disk
    prewarm: bool = True
    access_log: bool = True
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)  # AWS-faithful checks (all on)
    # The secret-bearing /_harness/ paths need this token and a loopback (or, "private", a private) client;
    # None: they answer nobody (harness/emulator/control_guard.py).
    control_token: str | None = field(default=None, repr=False)
    control_from: str = "loopback"

    @property
    def endpoint(self) -> str:
        """The URL clients use (`AWS_ENDPOINT_URL`)."""
        return f"http://{self.host}:{self.port}"
