"""The developer's loop on the real stack: `harness mail`, `harness tenant`, `harness db reset`, `harness env
--format nextjs`, `harness snapshot`, and their refusal when the stack is down.

Ordered: the database reset and the snapshot load run last in this file (they replace the whole database).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.testing import RunningStack, private_temp_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def harness(
    stack_or_state: RunningStack | Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    state = stack_or_state if isinstance(stack_or_state, Path) else stack_or_state.runner.state.root
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "--state-dir", str(state), *args],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def ok(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    done = harness(stack, *args)
    assert done.returncode == 0, f"harness {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def admin(stack: RunningStack) -> psycopg.Connection[Any]:
    return psycopg.connect(stack.admin_database_url, autocommit=True)


def tenant_id(stack: RunningStack, slug: str) -> str:
    with admin(stack) as db:
        row = db.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
    assert row is not None, slug
    return str(row[0])


def skus(stack: RunningStack, slug: str) -> set[str]:
    with admin(stack) as db:
        rows = db.execute(
            "SELECT c.sku FROM catalog_items c JOIN tenants t ON t.id = c.tenant_id WHERE t.slug = %s",
            (slug,),
        ).fetchall()
    return {r[0] for r in rows}


def add_item(stack: RunningStack, slug: str, sku: str) -> None:
    with admin(stack) as db:
        db.execute(
            "INSERT INTO catalog_items (id, tenant_id, sku, name, price_cents, currency, description, active)"
            " VALUES (%s, %s, %s, 'by hand', 100, 'USD', '', true)",
            (uuid.uuid4(), tenant_id(stack, slug), sku),
        )


# --- refusals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("mail", "list"),
        ("mail", "clear"),
    ],
)
def test_refuses_with_a_hint_when_the_stack_is_down(args: tuple[str, ...]) -> None:
    state = private_temp_dir()
    try:
        done = harness(state, *args, timeout=60)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == 1, done.stderr
    assert "not up" in done.stderr
    assert "harness up" in done.stderr


# --- mail ---------------------------------------------------------------------------------------------------


def test_mail_list_show_links_and_clear(stack: RunningStack) -> None:
    env = stack.env("backend")
    ses = stack.client("sesv2")
    to = f"dev-{uuid.uuid4().hex[:8]}@example.test"
    link = "http://localhost:3000/invites/accept?token=abc123"
    sent = ses.send_email(
        FromEmailAddress=env["SES_SENDER"],
        Destination={"ToAddresses": [to]},
        Content={
            "Simple": {
                "Subject": {"Data": "You're invited"},
                "Body": {
                    "Text": {"Data": f"Accept the invite: {link}\n"},
                    "Html": {"Data": f'<p><a href="{link}&amp;x=1">Accept</a></p>'},
                },
            }
        },
    )
    message_id = sent["MessageId"]

    listed = json.loads(ok(stack, "mail", "list", "--to", to, "--json").stdout)
    assert [m["id"] for m in listed] == [message_id]
    entry = listed[0]
    assert entry["to"] == [to] and entry["subject"] == "You're invited" and entry["timestamp"]
    assert link in entry["links"] and f"{link}&x=1" in entry["links"]

    text = ok(stack, "mail", "show", message_id)
    assert text.stdout.strip() == f"Accept the invite: {link}"
    assert link in text.stderr  # the links, printed to follow
    html = ok(stack, "mail", "show", message_id, "--html")
    assert html.stdout.strip().startswith("<p><a href=")
    raw = ok(stack, "mail", "show", message_id[:12], "--raw")
    assert f"To: {to}" in raw.stdout and "Subject: You're invited" in raw.stdout

    missing = harness(stack, "mail", "show", "no-such-message")
    assert missing.returncode == 1 and "mail list" in missing.stderr

    ok(stack, "mail", "clear")
    assert json.loads(ok(stack, "mail", "list", "--json").stdout) == []
