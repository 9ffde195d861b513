"""`harness deploy` end to end against a moto-based AWS endpoint (--endpoint-url), through the real CLI.

The tests of this module run in order against one endpoint: nothing deployed → plan → first deploy →
no-op → a topology change → a failing resource → drift, and finally no secret value in anything printed.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

Endpoint = Any  # conftest.Endpoint (conftest modules are not importable by name)

# One story on one emulator (first deploy, no-op, new image, ...), in order: under `-n N`, pyproject's
# `--dist loadfile` keeps the module on one worker.
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topology.toml"
DEPLOY = ("--env", "staging", "--yes", "--skip-gate")


def _topology(tmp_path: Path, staging_overrides: str = "", drop_parameter: str | None = None) -> Path:
    """A copy of topology.toml (same file name: it is part of the template's description) with changes."""
    text = TOPOLOGY.read_text()
    if staging_overrides:
        text = text.replace("[environments.staging]\n", f"[environments.staging]\n{staging_overrides}\n", 1)
    if drop_parameter:
        text = re.sub(
            rf'\[\[parameters\]\]\nname = "[^"]+"\nenv = "{drop_parameter}"\nvalue = "[^"]+"\n', "", text
        )
    directory = tmp_path / f"t{time.monotonic_ns()}"
    directory.mkdir()
    path = directory / "topology.toml"
    path.write_text(text)
    return path


def _stacks(endpoint: Endpoint) -> list[str]:
    names = []
    for region in ("me-south-1", "us-east-1"):
        for stack in endpoint.client("cloudformation", region).list_stacks()["StackSummaries"]:
            if stack["StackStatus"] != "DELETE_COMPLETE":
                names.append(stack["StackName"])
    return names


def test_production_is_refused_without_its_flag_and_with_the_wrong_account(endpoint: Endpoint) -> None:
    proc = endpoint.harness("--env", "production", "--plan")
    assert proc.returncode == 1
    assert "refusing to touch production without --production" in proc.stderr
    proc = endpoint.harness("--env", "production", "--production", "--plan")
    assert proc.returncode == 1
    assert "account 111122223333, but production is account 444455556666" in proc.stderr
    proc = endpoint.harness("--env", "production", "--production", "--yes", "--image-tag", "v1")
    assert proc.returncode == 1 and "--yes alone does not deploy production" in proc.stderr
    assert _stacks(endpoint) == []


def test_plan_creates_nothing(endpoint: Endpoint) -> None:
    proc = endpoint.harness("--env", "staging", "--plan", "--image-tag", "v1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "stack saas-staging: create" in proc.stderr and "+ Database" in proc.stderr
    assert "plan only: nothing was changed" in proc.stderr
    assert _stacks(endpoint) == []
    assert endpoint.client("s3").list_buckets()["Buckets"] == []
    assert endpoint.client("secretsmanager").list_secrets()["SecretList"] == []


def test_first_deploy_creates_the_stacks(endpoint: Endpoint) -> None:
    proc = endpoint.harness("--env", "staging", "--yes", "--only-base")
    assert proc.returncode == 0, proc.stderr
    endpoint.push_image("v1")
    started = time.monotonic()
    proc = endpoint.harness(*DEPLOY, "--image-tag", "v1")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    print(f"first deploy against the emulator: {elapsed:.1f}s")
    assert "step 2/3: database roles: done (exit 0)" in proc.stderr
    assert "step 2/3: migrations (app_migrator): done (exit 0)" in proc.stderr
    assert "service saas-staging-backend: stable" in proc.stderr
    assert "GATE SKIPPED" in proc.stderr
    assert sorted(_stacks(endpoint)) == ["saas-staging", "saas-staging-base", "saas-staging-edge"]
    cfn = endpoint.client("cloudformation")
    stack = cfn.describe_stacks(StackName="saas-staging")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ApiUrl"] == "https://api.staging.yourdomain.com"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ServiceImageTag"] == "v1"
    services = endpoint.client("ecs").describe_services(
        cluster="saas-staging", services=["saas-staging-backend", "saas-staging-worker"]
    )["services"]
    assert [s["desiredCount"] for s in services] == [2, 1]
    names = {s["Name"] for s in endpoint.client("secretsmanager").list_secrets()["SecretList"]}
    assert {
        "saas/staging/database-url",
        "saas/staging/app-secret-key",
        "saas/staging/redis-url-worker",
    } <= names


def test_second_deploy_is_a_noop(endpoint: Endpoint) -> None:
    cfn = endpoint.client("cloudformation")
    events = len(cfn.describe_stack_events(StackName="saas-staging")["StackEvents"])
    started = time.monotonic()
    proc = endpoint.harness(*DEPLOY, "--image-tag", "v1")
    print(f"no-op deploy: {time.monotonic() - started:.1f}s")
    assert proc.returncode == 0, proc.stderr
    assert "no-op" in proc.stderr and "nothing to do" in proc.stderr
    assert "rollout" not in proc.stderr and "applying" not in proc.stderr
    assert len(cfn.describe_stack_events(StackName="saas-staging")["StackEvents"]) == events


def test_a_new_image_migrates_before_the_services_move(endpoint: Endpoint) -> None:
    endpoint.push_image("v2")
    proc = endpoint.harness(*DEPLOY, "--image-tag", "v2")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert (
        err.index("services stay on v1")
        < err.index("migrations (app_migrator): done")
        < err.index("services to image v2")
    )
    proc = endpoint.harness(*DEPLOY, "--image-tag", "v3")
    assert proc.returncode == 1 and "image saas-backend:v3 is not in ECR" in proc.stderr


def test_a_desired_count_change_shows_old_and_new_values_and_its_cost(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    changed = _topology(tmp_path, "deploy.backend.desired_count = 3")
    proc = endpoint.harness("--env", "staging", "--plan", topology=changed)
    assert proc.returncode == 0, proc.stderr
    assert "DesiredCount: 2 → 3" in proc.stderr
    # one more task of 0.5 vCPU / 1 GB: (0.5 x $0.04456 + 1 x $0.00489) x 730 h = $19.83 (harness/deploy/prices.py)
    assert "+$19.83/mo: BackendService DesiredCount 2 → 3" in proc.stderr
    proc = endpoint.harness("--env", "staging", "--plan", "--json", topology=changed)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    app = next(stack for stack in plan["stacks"] if stack["stack"] == "saas-staging")
    backend = next(change for change in app["changes"] if change["logical_id"] == "BackendService")
    assert backend["type"] == "AWS::ECS::Service" and backend["action"] == "Modify"
    assert {"path": "DesiredCount", "old": 2, "new": 3} in backend["properties"]
    assert backend["usd_month_delta"] == 19.83
    assert plan["cost_delta_usd_month"] == 19.83


def test_a_topology_change_produces_the_expected_change_set(endpoint: Endpoint, tmp_path: Path) -> None:
    changed = _topology(tmp_path, "deploy.alarms.cpu_percent = 75")
    proc = endpoint.harness("--env", "staging", "--plan", topology=changed)
    assert proc.returncode == 0, proc.stderr
    modified = re.findall(r"^\s+~ (\w+)", proc.stderr, re.M)
    assert sorted(modified) == ["BackendServiceCpuHigh", "DatabaseCpuHigh", "WorkerServiceCpuHigh"]
    assert "stack saas-staging: update — 3 to modify" in proc.stderr
    assert "stack saas-staging-base: update — no changes" in proc.stderr
    # the one knob moves three alarms, and the plan says so
    assert len(re.findall(r"^\s+Threshold: 80(?:\.0)? → 75(?:\.0)?$", proc.stderr, re.M)) == 3
    proc = endpoint.harness(*DEPLOY, topology=changed)
    assert proc.returncode == 0, proc.stderr
    # no new image, no task definition or database change: dbroles and migrate do not run again
    assert "one-off tasks skipped" in proc.stderr and "database roles: done" not in proc.stderr
    proc = endpoint.harness(*DEPLOY, topology=changed)
    assert "no-op" in proc.stderr


def test_a_failing_resource_is_reported_and_the_previous_stack_kept(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    taken = "saas-media-taken-staging-111122223333"
    endpoint.client("s3").create_bucket(
        Bucket=taken, CreateBucketConfiguration={"LocationConstraint": "me-south-1"}
    )
    changed = _topology(tmp_path, f's3.bucket = "{taken}"\ndeploy.alarms.cpu_percent = 75')
    proc = endpoint.harness(*DEPLOY, topology=changed)
    assert proc.returncode == 1
    assert re.search(
        r"error: stack saas-staging failed \(UPDATE_ROLLBACK_COMPLETE\): MediaBucket \(AWS::S3::Bucket\): .+",
        proc.stderr,
    )
    assert "the previous version of the stack is intact" in proc.stderr
    stack = endpoint.client("cloudformation").describe_stacks(StackName="saas-staging")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["MediaBucketName"] == "saas-media-staging-111122223333"
    unchanged = _topology(tmp_path, "deploy.alarms.cpu_percent = 75")
    proc = endpoint.harness("--env", "staging", "--plan", topology=unchanged)
    assert "stack saas-staging: update — no changes" in proc.stderr, proc.stderr


def test_drift_check_refuses_with_the_missing_list(endpoint: Endpoint, tmp_path: Path) -> None:
    topology = _topology(tmp_path, "deploy.alarms.cpu_percent = 75")
    no_bucket_param = _topology(tmp_path, "deploy.alarms.cpu_percent = 75", drop_parameter="S3_BUCKET")
    proc = endpoint.harness(*DEPLOY, topology=no_bucket_param)
    assert proc.returncode == 1
    assert "keys the app reads that nothing provides" in proc.stderr and "- S3_BUCKET" in proc.stderr
    assert "nothing was applied" in proc.stderr
    endpoint.client("secretsmanager").delete_secret(
        SecretId="saas/staging/app-secret-key", ForceDeleteWithoutRecovery=True
    )
    proc = endpoint.harness("--env", "staging", "--plan", topology=topology)
    assert proc.returncode == 3
    assert "- secret saas/staging/app-secret-key (APP_SECRET_KEY)" in proc.stderr
    proc = endpoint.harness(*DEPLOY, topology=topology)
    assert proc.returncode == 1
    assert "managed by the stack but missing in the account" in proc.stderr
    assert "- secret saas/staging/app-secret-key (APP_SECRET_KEY)" in proc.stderr


def test_no_secret_value_in_any_output(endpoint: Endpoint) -> None:
    sm = endpoint.client("secretsmanager")
    values: set[str] = set()
    for secret in sm.list_secrets()["SecretList"]:
        value = sm.get_secret_value(SecretId=secret["ARN"])["SecretString"]
        values.add(value)
        if "://" not in value and not value.startswith("{"):
            continue
        try:
            body = json.loads(value)
            values |= {str(v) for k, v in body.items() if k != "username" and isinstance(v, str)}
        except (ValueError, AttributeError):
            pass
        values |= set(re.findall(r"://[^:@/]+:([^@]+)@", value))
    assert len(values) > 10
    printed = "\n".join(endpoint.outputs)
    assert len(endpoint.outputs) >= 10
    leaked = [v[:4] + "…" for v in values if v in printed]
    assert not leaked, f"secret values printed: {leaked}"
