"""The worker on its own Redis ACL user: remote control answers, tasks run under their tenant's RLS
context, a worker killed mid-send still delivers the email exactly once, and every key stays namespaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from app_stack_clients import Inbox, TenantUnderTest, add_catalog_item, database_url_for, unique, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CELERY = [sys.executable, "-m", "celery", "-A", "app.workers.celery_app"]
SEND_TASK = """
import json, sys
from app.workers.celery_app import celery_app
result = celery_app.send_task(sys.argv[1], args=json.loads(sys.argv[2]), queue=sys.argv[3] or None)
print(json.dumps(result.get(timeout=30) if sys.argv[4] == "wait" else result.id))
"""


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        env=os.environ | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def send_task(env: dict[str, str], name: str, args: list[str], *, queue: str = "", wait: bool = False) -> Any:
    done = run(env, sys.executable, "-c", SEND_TASK, name, json.dumps(args), queue, "wait" if wait else "")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def insert_unsent_order(admin_db: psycopg.Connection[Any], tenant_id: str, buyer: str) -> str:
    """An order row written directly (no task queued, no email yet): the test sends its task itself."""
    order_id = str(uuid.uuid4())
    admin_db.execute(
        "INSERT INTO orders (id, tenant_id, user_sub, buyer_email, items, total_cents, currency)"
        " VALUES (%s, %s, 'sub', %s, %s, 100, 'USD')",
        (
            order_id,
            tenant_id,
            buyer,
            json.dumps([{"sku": "X", "name": "X", "qty": 1, "unit_price_cents": 100}]),
        ),
    )
    return order_id


def start_worker(env: dict[str, str], queue: str, log: Path) -> subprocess.Popen[bytes]:
    command = [
        *CELERY,
        "worker",
        "-Q",
        queue,
        "-c",
        "1",
        "-n",
        f"{queue}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            env=os.environ | env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


class SilentSes:
    """An 'SES endpoint' that takes the request and never answers: the send is in flight, not done."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.called = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            connection.recv(65536)
            self.called.set()

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


ROW_LOCK_HOLDER = """
SELECT l.pid FROM pg_locks l JOIN orders o ON l.transactionid = o.xmax
WHERE o.id = %s AND l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
"""


class DatabaseLostDuringSend:
    """A proxy in front of the real emulator. When an SES send arrives for the order it watches, it first ends
    the database session that holds the order's row lock (as a Postgres restart does), then forwards the send:
    SES accepts the email, and the transaction that would stamp the order can no longer commit."""

    def __init__(self, emulator: str, database_url: str, order_id: str) -> None:
        self.emulator = emulator.rstrip("/")
        self.database_url = database_url
        self.order_id = order_id
        self.terminated: list[int] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if b"Action=SendEmail" in body and not proxy.terminated:
                    proxy.end_lock_holder()
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = httpx.post(proxy.emulator + self.path, content=body, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "text/xml"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def end_lock_holder(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as db:
            [(pid,)] = db.execute(ROW_LOCK_HOLDER, (self.order_id,)).fetchall()
            db.execute("SELECT pg_terminate_backend(%s)", (pid,))
            self.terminated.append(pid)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def silent_ses() -> Iterator[SilentSes]:
    endpoint = SilentSes()
    yield endpoint
    endpoint.close()


def test_remote_control_answers_under_the_worker_acl(worker_env: dict[str, str]) -> None:
    done = run(worker_env, *CELERY, "inspect", "ping", "--timeout", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pong" in done.stdout


def test_task_runs_under_its_own_tenant_only(
    tenant: TenantUnderTest, other_tenant: TenantUnderTest, backend_env: dict[str, str], inbox: Inbox
) -> None:
    add_catalog_item(tenant, "PIN", 500)
    order = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "PIN", "qty": 1}]}).json()
    inbox.wait_for(tenant.member.email, f"Order {order['id']}")
    # The same order id under another tenant's context: invisible, so nothing is sent.
    result = send_task(backend_env, "emails.order_confirmation", [other_tenant.id, order["id"]], wait=True)
    assert result is None
    assert len(inbox.to(tenant.member.email, f"Order {order['id']}")) == 1


