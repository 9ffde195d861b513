"""Fixtures of the deploy tests: the staging topology, and the AWS stand-in (harness/deploy/standin: moto plus the
CloudFormation models it lacks) in a subprocess on a free port, with the staging account id so the account
guard rail passes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.deploy.standin import StandIn
from harness.errors import ServiceStartError
from harness.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topology.toml"
STAGING_ACCOUNT = "111122223333"


@pytest.fixture(scope="session")
def staging() -> Topology:
    return load_topology(TOPOLOGY, env="staging")


@dataclass
class Endpoint:
    url: str
    log: Path
    standin: StandIn
    outputs: list[str] = field(default_factory=list)  # everything the CLI printed, for the no-secret check

    def client(self, service: str, region: str = "me-south-1") -> Any:
        import boto3

        return boto3.client(
            service, endpoint_url=self.url, region_name=region,
            aws_access_key_id="test", aws_secret_access_key="test",
        )  # fmt: skip

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        return env

    def harness(
        self, *args: str, topology: Path = TOPOLOGY, endpoint: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "harness.cli", "--topology", str(topology), "deploy", *args]
        if endpoint:
            argv += ["--endpoint-url", self.url]
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=600, check=False)
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def push_image(self, tag: str) -> None:
        self.standin.push_image("saas-backend", tag)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """A fresh stand-in per test module (state is in memory and goes with the process)."""
    standin = StandIn(
        account_id=STAGING_ACCOUNT,
        region="me-south-1",
        log=tmp_path_factory.mktemp("standin") / "standin.log",
    )
    try:
        standin.start()
    except ServiceStartError as exc:
        pytest.fail(str(exc))
    try:
        yield Endpoint(standin.url, standin.log, standin)
    finally:
        standin.stop()
