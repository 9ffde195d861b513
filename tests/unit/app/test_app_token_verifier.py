"""Token verification against a JWKS, with a key pair made here (no Cognito needed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth import JwksCache, TokenVerifier
from app.errors import ServiceUnavailable, Unauthorized

ISSUER = "https://cognito-idp.me-south-1.amazonaws.com/me-south-1_test"
CLIENT = "client-123"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*pairs: tuple[str, Any]) -> dict[str, Any]:
    keys = []
    for kid, key in pairs:
        entry = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        keys.append(entry | {"kid": kid, "alg": "RS256", "use": "sig"})
    return {"keys": keys}


class FakeJwksEndpoint:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.calls = 0

    async def __call__(self, url: str) -> dict[str, Any]:
        self.calls += 1
        return self.document


def token(key: Any = KEY, kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "user-1",
        "client_id": CLIENT,
        "token_use": "access",
        "username": "ada@example.test",
        "iat": now,
        "exp": now + 3600,
    } | overrides
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid}
    )


def verify(raw: str, endpoint: FakeJwksEndpoint | None = None) -> Any:
    endpoint = endpoint or FakeJwksEndpoint(jwks(("k1", KEY)))
    verifier = TokenVerifier(JwksCache("https://jwks", fetch=endpoint), issuer=ISSUER, client_id=CLIENT)
    return asyncio.run(verifier.verify(raw))


def test_valid_access_token() -> None:
    principal = verify(token())
    assert (principal.sub, principal.token_use, principal.email_hint) == (
        "user-1",
        "access",
        "ada@example.test",
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (token(key=OTHER_KEY), "signature invalid"),
        (token(exp=int(time.time()) - 60), "expired"),
        (token(iss="https://cognito-idp.eu-west-1.amazonaws.com/other"), "another identity provider"),
        (token(client_id="someone-else"), "another client"),
        (token(token_use="id", client_id=None, aud=CLIENT), "token_use 'id'"),
        (token(kid="unknown"), "unknown key"),
        (token(token_use=None), "token invalid"),
        ("not.a.jwt", "malformed"),
    ],
)
def test_rejections(raw: str, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        verify(raw)


def test_hs256_with_the_public_key_is_refused() -> None:
    forged = jwt.encode({"sub": "x"}, "s" * 32, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(Unauthorized, match="algorithm"):
        verify(forged)


def test_keys_are_cached_and_unknown_kids_refetch_at_most_once_per_interval() -> None:
    endpoint = FakeJwksEndpoint(jwks(("k1", KEY)))
    cache = JwksCache("https://jwks", fetch=endpoint, min_refresh_interval=30)
    verifier = TokenVerifier(cache, issuer=ISSUER, client_id=CLIENT)

    async def scenario() -> None:
        for _ in range(5):
            await verifier.verify(token())
        assert endpoint.calls == 1
        for _ in range(3):
            with pytest.raises(Unauthorized):
                await verifier.verify(token(kid="rotated"))
        assert endpoint.calls == 1  # within the interval: no refetch storm

    asyncio.run(scenario())


def test_rotated_key_is_picked_up() -> None:
    now = [0.0]
    endpoint = FakeJwksEndpoint(jwks(("k1", KEY)))
    cache = JwksCache("https://jwks", fetch=endpoint, min_refresh_interval=30, clock=lambda: now[0])
    verifier = TokenVerifier(cache, issuer=ISSUER, client_id=CLIENT)

    async def scenario() -> None:
        await verifier.verify(token())
        endpoint.document = jwks(("k1", KEY), ("k2", OTHER_KEY))
        now[0] = 31.0
        assert (await verifier.verify(token(key=OTHER_KEY, kid="k2"))).sub == "user-1"

    asyncio.run(scenario())


def test_unreachable_jwks_without_cached_keys_is_503() -> None:
    async def down(url: str) -> dict[str, Any]:
        raise ValueError("connection refused")

    verifier = TokenVerifier(JwksCache("https://jwks", fetch=down), issuer=ISSUER, client_id=CLIENT)
    with pytest.raises(ServiceUnavailable):
        asyncio.run(verifier.verify(token()))
