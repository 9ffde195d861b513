"""Rollout steps after the stack is applied: one-off tasks (database roles, then migrations as the schema
owner), services moved to the new image and waited on until stable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from harness.deploy.redact import redact
from harness.errors import DeployError
from harness.readiness import NotYet, WaitTimeout, wait_for

Progress = Callable[[str], None]
POLL_SECONDS = 3.0
TASK_TIMEOUT = 1800.0
STABLE_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Network:
    subnets: tuple[str, ...]
    security_group: str


def run_one_off_task(
    ecs: Any,
    *,
    cluster: str,
    task_definition: str,
    network: Network,
    label: str,
    log_group: str,
    progress: Progress,
    timeout: float = TASK_TIMEOUT,
) -> None:
    """Run a task to completion; its (only) container must exit 0, or the deploy stops here."""
    try:
        answer = ecs.run_task(
            cluster=cluster,
            taskDefinition=task_definition,
            launchType="FARGATE",
            count=1,
            startedBy="harness-deploy",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(network.subnets),
                    "securityGroups": [network.security_group],
                    "assignPublicIp": "DISABLED",
                }
            },
        )
    except ClientError as exc:
        raise DeployError(f"{label}: could not start the task: {redact(str(exc))}") from exc
    if answer.get("failures"):
        raise DeployError(f"{label}: ECS refused the task: {answer['failures']}")
    task_arn = answer["tasks"][0]["taskArn"]
    progress(f"{label}: task {task_arn.rsplit('/', 1)[-1]} started")

    def stopped() -> dict[str, Any] | NotYet:
        task: dict[str, Any] = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
        return task if task.get("lastStatus") == "STOPPED" else NotYet(f"task still {task.get('lastStatus')}")

    try:
        task = wait_for(
            f"{label}: task STOPPED",
            stopped,
            timeout=timeout,
            interval=POLL_SECONDS,
            max_interval=POLL_SECONDS,
        )
    except WaitTimeout as exc:
        raise DeployError(exc.message, hint=f"logs: {log_group}") from exc
    containers = task.get("containers", [])
    codes = [c.get("exitCode") for c in containers]
    if not containers or any(code != 0 for code in codes):
        reason = redact(str(task.get("stoppedReason", "")))
        raise DeployError(
            f"{label}: task failed (exit code {codes or 'none'}; {reason or 'no reason given'}); "
            "nothing after it ran, the services still run the previous image",
            hint=f"read the task's log in CloudWatch Logs group {log_group}",
        )
    progress(f"{label}: done (exit 0)")


def wait_services_stable(
    ecs: Any, *, cluster: str, services: Sequence[str], progress: Progress, timeout: float = STABLE_TIMEOUT
) -> None:
    """Each service has one deployment whose running count is its desired count (ECS's own "stable")."""
    pending = list(services)

    def all_stable() -> bool | NotYet:
        nonlocal pending
        described = ecs.describe_services(cluster=cluster, services=pending)
        if described.get("failures"):
            raise DeployError(f"services not found in cluster {cluster}: {described['failures']}")
        still: list[str] = []
        for service in described["services"]:
            deployments = service.get("deployments", [])
            primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
            if primary.get("rolloutState") == "FAILED":
                raise DeployError(
                    f"service {service['serviceName']}: rollout failed ({primary.get('rolloutStateReason', '')}); "
                    "the ECS circuit breaker rolls it back to the previous task definition"
                )
            stable = len(deployments) == 1 and service.get("runningCount") == service.get("desiredCount")
            if not stable:
                still.append(service["serviceName"])
        for name in sorted(set(pending) - set(still)):
            progress(f"service {name}: stable")
        pending = still
        return NotYet(f"not stable yet: {', '.join(pending)}") if pending else True

    # Not boto3's `services_stable` waiter: it cannot tell a rollout the circuit breaker FAILED from a slow one.
    try:
        wait_for(
            "ECS services stable",
            all_stable,
            timeout=timeout,
            interval=POLL_SECONDS,
            max_interval=POLL_SECONDS,
        )
    except WaitTimeout as exc:
        raise DeployError(exc.message) from exc


def check_image(ecr: Any, repository: str, tag: str) -> None:
    """The image must be in ECR before anything runs it (CI pushes it; an unpushed tag stops the deploy)."""
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise DeployError(
                f"image {repository}:{tag} is not in ECR",
                hint="push it first (CI: build → push → deploy), or pass the tag that was pushed with --image-tag",
            ) from exc
        raise DeployError(f"cannot look up image {repository}:{tag}: {exc}") from exc
