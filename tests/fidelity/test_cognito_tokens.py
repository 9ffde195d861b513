"""Tokens: a local issuer consistent with the served JWKS and the env contract, refresh-token rotation with its
grace period, and RevokeToken."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from fidelity_clients import Emulator, Pool, PoolFactory, error_of

from harness.connections import AwsConnection
from harness.envcontract import cognito_urls


def test_tokens_name_the_local_issuer_whose_jwks_verifies_them(
    make_pool: PoolFactory, emulator: Emulator
) -> None:
    pool = make_pool()
    tokens = pool.sign_in(pool.create_user(groups=("Member",)))["AuthenticationResult"]
    issuer, jwks_url = cognito_urls(
        AwsConnection(endpoint_url=emulator.endpoint, region="me-south-1"), pool.id
    )
    assert issuer == f"{emulator.endpoint}/{pool.id}"
    assert jwks_url == f"{issuer}/.well-known/jwks.json"
    discovery = emulator.get_json(f"/{pool.id}/.well-known/openid-configuration")
    assert (discovery["issuer"], discovery["jwks_uri"]) == (issuer, jwks_url)
    keys = jwt.PyJWKClient(jwks_url)
    access = jwt.decode(
        tokens["AccessToken"],
        keys.get_signing_key_from_jwt(tokens["AccessToken"]).key,
        algorithms=["RS256"],
        issuer=issuer,
    )
    assert (access["token_use"], access["client_id"], access["cognito:groups"]) == (
        "access",
        pool.client_id,
        ["Member"],
    )
    identity = jwt.decode(
        tokens["IdToken"],
        keys.get_signing_key_from_jwt(tokens["IdToken"]).key,
        algorithms=["RS256"],
        issuer=issuer,
        audience=pool.client_id,
    )
    assert identity["token_use"] == "id"
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            tokens["AccessToken"],
            keys.get_signing_key_from_jwt(tokens["AccessToken"]).key,
            algorithms=["RS256"],
            issuer=f"https://cognito-idp.me-south-1.amazonaws.com/{pool.id}",
        )


def test_token_lifetimes_follow_the_app_client(make_pool: PoolFactory) -> None:
    pool = make_pool(
        AccessTokenValidity=5,
        IdTokenValidity=2,
        TokenValidityUnits={"AccessToken": "minutes", "IdToken": "hours"},
    )
    result = pool.sign_in(pool.create_user())["AuthenticationResult"]
    access = jwt.decode(result["AccessToken"], options={"verify_signature": False})
    identity = jwt.decode(result["IdToken"], options={"verify_signature": False})
    assert result["ExpiresIn"] == 300
    assert (access["exp"] - access["iat"], identity["exp"] - identity["iat"]) == (300, 7200)


def refresh(pool: Pool, token: str, secret: str | None = "right") -> dict[str, Any]:
    arguments: dict[str, Any] = {"ClientId": pool.client_id, "RefreshToken": token}
    if secret == "right":
        arguments["ClientSecret"] = pool.client_secret
    elif secret is not None:
        arguments["ClientSecret"] = secret
    return dict(pool.idp.get_tokens_from_refresh_token(**arguments)["AuthenticationResult"])


def test_rotation_issues_a_new_refresh_token_and_keeps_the_old_one_for_the_grace_period(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(rotation=60)
    first = pool.sign_in(pool.create_user())["AuthenticationResult"]["RefreshToken"]
    rotated = refresh(pool, first)
    assert rotated["AccessToken"] and rotated["IdToken"]
    second = rotated["RefreshToken"]
    assert second != first
    retry = refresh(pool, first)  # a client retrying within the grace period gets the same replacement
    assert retry["RefreshToken"] == second
    third = refresh(pool, second)["RefreshToken"]
    assert third not in (first, second)


def test_after_the_grace_period_a_rotated_refresh_token_is_refused(make_pool: PoolFactory) -> None:
    pool = make_pool(rotation=0)  # no grace: the old token dies with its first use
    first = pool.sign_in(pool.create_user())["AuthenticationResult"]["RefreshToken"]
    second = refresh(pool, first)["RefreshToken"]
    with pytest.raises(ClientError) as info:
        refresh(pool, first)
    assert error_of(info)[0] == "RefreshTokenReuseException"
    assert refresh(pool, second)["RefreshToken"]


def test_rotating_clients_refuse_refresh_token_auth(make_pool: PoolFactory) -> None:
    pool = make_pool(rotation=60)
    email = pool.create_user()
    token = pool.sign_in(email)["AuthenticationResult"]["RefreshToken"]
    with pytest.raises(ClientError) as info:
        pool.idp.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={
                "REFRESH_TOKEN": token,
                "SECRET_HASH": pool.secret_hash(pool.internal_username(email)),
            },
        )
    assert error_of(info)[0] == "InvalidParameterException"


def test_without_rotation_a_refresh_returns_no_new_refresh_token(make_pool: PoolFactory) -> None:
    pool = make_pool()
    token = pool.sign_in(pool.create_user())["AuthenticationResult"]["RefreshToken"]
    result = refresh(pool, token)
    assert result["AccessToken"] and "RefreshToken" not in result
    assert refresh(pool, token)["AccessToken"]  # still valid


def test_refresh_needs_the_client_secret(make_pool: PoolFactory) -> None:
    pool = make_pool(rotation=60)
    token = pool.sign_in(pool.create_user())["AuthenticationResult"]["RefreshToken"]
    for secret in (None, "not-the-secret-of-this-client"):
        with pytest.raises(ClientError) as info:
            refresh(pool, token, secret=secret)
        assert error_of(info)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as info:
        refresh(pool, "not-a-refresh-token")
    assert error_of(info) == ("NotAuthorizedException", "Invalid Refresh Token.")


def test_revoke_token_revokes_the_refresh_token_and_its_access_tokens(make_pool: PoolFactory) -> None:
    pool = make_pool(rotation=60)
    email = pool.create_user()
    tokens = pool.sign_in(email)["AuthenticationResult"]
    assert pool.idp.get_user(AccessToken=tokens["AccessToken"])["Username"]
    rotated = refresh(pool, tokens["RefreshToken"])
    with pytest.raises(ClientError) as info:
        pool.idp.revoke_token(
            Token=rotated["RefreshToken"],
            ClientId=pool.client_id,
            ClientSecret="wrong-secret-of-24-characters",
        )
    assert error_of(info)[0] == "UnauthorizedException"
    with pytest.raises(ClientError) as info:
        pool.idp.revoke_token(
            Token=tokens["AccessToken"], ClientId=pool.client_id, ClientSecret=pool.client_secret
        )
    assert error_of(info)[0] == "UnsupportedTokenTypeException"

    pool.idp.revoke_token(
        Token=rotated["RefreshToken"], ClientId=pool.client_id, ClientSecret=pool.client_secret
    )

    for token in (rotated["RefreshToken"], tokens["RefreshToken"]):  # the whole family, grace or not
        with pytest.raises(ClientError) as info:
            refresh(pool, token)
        assert error_of(info) == ("NotAuthorizedException", "Refresh Token has been revoked")
    for access in (tokens["AccessToken"], rotated["AccessToken"]):
        with pytest.raises(ClientError) as info:
            pool.idp.get_user(AccessToken=access)
        assert error_of(info) == ("NotAuthorizedException", "Access Token has been revoked")
    # other sessions of the same user are untouched
    assert pool.idp.get_user(AccessToken=pool.sign_in(email)["AuthenticationResult"]["AccessToken"])


def test_revoke_token_is_refused_when_the_client_disabled_revocation(make_pool: PoolFactory) -> None:
    pool = make_pool(EnableTokenRevocation=False)
    token = pool.sign_in(pool.create_user())["AuthenticationResult"]["RefreshToken"]
    with pytest.raises(ClientError) as info:
        pool.idp.revoke_token(Token=token, ClientId=pool.client_id, ClientSecret=pool.client_secret)
    assert error_of(info)[0] == "UnsupportedOperationException"