def test_worker_killed_mid_send_sends_exactly_once_after_restart(
    tenant: TenantUnderTest,
    worker_env: dict[str, str],
    backend_env: dict[str, str],
    admin_db: psycopg.Connection[Any],
    inbox: Inbox,
    silent_ses: SilentSes,
    tmp_path: Path,
) -> None:
    queue = unique("kill-test-")
    buyer = f"{unique('buyer-')}@it.test"
    order_id = insert_unsent_order(admin_db, tenant.id, buyer)
    # Redelivery of an unacknowledged task happens after the visibility timeout; keep it short here.
    fast_redelivery = {"CELERY_VISIBILITY_TIMEOUT": "5"}

    first = start_worker(
        worker_env | fast_redelivery | {"AWS_ENDPOINT_URL": silent_ses.url}, queue, tmp_path / "w1.log"
    )
    try:
        send_task(backend_env, "emails.order_confirmation", [tenant.id, order_id], queue=queue)
        assert silent_ses.called.wait(60), (tmp_path / "w1.log").read_text()
    finally:
        stop(first, signal.SIGKILL)  # mid-send: row locked, SES call in flight, nothing committed
    sent_at = admin_db.execute(
        "SELECT confirmation_sent_at FROM orders WHERE id = %s", (order_id,)
    ).fetchone()
    assert sent_at == (None,)
    assert inbox.to(buyer) == []

    second = start_worker(worker_env | fast_redelivery, queue, tmp_path / "w2.log")
    try:
        inbox.wait_for(buyer, f"Order {order_id}", timeout=90)
        wait_for(
            lambda: admin_db.execute(
                "SELECT confirmation_sent_at FROM orders WHERE id = %s", (order_id,)
            ).fetchone()[0],  # type: ignore[index]
            what="the order to be stamped",
        )
    finally:
        stop(second)
    assert len(inbox.to(buyer)) == 1


def test_a_database_lost_after_ses_accepted_sends_exactly_once(
    stack: Any,
    tenant: TenantUnderTest,
    worker_env: dict[str, str],
    backend_env: dict[str, str],
    admin_db: psycopg.Connection[Any],
    inbox: Inbox,
    tmp_path: Path,
) -> None:
    """Before: the email was sent, the commit that stamps the order failed, the retry sent it again (two
    emails; the fault suite's postgres kill showed it). Now the retry finds SES's message id recorded in
    Redis and only stamps the order."""
    queue = unique("db-lost-")
    buyer = f"{unique('buyer-')}@it.test"
    order_id = insert_unsent_order(admin_db, tenant.id, buyer)
    url = database_url_for(stack.admin_database_url, backend_env["DATABASE_URL"])
    proxy = DatabaseLostDuringSend(worker_env["AWS_ENDPOINT_URL"], url, order_id)
    worker = start_worker(worker_env | {"AWS_ENDPOINT_URL": proxy.url}, queue, tmp_path / "worker.log")
    try:
        send_task(backend_env, "emails.order_confirmation", [tenant.id, order_id], queue=queue)
        stamped = wait_for(
            lambda: admin_db.execute(
                "SELECT confirmation_message_id FROM orders WHERE id = %s AND confirmation_sent_at IS NOT NULL",
                (order_id,),
            ).fetchone(),
            what="the order to be stamped",
            timeout=60,
        )
    finally:
        stop(worker)
        proxy.close()
    log = (tmp_path / "worker.log").read_text()
    assert len(proxy.terminated) == 1, log  # the fault happened: the first commit failed
    mail = httpx.get(f"{worker_env['AWS_ENDPOINT_URL']}/_harness/ses/messages", params={"to": buyer}).json()
    assert [m["id"] for m in mail] == [stamped[0]], log  # one email, and it is the one the order names
    assert "before the database could record it" in log
    assert len(inbox.to(buyer)) == 1


def test_every_redis_key_is_in_a_declared_namespace(redis_admin: redis.Redis) -> None:
    topology = tomllib.loads((ROOT / "topology.toml").read_text())
    prefixes = tuple(namespace["prefix"] for namespace in topology["redis"]["namespaces"])
    strays = [key for key in redis_admin.scan_iter(count=1000) if not key.startswith(prefixes)]
    assert strays == []


def test_the_usage_rollup_of_every_tenant_reads_its_index_not_a_scan(
    tenant: TenantUnderTest,
    worker_env: dict[str, str],
    admin_db: psycopg.Connection[Any],
    redis_admin: redis.Redis,
) -> None:
    """The beat's roll-up (no tenant id) finds counters through `ai:quota:index` (SCAN and KEYS are not on
    the worker's allow-list), and drops index entries whose counter expired or went with its tenant."""
    from app import keys
    from app.ai.quota import QUOTA_KEY_TTL_SECONDS, current_period

    period, index = current_period(), keys.ai_quota_index()
    mine = keys.ai_quota_member(uuid.UUID(tenant.id), period)
    gone, expired = f"{uuid.uuid4()}:{period}", f"{uuid.uuid4()}:{period}"
    redis_admin.hset(
        keys.ai_quota(uuid.UUID(tenant.id), period), mapping={"prompt": 3, "completion": 4, "requests": 1}
    )
    redis_admin.zadd(
        index, {mine: time.time(), gone: time.time(), expired: time.time() - QUOTA_KEY_TTL_SECONDS - 60}
    )

    assert send_task(worker_env, "ai.aggregate_usage", [], wait=True) >= 1
    row = admin_db.execute(
        "SELECT total_tokens, requests FROM ai_usage WHERE tenant_id = %s AND period = %s",
        (tenant.id, period),
    ).fetchone()
    assert row == (7, 1)
    assert redis_admin.zscore(index, mine) is not None
    assert redis_admin.zscore(index, gone) is None and redis_admin.zscore(index, expired) is None
