"""Live reload and `up`'s stale-code check on the real stack, with a copy of the app in a temp dir (the repo's
app/ is never edited): a saved file is served without a command, a file that fails to import shows the
component failing until the next good save, the worker runs new code, and with reload off `up` restarts what
runs stale code and says why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.testing import private_temp_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class Project:
    def __init__(self, root: Path, state: Path) -> None:
        self.root, self.state = root, state
        self._api_url: str | None = None

    def harness(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k not in ("HARNESS_RELOAD", "CI")}
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", "--topology", str(self.root / "topology.toml"),
             "--state-dir", str(self.state), "--ports", "auto", *args],
            cwd=self.root, env=base | (env or {}), capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = self.harness(*args, env=env)
        assert done.returncode == 0, f"harness {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def status(self) -> dict[str, dict[str, Any]]:
        done = self.harness("status", "--json")
        return {row["name"]: row for row in json.loads(done.stdout)}

    @property
    def api_url(self) -> str:
        if self._api_url is None:
            self._api_url = str(json.loads(self.ok("env", "--format", "json").stdout)["API_URL"])
        return self._api_url

    def set_version(self, version: str) -> None:
        main = self.root / "app" / "main.py"
        main.write_text(re.sub(r'version="[^"]*"', f'version="{version}"', main.read_text(), count=1))

    def served_version(self) -> str | None:
        try:
            return str(httpx.get(self.api_url + "/api/v1/openapi.json", timeout=5).json()["info"]["version"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None


def wait_for(what: str, check: Any, timeout: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


@pytest.fixture(scope="module")
def project() -> Iterator[Project]:
    root = private_temp_dir("harness-reload-")
    for name in ("topology.toml", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    for name in ("app", "seed"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    proj = Project(root, root / ".state")
    try:
        up = proj.ok("up", "--reload")
        assert "stack up" in up.stderr
        yield proj
    finally:
        proj.harness("reset", "--yes")
        shutil.rmtree(root, ignore_errors=True)


def test_a_saved_file_is_served_and_a_broken_one_shows_failing_until_fixed(project: Project) -> None:
    status = project.status()
    assert status["backend"]["reload"] is True and status["worker"]["reload"] is True
    assert "reload" not in status["postgres"]
    project.set_version("1.0.1-reloaded")
    seconds = wait_for("the edit served", lambda: project.served_version() == "1.0.1-reloaded")
    print(f"edit → served in {seconds:.2f}s")

    health = project.root / "app" / "api" / "health.py"
    good = health.read_text()
    health.write_text(good + "\nimport no_such_module_for_the_reload_test\n")
    wait_for(
        "status shows the backend failing",
        lambda: "failing" in project.status()["backend"]["detail"],
    )
    row = project.status()["backend"]
    assert row["healthy"] is False and row["state"] == "unhealthy"
    log = (project.state / "logs" / "backend.log").read_text()
    assert "ModuleNotFoundError: No module named 'no_such_module_for_the_reload_test'" in log
    assert "backend exited (code" in log
    health.write_text(good)
    wait_for("the next good save brings it back", lambda: project.status()["backend"]["healthy"])
    assert project.served_version() == "1.0.1-reloaded"


def test_the_worker_runs_the_new_code(project: Project) -> None:
    tasks = project.root / "app" / "workers" / "celery_app.py"
    tasks.write_text(tasks.read_text() + '\nprint("reload-test: worker module v2", flush=True)\n')
    log = project.state / "logs" / "worker.log"

    def ready_with_new_code() -> bool:
        text = log.read_text(errors="replace")
        after = text.rsplit("reload-test: worker module v2", 1)
        return len(after) == 2 and " ready." in after[1]

    seconds = wait_for("the worker ready with the new code", ready_with_new_code)
    print(f"edit → worker ready in {seconds:.2f}s")
    assert project.status()["worker"]["healthy"]


def test_up_with_reload_off_restarts_stale_processes_and_says_why(project: Project) -> None:
    off = project.ok("up", "--no-reload")
    assert "restarting: live reload is now off" in off.stderr
    status = project.status()
    assert status["backend"]["reload"] is False and status["worker"]["reload"] is False
    project.set_version("1.0.2-stale")
    time.sleep(2)
    assert project.served_version() != "1.0.2-stale"  # nothing watches the code now
    stale = project.ok("up")  # remembered: still off
    assert "restarting: the code under app changed since it started" in stale.stderr
    assert project.served_version() == "1.0.2-stale"
    with open(project.root / "pyproject.toml", "a") as fh:
        fh.write("\n# touched by the reload test\n")
    again = project.ok("up")
    assert "restarting: pyproject.toml changed since it started" in again.stderr
    quiet = project.ok("up")
    assert "restarting" not in quiet.stderr
    bad = project.harness("up", env={"HARNESS_RELOAD": "maybe"})
    assert bad.returncode == 1 and "HARNESS_RELOAD" in bad.stderr
