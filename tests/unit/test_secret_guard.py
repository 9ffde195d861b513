"""The pytest plugin's secret guard: no test report shows a secret the session knows, and an Actor's repr in a
traceback shows neither its password nor its tokens (a real pytest run in a subprocess, with the plugin)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import secret_guard

INNER = """
from harness.scenarios.actors import Actor
from harness.scenarios.identity import Tokens
from harness.secret_guard import remember


def test_prints_a_secret():
    remember("Sup3r-Secret-Value-1", "the test's own secret")
    print("the value is Sup3r-Secret-Value-1")


def test_asserts_with_a_secret():
    remember("Assert-Secret-Value-3", "the asserted secret")
    assert "x" == "y", "compared with Assert-Secret-Value-3"


def test_passes_quietly():
    remember("Quiet-Secret-Value-2", "another secret")


def test_fails_with_an_actor():
    # built from parts, so that the source lines pytest quotes do not hold the values
    tokens = Tokens("acc-token-" + "aaaa1111", "id-token-" + "bbbb2222", "refresh-token-" + "cccc3333")
    password = "Pw-Unregistered-" + "77"
    actor = Actor("acme.owner", "o@acme.test", password, "sub-1", None, "acme", "owner", tokens)
    assert actor.role == "admin", actor
"""


@pytest.fixture(scope="module")
def inner_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("guard")
    (root / "test_inner.py").write_text(textwrap.dedent(INNER))
    junit = root / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:randomly", "-p", "no:cacheprovider",
         f"--junitxml={junit}", "-o", "addopts=", str(root / "test_inner.py")],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.stdout + result.stderr, junit


def test_a_test_that_prints_a_known_secret_fails_and_the_value_is_masked(inner_run: tuple[str, Path]) -> None:
    out, junit = inner_run
    assert "FAILED test_inner.py::test_prints_a_secret" in out, out
    assert "harness secret guard: Captured stdout call of this test showed the test's own secret" in out, out
    assert "FAILED test_inner.py::test_asserts_with_a_secret" in out
    assert "PASSED test_inner.py::test_passes_quietly" in out
    for value in ("Sup3r-Secret-Value-1", "Assert-Secret-Value-3"):
        assert value not in out
        assert value not in junit.read_text()


def test_an_actor_in_a_failure_traceback_shows_no_password_or_token(inner_run: tuple[str, Path]) -> None:
    out, junit = inner_run
    assert "FAILED test_inner.py::test_fails_with_an_actor" in out
    assert "acme.owner" in out  # the repr is there, only without credentials
    for value in ("Pw-Unregistered-77", "acc-token-aaaa1111", "id-token-bbbb2222", "refresh-token-cccc3333"):
        assert value not in out, value  # none was registered: the repr alone keeps them out
        assert value not in junit.read_text()


def test_short_values_are_not_secrets_and_redact_masks_longest_first() -> None:
    secret_guard.remember("test", "too short")
    secret_guard.remember("abcdefgh", "inner")
    secret_guard.remember("abcdefgh-ijklmnop", "outer")
    try:
        assert secret_guard.found_in("a test") == []
        assert secret_guard.redact("x abcdefgh-ijklmnop y abcdefgh") == "x *** y ***"
        assert secret_guard.found_in("abcdefgh-ijklmnop") == ["inner", "outer"]
    finally:
        secret_guard.forget_all()
