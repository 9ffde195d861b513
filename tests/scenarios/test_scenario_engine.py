"""The engine on a real stack: reports of failing steps, audits catching planted violations, the Python
fixtures, the deployed target's code path (pointed at the local stack), and pytest/JUnit output."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from harness.scenarios import LOCAL_SPEC, load_scenario
from harness.scenarios.fixtures import ActorInbox, TenantFactory
from harness.scenarios.http import ApiClient
from harness.scenarios.monitor import RedisMonitor
from harness.scenarios.probes.objects import ObjectStore
from harness.scenarios.report import ScenarioFailed
from harness.scenarios.runner import ScenarioSession, _Run
from harness.scenarios.targets import DeployedOutputs, Target, deployed_target
from harness.testing import RunningStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NAMESPACES = ["ai:quota:", "ai:limit:", "ai:catalog:", "rl:", "celery:"]


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run(session: ScenarioSession, path: Path) -> Any:
    return session.run(load_scenario(path, target=session.target.spec, namespaces=NAMESPACES))


def test_a_shipped_scenario_passes_and_records_its_timings(scenario_session: ScenarioSession) -> None:
    result = run(scenario_session, ROOT / "scenarios" / "health.yaml")
    assert result.steps_passed == 2
    assert set(result.timings) == {"setup_s", "steps_s", "audits_s", "cleanup_s"}
    assert result.audits_run == ["redis-namespaces", "task-tenant", "redis-refusals", "object-prefix"]


def test_a_failing_expectation_reports_the_step_request_response_and_variables(
    scenario_session: ScenarioSession, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        """\
        name: a wrong expectation
        targets: [local]
        tenants:
          acme: {users: {owner: {role: owner}}}
        steps:
          - set: {api_token: not-for-your-eyes-1234, note: visible}
          - name: the owner reads the tenant
            as: acme.owner
            request: GET /api/v1/tenant
            expect:
              status: 418
              json: {role: admin}
          - request: GET /api/v1/health
        """,
    )
    with pytest.raises(ScenarioFailed) as info:
        run(scenario_session, path)
    report = str(info.value)
    assert f"step 2 ({path}:7): the owner reads the tenant — GET /api/v1/tenant as acme.owner" in report
    assert "✗ status: expected 418, got 200" in report
    assert '✗ json.role: expected "admin", got "owner"' in report
    assert "  request:\n    GET http://" in report
    assert "authorization: Bearer ***" in report
    assert "x-tenant: acme-" in report
    assert "  response: 200 OK in" in report
    assert '"role": "owner"' in report
    assert 'api_token = "***"' in report and 'note = "visible"' in report
    assert "not-for-your-eyes-1234" not in report
    assert "eyJ" not in report  # no JWT anywhere
    assert "steps: ✓1 ✗2 ·3" in report
    assert "audits run: redis-namespaces, task-tenant, redis-refusals, object-prefix" in report


def test_a_probe_that_times_out_shows_what_it_saw(scenario_session: ScenarioSession, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: mail that never comes
        targets: [local]
        tenants:
          acme: {users: {owner: {role: owner}}}
        users:
          guest: {}
        steps:
          # An invite of our own, and its mail first, so the probe below has something to show when it times
          # out. (Not the setup's invites: the worker skips the mail of an invite accepted before it runs.)
          - {as: acme.owner, request: POST /api/v1/invites, json: {email: "${users.guest.email}"}, expect: {status: 201}}
          - expect_email: {to: guest, subject_contains: invited, within: 20s}
          - expect_email: {to: guest, subject_contains: Order, within: 1s}
        """,
    )
    with pytest.raises(ScenarioFailed) as info:
        run(scenario_session, path)
    report = str(info.value)
    assert "✗ count of matching messages: expected >= 1, got 0" in report
    assert "(tried " in report and " times over 1.0s)" in report
    assert "observed:\n    messages to guest-" in report
    assert "You're invited to Acme" in report and "subject lacks 'Order'" in report


