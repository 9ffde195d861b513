"""Fixtures of the deploy tests: the staging topology, and a moto-based AWS endpoint (tests/deploy/cfn_emulator.py)
in a subprocess on a free port, with the staging account id so the account guard rail passes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topology.toml"
EMULATOR = Path(__file__).with_name("cfn_emulator.py")
STAGING_ACCOUNT = "111122223333"


@pytest.fixture(scope="session")
def staging() -> Topology:
    return load_topology(TOPOLOGY, env="staging")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Endpoint:
    url: str
    log: Path
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
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=120, check=False)
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def push_image(self, tag: str) -> None:
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "digest": "sha256:" + (tag.encode().hex() * 64)[:64],
                "size": 1,
                "mediaType": "application/vnd.docker.container.image.v1+json",
            },
            "layers": [],
        }
        self.client("ecr").put_image(
            repositoryName="saas-backend", imageManifest=json.dumps(manifest), imageTag=tag
        )


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """A fresh emulator per test module (state is in memory and goes with the process)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    env = {**os.environ, "MOTO_ACCOUNT_ID": STAGING_ACCOUNT}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(EMULATOR), "--port", str(port)], stdout=out, stderr=out, env=env
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the emulator did not start on {url}; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
    try:
        yield Endpoint(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
