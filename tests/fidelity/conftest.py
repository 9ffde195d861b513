"""One AWS emulator process (`python -m harness.emulator`) for the whole fidelity suite, and pool factories.

Every test talks to it with real clients (boto3, pycognito, pyotp, httpx) over a real socket. The emulator runs
with the topology's `cognito.mfa_required_groups` (Owner, Admin), exactly as `harness up` starts it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from fidelity_clients import (
    MFA_REQUIRED_GROUPS,
    REGION,
    ROOT,
    START_TIMEOUT,
    Emulator,
    PoolFactory,
    free_port,
)

from harness.emulator.control_guard import CONTROL_TOKEN_ENV


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("fidelity-emulator")
    port = free_port()
    log_path = tmp / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "HARNESS_EMULATOR_"))}
    control_token = secrets.token_urlsafe(24)
    env[CONTROL_TOKEN_ENV] = control_token
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.emulator", "--port", str(port), "--region", REGION, "--quiet",
             "--state-file", str(tmp / "moto-state.pickle"),
             "--cognito-mfa-required-groups", ",".join(MFA_REQUIRED_GROUPS)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )  # fmt: skip
    emulator = Emulator(port, process, log_path, control_token)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"emulator exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{emulator.endpoint}/_harness/health", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(
                    f"emulator not healthy in {START_TIMEOUT}s:\n{log_path.read_text()}"
                ) from None
            time.sleep(0.02)
    try:
        yield emulator
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def idp(emulator: Emulator) -> Any:
    return emulator.client("cognito-idp")


@pytest.fixture
def make_pool(idp: Any) -> PoolFactory:
    return PoolFactory(idp)