def test_audits_fail_the_scenario_with_planted_violations(
    scenario_target: Target, stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Violations planted during a run fail it. They are planted in Redis database 9 and a bucket of their own,
    watched by this test's own monitor and object store, so scenarios running in parallel (-n 2) on the same
    stack never see them; the engine, the MONITOR stream and the audits are the real ones."""
    marker = uuid.uuid4().hex[:8]
    admin_url = stack.redis_admin_url.rsplit("/", 1)[0] + "/9"
    admin = redis.Redis.from_url(admin_url)
    s3: Any = stack.client("s3")
    bucket = f"audit-test-{marker}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": stack.aws.region})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    monitor = RedisMonitor(admin_url, db=9)
    monitor.start()
    target = dataclasses.replace(
        scenario_target, monitor=monitor, objects=ObjectStore(s3, bucket, "{tenant_id}/"), _closers=[]
    )
    session = ScenarioSession(target)
    stray_key, queue_key, loose_object = f"stray:{marker}", f"celery:planted-{marker}", f"loose-{marker}.txt"
    task_id = str(uuid.uuid4())
    message = {
        "body": "W1tdLCB7fSwge31d",  # base64 of [[], {}, {}]: no tenant id
        "headers": {"task": "emails.invite", "id": task_id},
        "properties": {"body_encoding": "base64", "delivery_info": {"routing_key": f"planted-{marker}"}},
    }
    original = _Run._steps

    def steps_then_plant(self: _Run) -> None:
        original(self)
        admin.set(stray_key, "1", ex=60)
        admin.lpush(queue_key, json.dumps(message))  # a queue no worker consumes
        admin.set(f"ai:quota:{marker}", "1", ex=60)  # inside a namespace: no finding
        s3.put_object(Bucket=bucket, Key=loose_object, Body=b"outside every tenant prefix")

    monkeypatch.setattr(_Run, "_steps", steps_then_plant)
    try:
        with pytest.raises(ScenarioFailed) as info:
            run(session, ROOT / "scenarios" / "health.yaml")
    finally:
        session.close()
        monitor.close()
        admin.flushdb()
        admin.close()
        for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        s3.delete_bucket(Bucket=bucket)
    findings = {(f.audit, f.offending) for f in info.value.report.findings}
    assert findings == {
        ("redis-namespaces", repr(stray_key)),
        ("task-tenant", f"emails.invite[{task_id}]"),
        ("object-prefix", repr(loose_object)),
    }
    report = str(info.value)
    assert "audits failed (3 finding(s)):" in report
    assert f"✗ redis-namespaces: '{stray_key}' — written by SET, outside the declared namespaces" in report
    assert "without a tenant id (args [], kwargs {})" in report
    assert "steps: ✓1 ✓2" in report  # the steps themselves passed


def test_python_fixtures(tenant_factory: TenantFactory, api_client: ApiClient, inbox: ActorInbox) -> None:
    shop = tenant_factory("shop", users={"owner": "owner", "buyer": "member"})
    owner = api_client.as_actor(shop["owner"], tenant=shop)
    created = owner.post(
        "/api/v1/catalog", json={"sku": "CAP", "name": "Cap", "price_cents": 1900, "currency": "USD"}
    )
    assert created.status_code == 201, created.text
    buyer = api_client.as_actor(shop["buyer"], tenant=shop, via="subdomain")
    order = buyer.post("/api/v1/orders", json={"items": [{"sku": "CAP", "qty": 1}]})
    assert order.status_code == 201, order.text
    mail = inbox.wait_for(shop["buyer"], subject_contains=f"Order {order.json()['id']}", within=20)
    assert mail.body is not None and "Total: 19.00 USD" in mail.body
    stranger = tenant_factory.user("stranger")
    assert api_client.as_actor(stranger, tenant=shop).get("/api/v1/tenant").status_code == 403


def test_the_deployed_target_against_the_local_stack(
    stack: RunningStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed code path (outputs file, secrets from Secrets Manager, S3) with the emulator as AWS."""
    env = stack.env()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, env[name])
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(
        json.dumps(
            [
                {"OutputKey": "ApiUrl", "OutputValue": env["API_URL"]},
                {"OutputKey": "UserPoolId", "OutputValue": env["COGNITO_USER_POOL_ID"]},
                {"OutputKey": "UserPoolClientId", "OutputValue": env["COGNITO_CLIENT_ID"]},
                {"OutputKey": "MediaBucketName", "OutputValue": env["S3_BUCKET"]},
                {"OutputKey": "Environment", "OutputValue": "local"},
                {"OutputKey": "Region", "OutputValue": env["AWS_REGION"]},
                {"OutputKey": "AwsEndpointUrl", "OutputValue": env["AWS_ENDPOINT_URL"]},
            ]
        )
    )
    outputs = DeployedOutputs.load(outputs_file)
    target = deployed_target(outputs, stack.topology)
    session = ScenarioSession(target)
    try:
        assert target.identity.client_secret == env["COGNITO_CLIENT_SECRET"]  # read from Secrets Manager
        result = run(session, ROOT / "scenarios" / "cross_tenant.yaml")
        assert result.steps_skipped == 2  # the RLS probes are local-only
        assert result.audits_run == ["object-prefix"]
        assert "MONITOR" in result.audits_skipped["redis-namespaces"]
        run_ids = [result.run_id]
        for name in ("roles.yaml", "signup.yaml", "tenant_deletion.yaml"):
            outcome = run(session, ROOT / "scenarios" / name)
            assert outcome.cleanup_problems == [], (name, outcome.cleanup_problems)
            run_ids.append(outcome.run_id)
    finally:
        session.close()
        target.close()
    # No database access on a deployed target: the cleanup deleted the run's tenants through the API — the
    # declared ones and the one signup.yaml created itself.
    admin = urlsplit(stack.admin_database_url)
    database = urlsplit(env["DATABASE_URL"]).path
    with psycopg.connect(urlunsplit(("postgresql", admin.netloc, database, admin.query, ""))) as db:
        for run_id in run_ids:
            row = db.execute("SELECT count(*) FROM tenants WHERE slug LIKE %s", (f"%-{run_id}",)).fetchone()
            assert row == (0,), f"tenants of run {run_id} left behind"


