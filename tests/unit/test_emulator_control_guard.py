"""The emulator's secret-bearing `/_harness/` paths: loopback clients with the stack's token only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from harness.emulator.config import EmulatorConfig
from harness.emulator.control_guard import CONTROL_TOKEN_HEADER, ControlGuardMiddleware, refusal

TOKEN = "the-stack-control-token-0123"
HEADER = "HTTP_" + CONTROL_TOKEN_HEADER.upper().replace("-", "_")


def environ(path: str, remote: str = "127.0.0.1", token: str | None = TOKEN, **extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {"PATH_INFO": path, "REMOTE_ADDR": remote, "REQUEST_METHOD": "GET", **extra}
    if token is not None:
        env[HEADER] = token
    return env


@pytest.mark.parametrize("path", ["/_harness/cognito/signing-key", "/_harness/state", "/_harness/state/"])
@pytest.mark.parametrize(
    ("remote", "control_from", "allowed"),
    [
        ("127.0.0.1", "loopback", True),
        ("127.8.9.10", "loopback", True),
        ("::1", "loopback", True),
        ("::ffff:127.0.0.1", "loopback", True),
        ("10.0.0.5", "loopback", False),
        ("172.17.0.1", "loopback", False),
        ("192.168.1.20", "loopback", False),
        ("203.0.113.7", "loopback", False),
        ("2001:db8::1", "loopback", False),
        ("", "loopback", False),
        ("not-an-address", "loopback", False),
        ("172.17.0.1", "private", True),
        ("10.0.0.5", "private", True),
        ("203.0.113.7", "private", False),
        ("8.8.8.8", "private", False),
    ],
)
def test_only_this_machine_gets_the_secrets(path: str, remote: str, control_from: str, allowed: bool) -> None:
    refused = refusal(environ(path, remote), TOKEN, control_from)
    if allowed:
        assert refused is None
    else:
        assert refused is not None and refused[0] == 403 and "only this machine" in refused[1]["error"]


@pytest.mark.parametrize(
    ("given", "status", "says"),
    [
        (None, 401, "needs the stack's control token"),
        ("", 401, "needs the stack's control token"),
        ("wrong", 401, "the one given is wrong"),
        (TOKEN + "x", 401, "the one given is wrong"),
        (TOKEN.upper(), 401, "the one given is wrong"),
    ],
)
def test_the_token_is_required(given: str | None, status: int, says: str) -> None:
    refused = refusal(environ("/_harness/cognito/signing-key", token=given), TOKEN, "loopback")
    assert refused is not None and refused[0] == status and says in refused[1]["error"]
    assert TOKEN not in str(refused)


def test_an_emulator_without_a_token_serves_no_secret() -> None:
    refused = refusal(environ("/_harness/state", token=""), None, "loopback")
    assert refused is not None and refused[0] == 403 and "without a control token" in refused[1]["error"]


@pytest.mark.parametrize("path", ["/_harness/health", "/_harness/ses/messages", "/", "/some-bucket/key"])
def test_other_paths_pass_untouched(path: str) -> None:
    assert refusal(environ(path, "203.0.113.7", token=None), TOKEN, "loopback") is None


def test_the_middleware_answers_refusals_itself_and_hides_the_token() -> None:
    reached: list[str] = []

    def app(env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        reached.append(env["PATH_INFO"])
        start_response("200 OK", [])
        return [b"key"]

    guard = ControlGuardMiddleware(app, TOKEN)
    statuses: list[str] = []
    body = b"".join(
        guard(environ("/_harness/cognito/signing-key", "10.1.2.3"), lambda s, h: statuses.append(s))
    )
    assert statuses == ["403 Forbidden"] and b"only this machine" in body and reached == []
    assert (
        b"".join(guard(environ("/_harness/cognito/signing-key"), lambda s, h: statuses.append(s))) == b"key"
    )
    assert TOKEN not in repr(guard) and TOKEN not in repr(EmulatorConfig(control_token=TOKEN))
