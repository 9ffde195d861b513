"""Pure parts of the developer's loop: the live-reload choice, the failing line `status` reads, the
supervisor's preload list, and the combined log follower on real files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness.devloop.logs import follow_file
from harness.devloop.reload import failure_in_log, preload
from harness.errors import HarnessError
from harness.runner import RELOAD_FILE, requested_reload
from harness.state import StateDir


@pytest.mark.parametrize(
    ("flag", "env", "saved", "expected"),
    [
        (None, {}, None, True),  # on by default locally
        (False, {}, None, False),
        (True, {"HARNESS_RELOAD": "0"}, None, True),  # the flag wins
        (None, {"HARNESS_RELOAD": "0"}, True, False),
        (None, {"HARNESS_RELOAD": "1", "CI": "true"}, None, True),
        (None, {"CI": "true"}, True, False),  # CI runs without it
        (None, {}, False, False),  # remembered from the last `up`
    ],
)
def test_requested_reload(
    flag: bool | None, env: dict[str, str], saved: bool | None, expected: bool, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("HARNESS_RELOAD", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    state = StateDir(tmp_path)
    if saved is not None:
        state.write_json(RELOAD_FILE, {"reload": saved})
    assert requested_reload(flag, state) is expected


def test_a_bad_harness_reload_value_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_RELOAD", "maybe")
    with pytest.raises(HarnessError, match="neither 0 nor 1") as caught:
        requested_reload(None, StateDir(tmp_path))
    assert "HARNESS_RELOAD=0" in (caught.value.hint or "")


def test_failure_in_log_reads_the_last_harness_line() -> None:
    failed = (
        "--- harness: starting backend (first start)\nTraceback\n--- harness: backend exited (code 1) — fix\n"
    )
    assert failure_in_log(failed) == "backend exited (code 1) — fix"
    assert failure_in_log(failed + "--- harness: reload: app/x.py changed; restarting backend\n") is None
    assert failure_in_log("no harness lines") is None


def test_preload_imports_third_party_modules_never_the_apps_own(tmp_path: Path) -> None:
    pkg = tmp_path / "myapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text(
        "import json\nfrom email import message\nfrom myapp import other\nfrom . import x\nimport no_such_dep_xyz\n"
    )
    loaded = preload(["python", "-m", "http.server"], [pkg])
    assert "json" in loaded and "email" in loaded and "http.server" in loaded
    assert not any(name.startswith("myapp") for name in loaded)
    assert "no_such_dep_xyz" not in loaded


def test_follow_file_tails_then_follows_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("one\ntwo\nthree\n")
    stop = threading.Event()
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(follow_file(log, 2, stop)), daemon=True)
    reader.start()
    time.sleep(0.5)
    with open(log, "a") as fh:
        fh.write("four\nfi")
    time.sleep(0.5)
    log.write_text("new\n")  # truncated and rewritten (a container's log copy)
    time.sleep(0.6)
    stop.set()
    reader.join(timeout=5)
    assert seen == ["two", "three", "four", "new"]