def test_pytest_collects_runs_and_writes_junit(stack: RunningStack, tmp_path: Path) -> None:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "good.yaml").write_text((ROOT / "scenarios" / "health.yaml").read_text())
    write(
        directory,
        """\
        name: bad status
        targets: [local]
        steps:
          - request: GET /api/v1/health
            expect: {status: 201}
        """,
        "bad.yaml",
    )
    write(directory, "name: deployed only\ntargets: [deployed]\nsteps: [{request: GET /x}]\n", "other.yaml")
    junit = tmp_path / "junit.xml"
    env = os.environ | {
        "HARNESS_STATE_DIR": str(stack.state.root),
        "HARNESS_TOPOLOGY": str(stack.topology.source),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(directory), "--stack", "attach", "--target", "local",
         "-p", "no:cacheprovider", f"--junitxml={junit}", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "1 failed, 1 passed, 1 skipped" in completed.stdout
    assert "✗ status: expected 201, got 200" in completed.stdout
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"health reports every dependency up", "bad status", "deployed only"}
    failure = cases["bad status"].find("failure")
    assert failure is not None and "✗ status: expected 201, got 200" in (failure.text or "")
    properties = {p.get("name") for p in cases["health reports every dependency up"].iter("property")}
    assert {"target", "run_id", "setup_s", "steps_s", "audits_s", "cleanup_s"} <= properties
    skipped = cases["deployed only"].find("skipped")
    assert skipped is not None and "valid on deployed; this run targets local" in (
        skipped.get("message") or ""
    )


def test_an_invalid_file_is_a_collection_error(stack: RunningStack, tmp_path: Path) -> None:
    write(tmp_path, "name: broken\ntargets: [local]\nsteps:\n  - reqest: GET /x\n", "broken.yaml")
    env = os.environ | {
        "HARNESS_STATE_DIR": str(stack.state.root),
        "HARNESS_TOPOLOGY": str(stack.topology.source),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "broken.yaml"), "--stack", "attach", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stdout
    assert "broken.yaml:4: steps[0]: unknown step kind" in completed.stdout
    assert "Traceback" not in completed.stdout
    assert LOCAL_SPEC.name == "local"
