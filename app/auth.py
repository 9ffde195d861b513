"""Cognito JWT verification: signature against the pool's JWKS (cached), expiry, token_use, client, issuer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import anyio
import httpx
import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import ApiError, MfaRequired, ServiceUnavailable, Unauthorized
from app.settings import get_settings

logger = logging.getLogger("app.auth")

ALGORITHMS = ("RS256",)  # Cognito signs with RS256 only; never accept what the token header claims
CLOCK_LEEWAY_SECONDS = 5
JWKS_TTL_SECONDS = 3600
JWKS_MIN_REFRESH_SECONDS = 30  # an unknown `kid` refetches at most this often (no refetch storms)

JwksFetcher = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    sub: str
    token_use: str
    username: str | None
    email: str | None
    groups: tuple[str, ...]
    token: str
    expires_at: float = 0.0  # the token's `exp` (seconds since the epoch)

    @property
    def email_hint(self) -> str | None:
        """An email known without a network call (`email` claim, or a username that is an address)."""
        if self.email:
            return self.email
        return self.username if self.username and "@" in self.username else None


async def fetch_jwks(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document


class JwksCache:
    """Signing keys by `kid`, refreshed after a TTL or when a token names a key not seen yet."""

    def __init__(
        self,
        url: str,
        *,
        fetch: JwksFetcher = fetch_jwks,
        ttl: float = JWKS_TTL_SECONDS,
        min_refresh_interval: float = JWKS_MIN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._ttl = ttl
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> jwt.PyJWK:
        if self._is_fresh() and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys or not self._is_fresh():
                await self._refresh(force=kid not in self._keys)
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("token signed with an unknown key") from None

    def _is_fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._ttl

    async def _refresh(self, *, force: bool) -> None:
        now = self._clock()
        if force and self._fetched_at is not None and now - self._fetched_at < self._min_refresh_interval:
            return
        try:
            document = await self._fetch(self.url)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("JWKS fetch from %s failed: %s", self.url, exc)
            if not self._keys:
                raise ServiceUnavailable(
                    "cannot verify tokens: the identity provider's keys are unreachable"
                ) from exc
            return  # keep serving the keys we have
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if isinstance(entry, dict) and isinstance(entry.get("kid"), str) and entry.get("kty") == "RSA":
                try:
                    keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
                except (jwt.PyJWTError, ValueError, TypeError) as exc:
                    logger.warning("JWKS key %r skipped: %s", entry["kid"], exc)
        self._keys = keys
        self._fetched_at = now


class TokenVerifier:
    """Verifies a Cognito access (or, when allowed, id) token and returns the `Principal`."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        client_id: str,
        accepted_token_uses: frozenset[str] = frozenset({"access"}),
        leeway: float = CLOCK_LEEWAY_SECONDS,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.client_id = client_id
        self.accepted_token_uses = accepted_token_uses
        self.leeway = leeway

    async def verify(self, token: str) -> Principal:
        """Every way a token can be wrong answers 401 (never 500): PyJWT's errors whatever their class, and
        headers or claims of an unexpected type (a non-string `kid`, a `crit` header, a list as `token_use`)."""
        try:
            return await self._verify(token)
        except (ApiError, asyncio.CancelledError):
            raise
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token invalid: {exc}") from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            logger.info("token refused: %s: %s", type(exc).__name__, exc)
            raise Unauthorized("malformed token") from None

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        if header.get("crit") is not None:
            raise Unauthorized("token has critical header parameters this verifier does not understand")
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("token names no signing key")
        key = await self.jwks.key_for(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                leeway=self.leeway,
                # Cognito access tokens carry `client_id`, not `aud`: the client is checked below.
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("token signature invalid") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token issued by another identity provider") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token invalid: {exc}") from None

        token_use = claims["token_use"]
        groups = claims.get("cognito:groups", [])
        texts = [claims.get(name) for name in ("username", "cognito:username", "email")]
        if not isinstance(token_use, str) or not isinstance(claims["sub"], str):
            raise Unauthorized("token claims of the wrong type")
        if not all(value is None or isinstance(value, str) for value in texts):
            raise Unauthorized("token claims of the wrong type")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise Unauthorized("token claim cognito:groups is not a list of names")
        if token_use not in self.accepted_token_uses:
            raise Unauthorized(f"token_use {token_use!r} not accepted here")
        audience = claims.get("client_id") if token_use == "access" else claims.get("aud")
        if audience != self.client_id:
            raise Unauthorized("token issued for another client")
        return Principal(
            sub=str(claims["sub"]),
            token_use=token_use,
            username=claims.get("username") or claims.get("cognito:username"),
            email=claims.get("email"),
            groups=tuple(groups),
            token=token,
            expires_at=float(claims["exp"]),
        )


