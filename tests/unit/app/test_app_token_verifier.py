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


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: Any, claims: Any = None, signature: str = "c2ln") -> str:
    """A token of any header and payload shape (not signed: the verifier must refuse it before or at the
    signature)."""
    import json

    def part(value: Any) -> str:
        return _b64(value if isinstance(value, bytes) else json.dumps(value).encode())

    return f"{part(header)}.{part(claims if claims is not None else {'sub': 'x'})}.{signature}"


MALFORMED_HEADERS: list[Any] = [
    {"alg": "RS256", "kid": 1},
    {"alg": "RS256", "kid": ["k1"]},
    {"alg": "RS256", "kid": {"k": 1}},
    {"alg": "RS256", "kid": None},
    {"alg": "RS256", "kid": "k1", "crit": ["exp"]},
    {"alg": "RS256", "kid": "k1", "crit": "b64"},
    {"alg": "RS256", "kid": "k1", "crit": []},
    {"alg": "RS256", "kid": "k1", "b64": False, "crit": ["b64"]},
    {"alg": ["RS256"], "kid": "k1"},
    {"alg": {"x": 1}, "kid": "k1"},
    {"alg": None, "kid": "k1"},
    {"alg": "none", "kid": "k1"},
    {"alg": "HS256", "kid": "k1"},
    {"alg": "RS256", "kid": "k1", "typ": 5},
    {"alg": "RS256", "kid": "k1", "jwk": {"kty": "RSA"}},
    ["RS256", "k1"],
    "RS256",
    12,
    None,
    b"\xff\xfe not json",
    b"",
]
GARBAGE = [
    "",
    ".",
    "..",
    "...",
    "a.b.c",
    "a.b",
    "not a token",
    "eyJ.eyJ.eyJ",
    "\x00",
    "é.é.é",
    _b64(b'{"alg":"RS256","kid":"k1"}') + ".%%%.sig",
    _b64(b'{"alg":"RS256","kid":"k1"}') + "." + _b64(b"[1,2]") + ".sig",
    _b64(b'{"alg":"RS256","kid":"k1"}') + "." + _b64(b"\xff") + ".sig",
    _b64(b'{"alg":"RS256","kid":"k1"}') + ".." + "x" * 10000,
]


@pytest.mark.parametrize("header", MALFORMED_HEADERS, ids=range(len(MALFORMED_HEADERS)))
def test_every_header_shape_is_a_401(header: Any) -> None:
    with pytest.raises(Unauthorized):
        verify(_forged(header))


@pytest.mark.parametrize("raw", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_a_401(raw: str) -> None:
    with pytest.raises(Unauthorized):
        verify(raw)


def test_a_crit_header_is_refused_even_when_signed() -> None:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "u",
        "client_id": CLIENT,
        "token_use": "access",
        "iat": now,
        "exp": now + 60,
    }
    raw = jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1", "crit": ["exp"]})
    with pytest.raises(Unauthorized):
        verify(raw)


@pytest.mark.parametrize(
    "overrides",
    [
        {"token_use": ["access"]},
        {"token_use": {"a": 1}},
        {"sub": 5},
        {"sub": ["user-1"]},
        {"cognito:groups": "Owner"},
        {"cognito:groups": [1, 2]},
        {"cognito:groups": {"Owner": True}},
        {"username": ["a"]},
        {"email": {"a": 1}},
        {"exp": "tomorrow"},
        {"exp": 10**400},
        {"iat": [1]},
        {"client_id": ["client-123"]},
    ],
    ids=str,
)
def test_signed_claims_of_the_wrong_type_are_a_401(overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        verify(token(**overrides))
