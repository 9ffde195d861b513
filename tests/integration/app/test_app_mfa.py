"""MFA for privileged roles, enforced by the app (Cognito has no per-group MFA): a second real backend runs
with COGNITO_MFA_REQUIRED_GROUPS=Owner,Admin — production's setting — against the same stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from app_stack_clients import PASSWORD, ApiClient, Cognito, TenantUnderTest, Tokens, User, wait_for

from harness.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
REQUIRED_GROUPS = "Owner,Admin"


@pytest.fixture(scope="module")
def mfa_api_url(backend_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A backend (real uvicorn, real sockets) that requires TOTP for the owner and admin roles."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | backend_env | {"COGNITO_MFA_REQUIRED_GROUPS": REQUIRED_GROUPS, "API_URL": url}
    log = tmp_path_factory.mktemp("mfa-backend") / "uvicorn.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the MFA backend exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=60, what="the MFA backend's health")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def enroll_totp(cognito: Cognito, user: User) -> tuple[str, float]:
    """Associate, verify and prefer a software token with the user's own access token (what a client does)."""
    secret = str(cognito.client.associate_software_token(AccessToken=user.tokens.access)["SecretCode"])
    enrolled_at = time.time()
    verified = cognito.client.verify_software_token(
        AccessToken=user.tokens.access, UserCode=pyotp.TOTP(secret).at(enrolled_at)
    )
    assert verified["Status"] == "SUCCESS"
    cognito.client.set_user_mfa_preference(
        AccessToken=user.tokens.access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    return secret, enrolled_at


def sign_in_with_totp(cognito: Cognito, email: str, secret: str, enrolled_at: float) -> Tokens:
    parameters = {"USERNAME": email, "PASSWORD": PASSWORD, "SECRET_HASH": cognito.secret_hash(email)}
    challenge = cognito.client.initiate_auth(
        ClientId=cognito.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=parameters
    )
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"  # Cognito asks every sign-in once TOTP is on
    result = cognito.client.respond_to_auth_challenge(
        ClientId=cognito.client_id,
        ChallengeName="SOFTWARE_TOKEN_MFA",
        Session=challenge["Session"],
        ChallengeResponses={
            "USERNAME": email,
            # the enrolment used the code of its own step, which Cognito refuses to accept twice
            "SOFTWARE_TOKEN_MFA_CODE": pyotp.TOTP(secret).at(enrolled_at + 30),
            "SECRET_HASH": cognito.secret_hash(email),
        },
    )["AuthenticationResult"]
    return Tokens(access=result["AccessToken"], id=result["IdToken"])


def as_user(url: str, tokens: Tokens, tenant: TenantUnderTest) -> ApiClient:
    return ApiClient(url, tokens.access, tenant=tenant.slug)


def error_code(response: httpx.Response) -> Any:
    return response.json()["error"]["code"]


def test_owner_and_admin_without_totp_are_refused_members_are_not(
    mfa_api_url: str, tenant: TenantUnderTest
) -> None:
    for role in ("owner", "admin"):
        response = as_user(mfa_api_url, tenant.users[role].tokens, tenant).get("/api/v1/tenant")
        assert response.status_code == 403, (role, response.text)
        assert error_code(response) == "mfa_required"
        assert "AssociateSoftwareToken" in response.json()["error"]["message"]  # says how to fix it
    member = as_user(mfa_api_url, tenant.member.tokens, tenant)
    assert member.get("/api/v1/tenant").status_code == 200
    assert member.get("/api/v1/catalog").status_code == 200
    # the same owner is admitted by the stack's own backend, which requires nothing (local topology)
    assert tenant.owner.api.as_tenant(tenant.slug).get("/api/v1/tenant").status_code == 200


def test_owner_with_totp_enabled_is_admitted_after_signing_in_with_it(
    mfa_api_url: str, tenant: TenantUnderTest, cognito: Cognito
) -> None:
    owner = tenant.owner
    refused = as_user(mfa_api_url, owner.tokens, tenant).get("/api/v1/tenant/members")
    assert error_code(refused) == "mfa_required"

    secret, enrolled_at = enroll_totp(cognito, owner)
    tokens = sign_in_with_totp(cognito, owner.email, secret, enrolled_at)
    api = as_user(mfa_api_url, tokens, tenant)
    members = api.get("/api/v1/tenant/members")
    assert members.status_code == 200, members.text
    created = api.post(
        "/api/v1/catalog", json={"sku": "MFA-1", "name": "Guarded", "price_cents": 100, "currency": "USD"}
    )
    assert created.status_code == 201, created.text


def test_a_signed_out_owner_token_is_refused_by_the_mfa_check(
    mfa_api_url: str, tenant: TenantUnderTest, cognito: Cognito
) -> None:
    owner = tenant.owner
    secret, enrolled_at = enroll_totp(cognito, owner)
    tokens = sign_in_with_totp(cognito, owner.email, secret, enrolled_at)
    cognito.client.global_sign_out(AccessToken=tokens.access)
    # the signature still verifies; Cognito's GetUser (the MFA check) knows the token is revoked
    response = as_user(mfa_api_url, tokens, tenant).get("/api/v1/tenant")
    assert response.status_code == 401, response.text
    assert error_code(response) == "unauthorized"
