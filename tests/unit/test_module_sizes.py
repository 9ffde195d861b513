"""Small rooms: no module under harness/ is longer than 600 lines (split it by reason to change, as
harness/backends/docker/ and harness/topology_deploy.py were; see docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

MAX_LINES = 600
HARNESS = Path(__file__).resolve().parents[2] / "harness"


def test_no_module_under_harness_is_longer_than_600_lines() -> None:
    modules = sorted(HARNESS.rglob("*.py"))
    assert len(modules) > 50, f"expected the harness's modules under {HARNESS}"
    too_long = {
        str(path.relative_to(HARNESS.parent)): n
        for path in modules
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines (split each by reason to change): {too_long}"
