"""The checks are on by default, reported by /_harness/health, and each can be switched off for diagnosis."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from fidelity_clients import MFA_REQUIRED_GROUPS, Emulator, PoolFactory
from werkzeug.test import Client

from harness.emulator.app import build_wsgi_app
from harness.emulator.cli import parse_args
from harness.emulator.config import EmulatorConfig
from harness.emulator.fidelity import CHECKS, build_checks
from harness.emulator.fidelity.config import ENV_OFF, FidelityConfig, UnknownCheckError
from harness.emulator.runtime import EmulatorRuntime

TAMPERED = (
    "/media/tenant-b/report.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=test%2F20260101%2Fme-south-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z"
    "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "0" * 64
)


def test_health_reports_every_check_on_by_default(emulator: Emulator) -> None:
    fidelity = emulator.get_json("/_harness/health")["fidelity"]
    assert set(fidelity["checks"]) == set(CHECKS)
    assert all(check["enabled"] for check in fidelity["checks"].values())
    assert fidelity["disabled"] == []
    assert fidelity["mfa_required_groups"] == list(MFA_REQUIRED_GROUPS)
    assert fidelity["public_url"] == emulator.endpoint


def test_switches_come_from_the_command_line_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_OFF, "cognito-srp")
    config, _ = parse_args(
        ["--fidelity-off", "s3-presigned-url,cognito-totp", "--cognito-mfa-required-groups", "Owner, Admin"]
    )
    assert config.fidelity.disabled == {"cognito-srp", "s3-presigned-url", "cognito-totp"}
    assert config.fidelity.mfa_required_groups == ("Owner", "Admin")
    assert config.fidelity.disabled_by == f"{ENV_OFF} and --fidelity-off"
    assert not config.fidelity.enabled("cognito-srp") and config.fidelity.enabled("cognito-secret-hash")
    assert FidelityConfig.from_env({ENV_OFF: "all"}).disabled == set(CHECKS)
    with pytest.raises(UnknownCheckError, match="cognito-nope"):
        FidelityConfig.from_env({ENV_OFF: "cognito-nope"})
    monkeypatch.delenv(ENV_OFF)
    with pytest.raises(SystemExit):
        parse_args(["--fidelity-off", "nope"])


class FakeMoto:
    """Stands in for moto: answers 200 to everything it is asked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.seen.append(str(environ["PATH_INFO"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"moto"]


def client_for(config: EmulatorConfig) -> tuple[Client, FakeMoto]:
    moto = FakeMoto()
    app = build_wsgi_app(EmulatorRuntime(config), moto, build_checks(config))
    return Client(app), moto


def test_a_switched_off_check_lets_moto_answer() -> None:
    on, moto_on = client_for(EmulatorConfig())
    assert on.get(TAMPERED).status_code == 403
    assert moto_on.seen == []
    off, moto_off = client_for(
        EmulatorConfig(fidelity=FidelityConfig(disabled=frozenset({"s3-presigned-url"})))
    )
    assert off.get(TAMPERED).status_code == 200
    assert moto_off.seen == ["/media/tenant-b/report.txt"]
    assert build_checks(EmulatorConfig(fidelity=FidelityConfig(disabled=frozenset(CHECKS)))) == []


def test_fidelity_state_is_part_of_the_snapshots(emulator: Emulator, make_pool: PoolFactory) -> None:
    """TOTP secrets and rotation state live on moto's objects, so the state file keeps them."""
    import pyotp

    pool = make_pool(mfa="OPTIONAL", rotation=60)
    tokens = pool.sign_in(pool.create_user())["AuthenticationResult"]
    secret = pool.idp.associate_software_token(AccessToken=tokens["AccessToken"])["SecretCode"]
    pool.idp.verify_software_token(AccessToken=tokens["AccessToken"], UserCode=pyotp.TOTP(secret).now())
    pool.idp.get_tokens_from_refresh_token(
        ClientId=pool.client_id, RefreshToken=tokens["RefreshToken"], ClientSecret=pool.client_secret
    )
    request = urllib.request.Request(f"{emulator.endpoint}/_harness/snapshot", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        snapshot = json.loads(response.read())
    assert "cognitoidp" in " ".join(snapshot["backends"])
    assert not any("cognito" in name for name in snapshot["skipped"])
