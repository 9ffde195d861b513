"""A signing key per user pool, as on AWS (check `cognito-pool-keys`).

moto signs every pool's tokens with one RSA key shipped inside moto (kid "dummy") and serves that key as every
pool's JWKS, so a token of one pool verifies against any other pool's keys — and anyone with moto installed
holds the private key. Here each pool gets its own 2048-bit key the first time it signs or its JWKS is asked
for; moto's `create_jwt` is wrapped (not changed) to re-sign what it builds with the pool's key and kid, and the
JWKS route answers with that pool's public key. The key lives on the pool object (`harness_signing_key`,
`harness_signing_kid`), so the emulator's snapshots keep it and tokens stay valid across restarts.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from typing import Any

_lock = threading.Lock()
_state = {"enabled": False, "installed": False}
ALGORITHM = "RS256"


def install(enabled: bool) -> None:
    """Turn per-pool signing on or off for this process (wrapping moto's `create_jwt` once)."""
    with _lock:
        _state["enabled"] = enabled
        if _state["installed"] or not enabled:
            return
        from moto.cognitoidp.models import CognitoIdpUserPool

        original = CognitoIdpUserPool.create_jwt

        def create_jwt(self: Any, *args: Any, **kwargs: Any) -> tuple[str, int]:
            token, expires_in = original(self, *args, **kwargs)
            if not _state["enabled"]:
                return token, expires_in
            return sign(self, _claims_of(token)), expires_in

        CognitoIdpUserPool.create_jwt = create_jwt  # type: ignore[method-assign]
        _state["installed"] = True


def enabled() -> bool:
    return bool(_state["enabled"])


def find_user_pool(account_id: str, pool_id: str) -> Any:
    """moto's user pool with that id in `account_id` (any region), or None."""
    from moto.cognitoidp.models import cognitoidp_backends

    backends: Any = cognitoidp_backends
    for region, backend in dict.items(dict.get(backends, account_id) or {}):
        pool = backend.user_pools.get(pool_id) if region != "global" else None
        if pool is not None:
            return pool
    return None


def signing_key(pool: Any) -> tuple[str, Any]:
    """(kid, joserfc RSAKey) of `pool`, made on first use."""
    kid = getattr(pool, "harness_signing_kid", None)
    key = getattr(pool, "harness_signing_key", None)
    if kid is not None and key is not None:
        return str(kid), key
    with _lock:
        kid = getattr(pool, "harness_signing_kid", None)
        key = getattr(pool, "harness_signing_key", None)
        if kid is None or key is None:
            from joserfc.jwk import RSAKey

            key = RSAKey.generate_key(2048)
            kid = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
            pool.harness_signing_key, pool.harness_signing_kid = key, kid
    return str(kid), key


def sign(pool: Any, claims: dict[str, Any]) -> str:
    from joserfc import jwt

    kid, key = signing_key(pool)
    return str(jwt.encode({"kid": kid, "alg": ALGORITHM}, claims, key))


def public_jwks(pool: Any) -> dict[str, Any]:
    """The pool's JWKS document, shaped like Cognito's (`kid`, `alg`, `kty`, `e`, `n`, `use`)."""
    kid, key = signing_key(pool)
    public = key.as_dict(private=False)
    return {
        "keys": [
            {"alg": ALGORITHM, "e": public["e"], "kid": kid, "kty": "RSA", "n": public["n"], "use": "sig"}
        ]
    }


def private_jwk(pool: Any) -> dict[str, Any]:
    """The pool's private key as a JWK (for tests that must mint tokens with chosen claims; local only)."""
    kid, key = signing_key(pool)
    return {**key.as_dict(private=True), "kid": kid, "alg": ALGORITHM, "use": "sig"}


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims
