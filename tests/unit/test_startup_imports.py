"""What each start-up path must not import (issue 13): every process of the stack, and every `harness` command,
pays for its imports on each start. Each case imports an entry point in a fresh interpreter and lists which of
the modules it has no use for at start-up came in anyway; the fix is a local import where the module is used."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# entry point -> modules it must start without (and why)
CASES = {
    # the CLI: the scenario engine (psycopg, redis, httpx), urllib, boto3 only where a command uses them
    "harness.cli": ["harness.scenarios.loader", "psycopg", "urllib.request", "http.client", "boto3"],
    # the backend: Celery and the worker's tasks on the first task it queues
    "app.main": ["celery", "kombu", "app.workers.tasks"],
    # the worker: no web stack, boto3 with its first client
    "app.workers.tasks": ["fastapi", "starlette", "boto3"],
    # the seed: no web stack
    "app.seed": ["fastapi", "starlette", "celery"],
}


@pytest.mark.parametrize("entry", sorted(CASES))
def test_a_start_up_path_does_not_import_what_it_has_no_use_for(entry: str) -> None:
    code = textwrap.dedent(
        f"""
        import importlib, json, sys
        importlib.import_module({entry!r})
        print(json.dumps([m for m in {CASES[entry]!r} if m in sys.modules]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], f"importing {entry} also imports these"
