"""The AWS stand-in: moto server plus the CloudFormation models and behaviour moto lacks, answering STS for the
environment's own account id, so the real deploy path (`AwsDeployer`) runs against it unchanged.

`harness deploy --env ENV --rehearse` starts one; the deploy tests do too (tests/deploy/conftest.py). What it
models and what only AWS proves: docs/deploying.md ("What a rehearsal proves").

    with StandIn(account_id="111122223333", region="me-south-1") as standin:
        standin.push_image("saas-backend", "v1")   # after the base stack made the repository
        ... AwsTarget(region, endpoint_url=standin.url, credentials=STANDIN_CREDENTIALS) ...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import ServiceStartError
from harness.ports import free_port
from harness.readiness import HttpOk, wait_until_ready

# Not secrets: moto accepts any key; fixed ones keep a person's real AWS credentials away from the stand-in.
STANDIN_CREDENTIALS = ("standin", "standin")
START_TIMEOUT = 120.0  # moto imports slowly on a busy machine


class StandIn:
    """One stand-in process on a free loopback port; `stop()` (or leaving the `with`) ends it."""

    def __init__(self, *, account_id: str, region: str, port: int | None = None, log: Path | None = None):
        self.account_id = account_id
        self.region = region
        self.port = port or free_port()
        self.log = log or Path(tempfile.mkdtemp(prefix="harness-standin-")) / "standin.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandIn:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        argv = [sys.executable, "-m", "harness.deploy.standin", "--port", str(self.port)]
        argv += ["--account-id", self.account_id]
        with open(self.log, "wb") as out:
            self._proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        proc = self._proc
        reason = wait_until_ready(
            HttpOk(f"{self.url}/moto-api/"),
            timeout=START_TIMEOUT,
            gave_up=lambda: f"it exited with code {proc.returncode}" if proc.poll() is not None else None,
        )
        if reason is not None:
            self.stop()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise ServiceStartError(
                f"the AWS stand-in did not start on {self.url}: {reason}\n{tail}",
                hint=f"its log: {self.log}",
            )
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client(self, service: str, region: str | None = None) -> Any:
        import boto3

        key, secret = STANDIN_CREDENTIALS
        return boto3.client(  # type: ignore[call-overload]
            service, endpoint_url=self.url, region_name=region or self.region,
            aws_access_key_id=key, aws_secret_access_key=secret,
        )  # fmt: skip

    def push_image(self, repository: str, tag: str) -> str:
        """Put a placeholder image (a manifest without layers: nothing runs it here) under `tag`; its digest."""
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
        answer = self.client("ecr").put_image(
            repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
        )
        return str(answer["image"]["imageId"].get("imageDigest", ""))
