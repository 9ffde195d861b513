"""A third AWS source through the backend contract: `harness up --aws-endpoint URL` attaches the stack to an
AWS-compatible emulator that is already running (here a second, plain moto server the test starts and stops
by its pid), provisions it the same way, leaves it running on `down`, and says that the harness's fidelity
checks are not enforced there (status, the fidelity ledger) instead of pretending."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from harness import fidelity
from harness.ports import free_port
from harness.readiness import HttpOk, wait_until_ready
from harness.testing import private_temp_dir
from harness.topology import load_topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness.cli"]


@pytest.fixture(scope="module")
def plain_moto() -> Iterator[str]:
    """`python -m moto.server` on a free port: moto as it ships, none of harness.emulator's checks."""
    port = free_port()
    log = open(private_temp_dir("moto-") / "moto.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        reason = wait_until_ready(
            HttpOk(f"{url}/moto-api/"),
            timeout=60,
            gave_up=lambda: f"exited {proc.poll()}" if proc.poll() else None,
        )
        assert reason is None, f"moto server did not start: {reason}"
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def attached(plain_moto: str) -> Iterator[tuple[str, Path]]:
    """A stack (infrastructure only) on its own ports and state dir, its AWS the plain moto server."""
    state = private_temp_dir("harness-external-")
    base = [*HARNESS, "--state-dir", str(state), "--ports", "auto"]
    up = subprocess.run(
        [*base, "up", "--no-app", "--aws-endpoint", plain_moto], cwd=ROOT, capture_output=True, text=True
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "fidelity checks are not enforced there" in " ".join(up.stderr.split()), up.stderr
        yield plain_moto, state
    finally:
        subprocess.run([*base, "reset", "--yes"], cwd=ROOT, capture_output=True, text=True)


def _client(service: str, url: str):  # type: ignore[no-untyped-def]
    topology = load_topology(ROOT / "topology.toml")
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=topology.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_up_provisions_the_external_emulator_the_same_way(attached: tuple[str, Path]) -> None:
    url, _ = attached
    topology = load_topology(ROOT / "topology.toml")
    bucket = topology.s3.bucket
    assert bucket in [b["Name"] for b in _client("s3", url).list_buckets()["Buckets"]]
    block = _client("s3", url).get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    pools = _client("cognito-idp", url).list_user_pools(MaxResults=10)["UserPools"]
    assert topology.cognito.user_pool_name in [p["Name"] for p in pools]
    secrets = {s["Name"] for s in _client("secretsmanager", url).list_secrets()["SecretList"]}
    assert {s.name for s in topology.secrets} <= secrets


def test_status_says_the_harness_checks_are_not_enforced_there(attached: tuple[str, Path]) -> None:
    url, state = attached
    out = subprocess.run(
        [*HARNESS, "--state-dir", str(state), "status", "--json"], cwd=ROOT, capture_output=True, text=True
    )
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    aws = rows["aws"]
    assert aws["endpoint"] == url and aws["managed"] is False and aws["pid"] is None and aws["healthy"]
    assert "fidelity checks are not enforced there" in aws["detail"], aws["detail"]
    assert rows["postgres"]["state"] == "running" and rows["redis"]["state"] == "running"


def test_a_check_of_the_harness_emulator_indeed_does_not_hold_there(attached: tuple[str, Path]) -> None:
    """`cognito-secret-hash` (a confidential client's sign-in needs its SECRET_HASH) is the harness's check;
    plain moto signs the user in without one, so the ledger's 'not enforced there' is the truth, and every
    scenario dependency counts as unproven on such a stack."""
    url, _ = attached
    idp = _client("cognito-idp", url)
    topology = load_topology(ROOT / "topology.toml")
    pool = next(
        p["Id"]
        for p in idp.list_user_pools(MaxResults=10)["UserPools"]
        if p["Name"] == topology.cognito.user_pool_name
    )
    client = idp.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"][0]["ClientId"]
    assert idp.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]["ClientSecret"]
    idp.admin_create_user(UserPoolId=pool, Username="plain@example.com", MessageAction="SUPPRESS")
    idp.admin_set_user_password(
        UserPoolId=pool, Username="plain@example.com", Password="Plain-Moto-Passw0rd!", Permanent=True
    )
    result = idp.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={
            "USERNAME": "plain@example.com",
            "PASSWORD": "Plain-Moto-Passw0rd!",
        },  # no SECRET_HASH
    )
    assert "IdToken" in result["AuthenticationResult"], (
        "plain moto now checks SECRET_HASH: revisit the ledger"
    )
    assert "cognito-secret-hash" in fidelity.emulator_checks()
    everything = {b.id for b in fidelity.behaviours()}
    assert {b.id for b in fidelity.unproven_on("external")} == everything
    assert {b.id for b in fidelity.unproven_on("harness")} == {b.id for b in fidelity.unproven_locally()}


def test_down_leaves_the_external_emulator_running(attached: tuple[str, Path]) -> None:
    url, state = attached
    down = subprocess.run(
        [*HARNESS, "--state-dir", str(state), "down"], cwd=ROOT, capture_output=True, text=True
    )
    assert down.returncode == 0, down.stderr
    assert HttpOk(f"{url}/moto-api/").check() is None, "harness down stopped an emulator it does not own"
    assert _client("s3", url).head_bucket(Bucket=load_topology(ROOT / "topology.toml").s3.bucket)
