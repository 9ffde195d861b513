"""`harness seed` and `harness migrate` against the running stack, and their refusal when it is down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from harness.testing import RunningStack, private_temp_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def harness(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "--state-dir", str(state), *args],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def stapler_rows(stack: RunningStack) -> int:
    with psycopg.connect(stack.admin_database_url, autocommit=True) as db:
        row = db.execute(
            "SELECT count(*) FROM catalog_items c JOIN tenants t ON t.id = c.tenant_id"
            " WHERE t.slug = 'initech' AND c.sku = 'STAPLER'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_seed_puts_seeded_data_back_and_migrate_is_a_no_op_at_head(stack: RunningStack) -> None:
    assert stapler_rows(stack) == 1
    with psycopg.connect(stack.admin_database_url, autocommit=True) as db:
        db.execute("DELETE FROM catalog_items WHERE sku = 'STAPLER'")
    assert stapler_rows(stack) == 0
    seeded = harness(stack.runner.state.root, "seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "seed: done in" in seeded.stderr
    assert stapler_rows(stack) == 1
    migrated = harness(stack.runner.state.root, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "migrate: done in" in migrated.stderr


def test_seed_refuses_a_stack_that_is_not_up() -> None:
    state = private_temp_dir()
    try:
        done = harness(state, "seed")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == 1
    assert "the stack is not up" in done.stderr
    assert "harness up" in done.stderr
