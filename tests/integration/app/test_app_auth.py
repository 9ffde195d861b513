"""Bearer tokens: only unexpired access tokens of the app client, signed by the pool, are accepted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from app_stack_clients import ApiClient, Cognito, TenantUnderTest, User, unique
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.integration


def assert_unauthorized(response: Any, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert reason in body["error"]["message"]


def forged(claims: dict[str, Any], key: Any, kid: str) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def emulator_signing_key(stack: Any) -> Any:
    """The pool's private signing key, from the emulator's test aid (each pool has its own key, as on AWS)."""
    return jwt.PyJWK(stack.cognito_signing_key()).key  # loopback + the stack's control token


@pytest.fixture
def user(make_user: Any) -> User:
    return make_user("auth-")


@pytest.fixture
def other_client(cognito: Cognito) -> Iterator[tuple[str, str]]:
    """A second app client of the same pool: its tokens are genuine, but not for this API."""
    created = cognito.client.create_user_pool_client(
        UserPoolId=cognito.pool_id,
        ClientName=unique("other-client-"),
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    yield created["ClientId"], created["ClientSecret"]
    cognito.client.delete_user_pool_client(UserPoolId=cognito.pool_id, ClientId=created["ClientId"])


def test_access_token_is_accepted(user: User) -> None:
    assert user.api.get("/api/v1/tenants").status_code == 200


def test_no_token(stack: Any) -> None:
    assert_unauthorized(ApiClient(stack.api_url, None).get("/api/v1/tenants"), "missing bearer token")


def test_garbage_token(stack: Any) -> None:
    assert_unauthorized(ApiClient(stack.api_url, "not-a-jwt").get("/api/v1/tenants"), "malformed")


def test_bad_signature(stack: Any, user: User) -> None:
    claims = jwt.decode(user.tokens.access, options={"verify_signature": False})
    kid = jwt.get_unverified_header(user.tokens.access)["kid"]
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = forged(claims, attacker_key, kid)
    assert_unauthorized(ApiClient(stack.api_url, token).get("/api/v1/tenants"), "signature invalid")


def test_tampered_claims(stack: Any, user: User) -> None:
    header, _payload, signature = user.tokens.access.split(".")
    claims = jwt.decode(user.tokens.access, options={"verify_signature": False}) | {"sub": "someone-else"}
    tampered = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    token = f"{header}.{tampered}.{signature}"
    assert_unauthorized(ApiClient(stack.api_url, token).get("/api/v1/tenants"), "signature invalid")


def test_unsigned_token(stack: Any, user: User) -> None:
    claims = jwt.decode(user.tokens.access, options={"verify_signature": False})
    token = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    assert_unauthorized(ApiClient(stack.api_url, token).get("/api/v1/tenants"), "algorithm not accepted")


def test_expired_token(stack: Any, user: User) -> None:
    key = emulator_signing_key(stack)
    claims = jwt.decode(user.tokens.access, options={"verify_signature": False})
    now = int(time.time())
    claims |= {"iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600}
    token = forged(claims, key, jwt.get_unverified_header(user.tokens.access)["kid"])
    assert_unauthorized(ApiClient(stack.api_url, token).get("/api/v1/tenants"), "expired")


def test_id_token_is_not_an_access_token(stack: Any, user: User) -> None:
    assert_unauthorized(ApiClient(stack.api_url, user.tokens.id).get("/api/v1/tenants"), "token_use 'id'")


def test_token_of_another_client(
    stack: Any, cognito: Cognito, user: User, other_client: tuple[str, str]
) -> None:
    client_id, secret = other_client
    tokens = cognito.sign_in(user.email, client_id=client_id, secret=secret)
    assert_unauthorized(ApiClient(stack.api_url, tokens.access).get("/api/v1/tenants"), "another client")


def test_token_of_another_issuer(stack: Any, user: User) -> None:
    key = emulator_signing_key(stack)
    claims = jwt.decode(user.tokens.access, options={"verify_signature": False})
    claims["iss"] = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_other"
    token = forged(claims, key, jwt.get_unverified_header(user.tokens.access)["kid"])
    assert_unauthorized(ApiClient(stack.api_url, token).get("/api/v1/tenants"), "another identity provider")


def test_tenant_routes_need_a_token_too(stack: Any, tenant: TenantUnderTest) -> None:
    response = ApiClient(stack.api_url, None, tenant.slug).get("/api/v1/catalog")
    assert_unauthorized(response, "missing bearer token")
