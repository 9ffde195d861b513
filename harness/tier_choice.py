"""Which tier, where the app runs and which AWS endpoint a stack uses: the flag, else the environment, else
what the state dir last did, else the defaults (`LocalRunner` asks these; re-exported by harness.runner)."""

from __future__ import annotations

import os
from typing import Any

from harness.backends.base import DEFAULT_TIER, tier_info, tier_names
from harness.errors import HarnessError
from harness.state import StateDir
from harness.topology import Topology

BACKEND_FILE = "backend.json"
BACKEND_ENV = "HARNESS_BACKEND"
APP_ON_ENV = "HARNESS_APP_ON"
AWS_ENDPOINT_ENV = "HARNESS_AWS_ENDPOINT"


def _explicit_choice(
    cli_value: str | None, env_name: str, allowed: tuple[str, ...], what: str, hint: str
) -> str | None:
    """The flag, else the environment variable; None when neither is set. A value not in `allowed` is refused."""
    explicit = cli_value or os.environ.get(env_name) or None
    if explicit is not None and explicit not in allowed:
        raise HarnessError(f"{what} {explicit!r} is not one of {', '.join(allowed)}", hint=hint)
    return explicit


def _saved(state: StateDir) -> dict[str, Any]:
    return state.read_json(BACKEND_FILE) if state.exists else {}


def requested_backend(cli_value: str | None, state: StateDir) -> str:
    """The flag, else HARNESS_BACKEND, else the backend this state dir last ran on, else the embedded tier."""
    explicit = _explicit_choice(
        cli_value, BACKEND_ENV, tier_names(), "backend",
        f"--backend docker (or {BACKEND_ENV}=docker) for containers; unset for the embedded tier",
    )  # fmt: skip
    if explicit is not None:
        return explicit
    saved = _saved(state).get("backend")
    return str(saved) if saved in tier_names() else DEFAULT_TIER


def requested_app_on(cli_value: str | None, state: StateDir, backend: str) -> str:
    """Where the tier runs the app: the flag, else HARNESS_APP_ON, else what this state dir last did on this
    tier, else the tier's default (the Docker tier: in containers; the embedded tier: always the host)."""
    places = tier_info(backend).app_places
    if len(places) == 1:
        return places[0]
    explicit = _explicit_choice(
        cli_value, APP_ON_ENV, places, "--app-on",
        f"--app-on host (or {APP_ON_ENV}=host) runs the backend and worker here, beside containers",
    )  # fmt: skip
    if explicit is not None:
        return explicit
    saved = _saved(state)
    if saved.get("backend") == backend and saved.get("app_on") in places:
        return str(saved["app_on"])
    return places[0]


def requested_aws_endpoint(cli_value: str | None, state: StateDir, topology: Topology) -> str | None:
    """An AWS endpoint someone else runs: the flag (`''` means the harness's own emulator), else
    HARNESS_AWS_ENDPOINT, else the topology's `[aws] endpoint`, else what this state dir last used."""
    for value in (cli_value, os.environ.get(AWS_ENDPOINT_ENV)):
        if value is not None:
            return _checked_endpoint(value, "--aws-endpoint") or None
    if topology.aws.endpoint:
        return topology.aws.endpoint
    saved = _saved(state).get("aws_endpoint")
    return str(saved) if saved else None


def _checked_endpoint(value: str, where: str) -> str:
    from urllib.parse import urlparse

    if value and (urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc):
        raise HarnessError(
            f"{where} {value!r} is not an http(s) URL",
            hint="e.g. --aws-endpoint http://127.0.0.1:4566 (LocalStack's default); '' for the harness's own",
        )
    return value.rstrip("/")
