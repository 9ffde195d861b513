"""Fault injection: each component killed (-9) and frozen (SIGSTOP, then SIGCONT) with orders, donations,
invites, uploads and Cognito sign-ups in flight, on a private stack; then the stack is brought back (`up`).

Asserted per run: no acknowledged row, object or Cognito user lost; every committed order, donation and
invite emailed exactly once; health honest during the outage. Each run prints its counts. The stack runs
with short redelivery settings (visibility timeout 6 s, outbox republish 4 s) so a run takes seconds; the
production defaults only scale those bounds (docs/app.md §6).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "app"))

from app_stack_clients import Cognito, database_url_for, unique
from fault_workload import Actors, Workload, verify

from harness.testing import RunningStack, start_stack

pytestmark = [pytest.mark.faults, pytest.mark.integration]

FAST_REDELIVERY = {
    "CELERY_VISIBILITY_TIMEOUT": "6",
    "OUTBOX_REPUBLISH_SECONDS": "4",
    "OUTBOX_RELAY_INTERVAL_SECONDS": "0.5",
}
LOAD_BEFORE_FAULT = 1.0
OUTAGE_SECONDS = 2.5  # > the health check's 2 s timeout: a frozen dependency is reported too
CONVERGE_TIMEOUT = 90.0
# Outages the backend's health must report (503) while they last.
HEALTH_REPORTS = {"postgres", "redis", "aws"}
# Faults after which the worker cannot know whether SES accepted a send (the worker died mid-send, or SES
# died before it answered); its resend is then tagged possible_duplicate. Anywhere else that is a bug.
MAY_LEAVE_SES_UNSURE = {("worker", "kill"), ("aws", "kill")}


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[RunningStack]:
    saved = {key: os.environ.get(key) for key in FAST_REDELIVERY}
    os.environ.update(FAST_REDELIVERY)  # app processes inherit it, also those `up` restarts
    stack = start_stack(with_app=True)
    try:
        yield stack
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def tools(fault_stack: RunningStack) -> dict[str, Any]:
    env = fault_stack.env("backend")
    cognito = Cognito(env)
    aws = {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env["AWS_REGION"],
        "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
    }
    url = database_url_for(fault_stack.admin_database_url, env["DATABASE_URL"])
    return {"env": env, "cognito": cognito, "s3": boto3.client("s3", **aws), "db_url": url}


def admin_db(tools: dict[str, Any]) -> psycopg.Connection[Any]:
    """A new superuser connection each time: killing Postgres ends every open one."""
    return psycopg.connect(tools["db_url"], autocommit=True, connect_timeout=5)


def make_actors(stack: RunningStack, tools: dict[str, Any]) -> Actors:
    cognito: Cognito = tools["cognito"]
    admin_email, member_email = f"{unique('fadmin-')}@faults.test", f"{unique('fmember-')}@faults.test"
    member_sub = cognito.create_user(member_email)
    cognito.create_user(admin_email)
    admin_token = cognito.sign_in(admin_email).access
    slug = unique("f-")
    api = httpx.Client(base_url=stack.api_url, timeout=30, headers={"Authorization": f"Bearer {admin_token}"})
    created = api.post("/api/v1/tenants", json={"slug": slug, "name": f"Faults {slug}"})
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    with admin_db(tools) as db:
        db.execute(
            "INSERT INTO memberships (id, tenant_id, user_sub, email, role)"
            " VALUES (gen_random_uuid(), %s, %s, %s, 'member')",
            (tenant_id, member_sub, member_email),
        )
    item = {"sku": "FAULT", "name": "Fault item", "price_cents": 100, "currency": "USD"}
    assert api.post("/api/v1/catalog", json=item, headers={"X-Tenant": slug}).status_code == 201
    return Actors(tenant_id, slug, stack.api_url, admin_token, cognito.sign_in(member_email).access)


def component_pid(stack: RunningStack, name: str) -> int:
    [status] = [s for s in stack.runner.status() if s.name == name]
    assert status.pid is not None and status.healthy, (
        f"{name} is not running healthy before the fault: {status}"
    )
    return status.pid


def freeze(pid: int, sig: int) -> None:
    """SIGSTOP/SIGCONT the component's process and all its descendants, as a paused VM or container does
    (Postgres's backends run in sessions of their own: stopping only the postmaster leaves them serving)."""
    process = psutil.Process(pid)
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            each.send_signal(sig)


def backend_health(stack: RunningStack) -> int | None:
    try:
        return httpx.get(f"{stack.api_url}/api/v1/health", timeout=3).status_code
    except httpx.TransportError:
        return None  # unreachable: as honest as a 503


@pytest.mark.parametrize("mode", ["kill", "stop"])
@pytest.mark.parametrize("component", ["postgres", "redis", "aws", "backend", "worker"])
def test_nothing_acknowledged_is_lost(
    fault_stack: RunningStack, tools: dict[str, Any], component: str, mode: str
) -> None:
    stack = fault_stack
    env = tools["env"]
    actors = make_actors(stack, tools)
    workload = Workload(actors, tools["cognito"].client, env["COGNITO_USER_POOL_ID"])
    workload.start()
    time.sleep(LOAD_BEFORE_FAULT)

    pid = component_pid(stack, component)
    if mode == "kill":
        os.kill(pid, signal.SIGKILL)  # the main process; its children notice and exit
    else:
        freeze(pid, signal.SIGSTOP)
    outage_started = time.monotonic()
    health_during: list[int | None] = []
    while time.monotonic() - outage_started < OUTAGE_SECONDS:
        health_during.append(backend_health(stack))
        time.sleep(0.2)
    worker_status = None
    if component == "worker" and mode == "kill":
        worker_status = next(s for s in stack.runner.status() if s.name == "worker")

    recover_started = time.monotonic()
    if mode == "stop":
        freeze(pid, signal.SIGCONT)
    else:
        stack.runner.up(with_app=True)
    while backend_health(stack) != 200:
        assert time.monotonic() - recover_started < 60, "the stack did not report healthy within 60 s"
        time.sleep(0.2)
    healthy_after = time.monotonic() - recover_started
    time.sleep(1.0)  # work in flight across the recovery too
    workload.stop()

    ack = workload.ack
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while True:
        with admin_db(tools) as db:
            verdict = verify(
                db, env["AWS_ENDPOINT_URL"], tools["s3"], env["S3_BUCKET"], tools["cognito"].client,
                env["COGNITO_USER_POOL_ID"], actors.tenant_id, ack,
            )  # fmt: skip
        if not verdict.unsent or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    recovered = time.monotonic() - recover_started
    print(
        f"\n[faults] {component} {mode}: attempts {sum(ack.attempts.values())} {dict(ack.attempts)}, "
        f"refused {sum(ack.refused.values())}, acknowledged {ack.total}, committed rows {verdict.committed}, "
        f"losses={len(verdict.lost)}, duplicates={len(verdict.duplicates)}, "
        f"announced resends={len(verdict.announced)}, unsent={len(verdict.unsent)}, "
        f"health during outage {sorted(set(health_during), key=str)}, healthy after {healthy_after:.1f} s, "
        f"every email out after {recovered:.1f} s"
    )
    assert ack.total > 0, "nothing was acknowledged: the workload did not run"
    assert verdict.lost == []
    assert verdict.duplicates == []
    if (component, mode) not in MAY_LEAVE_SES_UNSURE:
        assert verdict.announced == [], "a resend marked possible_duplicate without a mid-send death"
    if verdict.unsent:
        worker_log = stack.state.log_file("worker").read_text(errors="replace")[-6000:]
        pytest.fail(
            f"not emailed within {CONVERGE_TIMEOUT:.0f} s: {verdict.unsent[:5]}\nworker log:\n{worker_log}"
        )
    if component in HEALTH_REPORTS:
        assert 200 not in health_during[2:], f"health said 200 while {component} was down: {health_during}"
        assert 503 in health_during or None in health_during
    if component == "backend":
        assert None in health_during  # unreachable, not a fake 200
    if worker_status is not None:
        assert not worker_status.healthy, worker_status
