"""`harness deploy --env ENV --rehearse`: the real deploy path, end to end, against the AWS stand-in.

1. starts the stand-in (harness/deploy/standin) answering for the environment's own account id;
2. applies the base stack (the ECR repository, as CI's `--only-base` step does) and pushes a placeholder image
   for the release tag;
3. runs `AwsDeployer.deploy` unchanged: guard rails, confirmation, plan, drift check, apply, `dbroles` and
   `migrate`, rollout;
4. the gate: the stand-in runs no container, so the rehearsal provisions a local app stack (the topology's
   `local` environment: Postgres, Redis, the AWS emulator, backend, worker) and hands the gate the deployed
   outputs with the app's endpoints replaced by that stack's — the same health check and the same scenarios
   of the `deployed` target that run against AWS;
5. stops everything it started, passed or not.

What this proves and what only AWS can: docs/deploying.md ("What a rehearsal proves").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.deploy.deployer import AwsDeployer, Confirm, DeployOptions, DeployReport, GateTarget, Progress
from harness.deploy.mailrelay import SesEventRelay
from harness.deploy.standin import STANDIN_CREDENTIALS, StandIn
from harness.deploy.target import AwsTarget
from harness.topology import Topology

DEFAULT_TAG = "rehearsal"
# Deployed outputs the local app stack answers for instead (the rest are kept as the stand-in gave them).
LOCAL_OUTPUTS = ("ApiUrl", "UserPoolId", "UserPoolClientId", "MediaBucketName", "SesEventsQueueUrl", "Region",
                 "Environment")  # fmt: skip


class Rehearsal:
    """A stand-in and, once the gate needs it, a local app stack; `close()` stops both."""

    def __init__(
        self,
        topology: Topology,
        *,
        progress: Progress,
        confirm: Confirm | None = None,
        state_root: Path | None = None,
    ) -> None:
        self.topology = topology
        self.progress = progress
        self.standin = StandIn(account_id=topology.project.account_id, region=topology.region)
        self.target = AwsTarget(
            region=topology.region, endpoint_url=self.standin.url, credentials=STANDIN_CREDENTIALS
        )
        self.deployer = AwsDeployer(
            topology, self.target, progress=progress, confirm=confirm, gate_outputs=self.gate_target
        )
        self.state_root = state_root
        self.local: Any = None  # harness.testing.RunningStack, once started
        self.relay: SesEventRelay | None = None
        self.gate_runs = 0

    def __enter__(self) -> Rehearsal:
        self.progress("rehearsal", f"starting the AWS stand-in (account {self.topology.project.account_id})")
        self.standin.start()
        self.progress("rehearsal", f"stand-in on {self.standin.url} (log: {self.standin.log})")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        local, self.local = self.local, None
        relay, self.relay = self.relay, None
        try:
            if relay is not None:
                relay.stop()
            if local is not None:
                self.progress("rehearsal", "stopping the local app stack")
                local.stop()
        finally:
            self.standin.stop()

    def prepare(self, options: DeployOptions, tag: str) -> None:
        """The base stack (it holds the ECR repository; applied with the same guard rails and confirmation as a
        deploy) and a placeholder image for `tag` in it."""
        base = self.deployer.deploy_base(dataclasses.replace(options, plan_only=False))
        repository = base.outputs.get("ImageRepositoryName") or self.deployer.names.repository
        if not base.outputs:
            state = self.deployer.stacks()[0].state()
            repository = (state.outputs if state else {}).get("ImageRepositoryName", repository)
        digest = self.standin.push_image(repository, tag)
        self.progress("rehearsal", f"placeholder image {repository}:{tag} pushed ({digest[:19]})")

    def deploy(self, options: DeployOptions) -> DeployReport:
        return self.deployer.deploy(options)

    def gate_target(self, deployed: dict[str, str]) -> GateTarget:
        """The local app stack, provisioned on first use, as the gate's target."""
        self.gate_runs += 1
        if self.local is None:
            from harness.testing import start_stack

            self.progress("rehearsal", "the stand-in runs no container: provisioning a local app stack")
            self.local = start_stack(self.topology.source, env="local", state_root=self.state_root)
            self.relay = SesEventRelay(self.local.client("sqs"), self.local.aws.endpoint_url).start()
        env = self.local.env("backend")
        aws = self.local.aws
        assert self.relay is not None
        outputs = dict(deployed)
        outputs |= {
            "ApiUrl": self.local.api_url,
            "UserPoolId": env["COGNITO_USER_POOL_ID"],
            "UserPoolClientId": env["COGNITO_CLIENT_ID"],
            "CognitoClientSecret": env.get("COGNITO_CLIENT_SECRET", ""),
            "AppSecretKey": env["APP_SECRET_KEY"],
            "MediaBucketName": env["S3_BUCKET"],
            "Region": aws.region,
            "Environment": env.get("APP_ENV", "local"),
            "AwsEndpointUrl": aws.endpoint_url,
            "SesEventsQueueUrl": self.relay.queue_url,  # SES events of the local mail, as SNS->SQS gives them
        }
        self.progress(
            "rehearsal",
            f"gate target: {self.local.api_url} (the deployed outputs, with "
            f"{', '.join(LOCAL_OUTPUTS)} of the local app stack)",
        )
        credentials = {
            "AWS_ACCESS_KEY_ID": aws.access_key_id,
            "AWS_SECRET_ACCESS_KEY": aws.secret_access_key,
            "AWS_DEFAULT_REGION": aws.region,
        }
        return GateTarget(outputs, env=credentials)


def rehearse(
    topology: Topology, options: DeployOptions, *, progress: Progress, confirm: Confirm | None = None
) -> DeployReport:
    """One rehearsal of a deploy of `topology`'s environment; raises `DeployError` when it does not pass."""
    tag = options.image_tag or DEFAULT_TAG
    options = dataclasses.replace(options, image_tag=tag, plan_only=False)
    with Rehearsal(topology, progress=progress, confirm=confirm) as rehearsal:
        rehearsal.prepare(options, tag)
        return rehearsal.deploy(options)