@lru_cache(maxsize=1)
def get_verifier() -> TokenVerifier:
    settings = get_settings()
    return TokenVerifier(
        JwksCache(settings.jwks_url), issuer=settings.issuer, client_id=settings.cognito_client_id
    )


_bearer = HTTPBearer(auto_error=False, description="A Cognito access token of the app client")


async def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    return await get_verifier().verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


MFA_METHOD = "SOFTWARE_TOKEN_MFA"
MFA_NEGATIVE_TTL_SECONDS = 30  # "not set up yet" is rechecked this often (the user may be enrolling)
MFA_CACHE_MAX_ENTRIES = 10_000

MfaLookup = Callable[[str], Awaitable[list[str]]]


def mfa_required_for(role: str, groups: tuple[str, ...], required_groups: frozenset[str]) -> bool:
    """Whether a caller needs MFA: their tenant role (`owner` → group `Owner`) or a token group is listed."""
    return role.capitalize() in required_groups or not required_groups.isdisjoint(groups)


async def cognito_get_user(access_token: str) -> dict[str, Any]:
    """Cognito's GetUser with the caller's own access token (no IAM needed), off the event loop."""
    from app.aws import cognito_client

    def get_user() -> dict[str, Any]:
        return cognito_client().get_user(AccessToken=access_token)  # type: ignore[no-any-return]

    return await anyio.to_thread.run_sync(get_user)


async def cognito_mfa_methods(access_token: str) -> list[str]:
    """The caller's enabled MFA methods (GetUser's `UserMFASettingList`); errors become API errors."""
    from botocore.exceptions import ClientError

    try:
        user = await cognito_get_user(access_token)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotAuthorizedException":
            raise Unauthorized("token revoked or user signed out") from None
        logger.warning("Cognito GetUser failed: %s", exc)
        raise ServiceUnavailable("cannot check the caller's MFA status with the identity provider") from exc
    except Exception as exc:  # endpoint unreachable: fail closed
        logger.warning("Cognito GetUser failed: %s", exc)
        raise ServiceUnavailable("cannot check the caller's MFA status with the identity provider") from exc
    return [str(m) for m in user.get("UserMFASettingList") or []]


class MfaPolicy:
    """Requires TOTP for the roles/groups Cognito cannot require it for (it has no per-group MFA).

    With the pool's MFA `OPTIONAL`, Cognito challenges every sign-in of a user who has TOTP enabled, so "TOTP
    is enabled" means "this sign-in passed TOTP" — except for tokens minted before the user enrolled, which
    stay valid until they expire. Answers are cached per token: positive ones until the token expires,
    negative ones for `negative_ttl` seconds.
    """

    def __init__(
        self,
        required_groups: frozenset[str],
        *,
        lookup: MfaLookup = cognito_mfa_methods,
        negative_ttl: float = MFA_NEGATIVE_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        max_entries: int = MFA_CACHE_MAX_ENTRIES,
    ) -> None:
        self.required_groups = required_groups
        self._lookup = lookup
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._max_entries = max_entries
        self._cache: dict[bytes, tuple[bool, float]] = {}

    async def check(self, principal: Principal, role: str) -> None:
        """Raise MfaRequired when `role` (or one of the token's groups) needs MFA the caller has not set up."""
        if not self.required_groups or not mfa_required_for(role, principal.groups, self.required_groups):
            return
        if principal.token_use != "access":
            raise MfaRequired(f"the {role} role requires an access token (MFA is checked with it)")
        if not await self._enabled(principal):
            raise MfaRequired(
                f"the {role} role requires TOTP MFA: set up a software token (AssociateSoftwareToken, "
                "VerifySoftwareToken, SetUserMFAPreference) and sign in again"
            )

    async def _enabled(self, principal: Principal) -> bool:
        key = hashlib.sha256(principal.token.encode()).digest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        enabled = MFA_METHOD in await self._lookup(principal.token)
        if len(self._cache) >= self._max_entries:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
        valid_until = principal.expires_at if enabled else now + self._negative_ttl
        self._cache[key] = (enabled, valid_until)
        return enabled


@lru_cache(maxsize=1)
def get_mfa_policy() -> MfaPolicy:
    return MfaPolicy(get_settings().mfa_required_groups)


async def principal_email(principal: Principal) -> str | None:
    """The caller's email: from the token, else from Cognito's GetUser with the caller's own access token."""
    if principal.email_hint:
        return principal.email_hint.lower()
    if principal.token_use != "access":
        return None
    try:
        user = await cognito_get_user(principal.token)
    except Exception as exc:  # a missing email is reported by the caller; the cause is logged here
        logger.warning("Cognito GetUser failed for %s: %s", principal.sub, exc)
        return None
    for attribute in user.get("UserAttributes", []):
        if attribute.get("Name") == "email":
            return str(attribute["Value"]).lower()
    return None
