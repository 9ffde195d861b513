"""Each user pool signs with a key of its own, served as its JWKS (moto signs every pool with one key shipped
inside moto, kid "dummy"): checked with PyJWT the way the app verifies tokens."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from fidelity_clients import Emulator, Pool, PoolFactory

from harness.emulator.control_guard import CONTROL_TOKEN_HEADER


def verify(emulator: Emulator, pool: Pool, token: str) -> dict[str, Any]:
    """Verify `token` against `pool`'s JWKS and issuer, as the app does."""
    issuer = f"{emulator.endpoint}/{pool.id}"
    keys = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=False)
    claims: dict[str, Any] = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        issuer=issuer,
        options={"verify_aud": False},
    )
    return claims


def access_token(pool: Pool) -> str:
    return str(pool.sign_in(pool.create_user())["AuthenticationResult"]["AccessToken"])


def test_every_pool_has_its_own_key_and_kid(make_pool: PoolFactory, emulator: Emulator) -> None:
    first, second = make_pool(), make_pool()
    jwks = [emulator.get_json(f"/{pool.id}/.well-known/jwks.json") for pool in (first, second)]
    for document in jwks:
        (key,) = document["keys"]
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        assert key["kid"] != "dummy"
        assert "d" not in key  # public parts only
    assert jwks[0]["keys"][0]["kid"] != jwks[1]["keys"][0]["kid"]
    assert jwks[0]["keys"][0]["n"] != jwks[1]["keys"][0]["n"]
    # stable: asked again, the same key
    assert emulator.get_json(f"/{first.id}/.well-known/jwks.json") == jwks[0]


def test_a_token_verifies_only_against_its_own_pool(make_pool: PoolFactory, emulator: Emulator) -> None:
    own, other = make_pool(), make_pool()
    token = access_token(own)
    header = jwt.get_unverified_header(token)
    assert header["kid"] == emulator.get_json(f"/{own.id}/.well-known/jwks.json")["keys"][0]["kid"]
    assert verify(emulator, own, token)["token_use"] == "access"
    other_keys = jwt.PyJWKClient(f"{emulator.endpoint}/{other.id}/.well-known/jwks.json", cache_keys=False)
    with pytest.raises(jwt.PyJWKClientError):  # no key with this kid in the other pool's JWKS
        other_keys.get_signing_key_from_jwt(token)
    other_key = other_keys.get_jwk_set().keys[0].key
    with pytest.raises(jwt.InvalidSignatureError):  # and its key does not verify it either
        jwt.decode(token, other_key, algorithms=["RS256"], options={"verify_aud": False, "verify_iss": False})


def test_id_tokens_and_refreshed_tokens_use_the_pool_key_too(
    make_pool: PoolFactory, emulator: Emulator
) -> None:
    pool = make_pool(rotation=60)
    email = pool.create_user()
    result = pool.sign_in(email)["AuthenticationResult"]
    assert verify(emulator, pool, result["IdToken"])["token_use"] == "id"
    refreshed = pool.idp.get_tokens_from_refresh_token(
        RefreshToken=result["RefreshToken"],
        ClientId=pool.client_id,
        ClientSecret=pool.client_secret,
    )["AuthenticationResult"]
    assert verify(emulator, pool, refreshed["AccessToken"])["token_use"] == "access"


def test_the_signing_key_test_aid_mints_tokens_the_jwks_accepts(
    make_pool: PoolFactory, emulator: Emulator
) -> None:
    pool = make_pool()
    claims = jwt.decode(access_token(pool), options={"verify_signature": False})
    url = f"{emulator.endpoint}/_harness/cognito/signing-key"
    token = {CONTROL_TOKEN_HEADER: emulator.control_token}
    response = httpx.get(url, params={"pool": pool.id}, headers=token)
    assert response.status_code == 200
    private = response.json()
    forged = jwt.encode(
        claims | {"custom": "chosen"},
        jwt.PyJWK(private).key,
        algorithm="RS256",
        headers={"kid": private["kid"]},
    )
    assert verify(emulator, pool, forged)["custom"] == "chosen"
    missing = httpx.get(url, params={"pool": "me-south-1_nope"}, headers=token)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "method"),
    [("/_harness/cognito/signing-key", "GET"), ("/_harness/state", "GET"), ("/_harness/state", "PUT")],
)
def test_secret_bearing_paths_need_the_stack_token(
    make_pool: PoolFactory, emulator: Emulator, path: str, method: str
) -> None:
    pool = make_pool()
    url = f"{emulator.endpoint}{path}"
    for headers, status, says in (
        ({}, 401, "needs the stack's control token"),
        ({CONTROL_TOKEN_HEADER: "not-the-token"}, 401, "the one given is wrong"),
        ({CONTROL_TOKEN_HEADER: emulator.control_token[:-1]}, 401, "the one given is wrong"),
    ):
        response = httpx.request(method, url, params={"pool": pool.id}, headers=headers, content=b"x")
        assert response.status_code == status, response.text
        assert says in response.json()["error"]
        assert "kty" not in response.text and emulator.control_token not in response.text
    assert httpx.get(f"{emulator.endpoint}/_harness/health").status_code == 200  # health stays open
