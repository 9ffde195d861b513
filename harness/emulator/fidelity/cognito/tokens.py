"""Tokens: access and ID tokens with the pool's issuer, refresh tokens with rotation and its grace period,
revocation of a token family (RevokeToken) and the refusal of a revoked family's access tokens.

Refresh-token metadata (`pool.harness_refresh`) and revoked families (`pool.harness_revoked`) live on moto's
pool objects, so the emulator's snapshots carry them."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from harness.emulator.fidelity.cognito.clients import ClientChecks
from harness.emulator.fidelity.cognito.common import (
    Body,
    Clock,
    CognitoError,
    Found,
    jwt_claims,
    not_authorized,
)
from harness.emulator.fidelity.cognito.lookup import Lookup
from harness.emulator.fidelity.cognito.moto_types import MotoClient, MotoPool, RefreshMeta
from harness.emulator.fidelity.config import (
    COGNITO_ISSUER,
    COGNITO_REFRESH_ROTATION,
    COGNITO_REVOKE,
    COGNITO_SECRET_HASH,
    FidelityConfig,
)

UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# (client setting, TokenValidityUnits key, default value, default unit): AWS's defaults
TOKEN_VALIDITY = {
    "access": ("AccessTokenValidity", "AccessToken", 60, "minutes"),
    "id": ("IdTokenValidity", "IdToken", 60, "minutes"),
    "refresh": ("RefreshTokenValidity", "RefreshToken", 30, "days"),
}


def validity_seconds(client: MotoClient, token_use: str) -> int:
    """How long a token of `token_use` (access, id, refresh) issued to `client` lives."""
    setting, unit_key, default, default_unit = TOKEN_VALIDITY[token_use]
    config = client.extended_config
    value = config.get(setting)
    if value is None:
        return default * UNIT_SECONDS[default_unit]
    unit = (config.get("TokenValidityUnits") or {}).get(unit_key)
    if unit is None:  # AWS's units when TokenValidityUnits leaves one out
        unit = "days" if token_use == "refresh" else "hours"
    return int(value) * UNIT_SECONDS.get(unit, 3600)


def refresh_meta(pool: MotoPool) -> dict[str, RefreshMeta]:
    meta: dict[str, RefreshMeta] | None = getattr(pool, "harness_refresh", None)
    if meta is None:
        meta = pool.harness_refresh = {}
    return meta


def revoked(pool: MotoPool) -> dict[str, float]:
    families: dict[str, float] | None = getattr(pool, "harness_revoked", None)
    if families is None:
        families = pool.harness_revoked = {}
    return families


class Tokens:
    def __init__(
        self, config: FidelityConfig, clock: Clock, lookup: Lookup, clients: ClientChecks, public_url: str
    ) -> None:
        self.config = config
        self.clock = clock
        self.lookup = lookup
        self.clients = clients
        self.public_url = public_url.rstrip("/")

    def issuer(self, pool_id: str) -> str:
        return f"{self.public_url}/{pool_id}"

    # -- issuing -----------------------------------------------------------------------------------

    def jwt(self, found: Found, username: str, token_use: str, origin_jti: str) -> str:
        pool, client_id = found.pool, found.client.id
        user = pool._get_user(username)
        assert user is not None  # tokens are issued to a user just found
        extra: dict[str, Any] = {"origin_jti": origin_jti, "event_id": secrets.token_hex(16)}
        if token_use == "access":
            extra["scope"] = "aws.cognito.signin.user.admin"
        else:
            extra.update(pool.get_user_extra_data_by_client_id(client_id, username))
            for attribute in user.attributes:
                if attribute["Name"].startswith("custom:"):
                    extra[attribute["Name"]] = attribute["Value"]
        if user.groups:
            extra["cognito:groups"] = sorted(group.group_name for group in user.groups)
        if self.config.enabled(COGNITO_ISSUER):
            extra["iss"] = self.issuer(pool.id)
        lifetime = validity_seconds(found.client, token_use)
        token, _ = pool.create_jwt(client_id, username, token_use, expires_in=lifetime, extra_data=extra)
        registry = pool.access_tokens if token_use == "access" else pool.id_tokens
        registry[token] = (client_id, username)
        return str(token)

    def new_refresh_token(
        self,
        pool: MotoPool,
        client_id: str,
        username: str,
        origin_jti: str | None,
        issued: float | None = None,
    ) -> tuple[str, str]:
        """A refresh token; a rotated one (`origin_jti` given) keeps its family and the family's expiry."""
        token, origin = pool.create_refresh_token(client_id, username)
        if origin_jti is not None:
            origin = origin_jti
            pool.refresh_tokens[token] = (client_id, username, origin)
        meta = {"issued": self.clock() if issued is None else issued, "rotated_at": None, "replaced_by": None}
        refresh_meta(pool)[token] = meta
        return str(token), str(origin)

    def issue(self, found: Found, username: str) -> Body:
        """A sign-in's result: access, ID and a new refresh token."""
        refresh, origin = self.new_refresh_token(found.pool, found.client.id, username, None)
        result = self.access_and_id(found, username, origin)
        result["RefreshToken"] = refresh
        return {"ChallengeParameters": {}, "AuthenticationResult": result}

    def access_and_id(self, found: Found, username: str, origin: str) -> Body:
        return {
            "AccessToken": self.jwt(found, username, "access", origin),
            "IdToken": self.jwt(found, username, "id", origin),
            "ExpiresIn": validity_seconds(found.client, "access"),
            "TokenType": "Bearer",
        }

    # -- refresh tokens ----------------------------------------------------------------------------

    def rotation(self, client: MotoClient) -> tuple[bool, int]:
        config = client.extended_config.get("RefreshTokenRotation") or {}
        enabled = self.config.enabled(COGNITO_REFRESH_ROTATION) and config.get("Feature") == "ENABLED"
        return enabled, int(config.get("RetryGracePeriodSeconds") or 0)

    def refresh_entry(self, found: Found, token: object) -> tuple[str, str, RefreshMeta]:
        """(username, origin_jti, metadata) of a usable refresh token of this client."""
        if not token or not isinstance(token, str):
            raise CognitoError("InvalidParameterException", "Missing required parameter REFRESH_TOKEN")
        if token not in found.pool.refresh_tokens:
            raise not_authorized("Invalid Refresh Token.")
        entry = found.pool.refresh_tokens[token]
        if entry is None:
            raise not_authorized("Refresh Token has been revoked")
        client_id, username, origin = entry
        if client_id != found.client.id:
            raise not_authorized("Invalid Refresh Token.")
        if origin in revoked(found.pool):
            raise not_authorized("Refresh Token has been revoked")
        user = self.lookup.user(found.pool, username)
        if user is None:
            raise not_authorized("User does not exist.")
        if not user.enabled:
            raise not_authorized("User is disabled.")
        meta = refresh_meta(found.pool).setdefault(
            token, {"issued": self.clock(), "rotated_at": None, "replaced_by": None}
        )
        if self.clock() > meta["issued"] + validity_seconds(found.client, "refresh"):
            raise not_authorized("Refresh Token has expired")
        return str(user.username), str(origin), meta

    def refresh_via_initiate_auth(self, found: Found, params: Body) -> Body:
        rotating, _ = self.rotation(found.client)
        if rotating:
            raise CognitoError(
                "InvalidParameterException",
                "REFRESH_TOKEN_AUTH is not supported for app clients with refresh token rotation enabled; "
                "use GetTokensFromRefreshToken",
            )
        username, origin, _ = self.refresh_entry(found, params.get("REFRESH_TOKEN"))
        self.clients.secret_hash(found.client, username, params.get("SECRET_HASH"))
        return {
            "ChallengeParameters": {},
            "AuthenticationResult": self.access_and_id(found, username, origin),
        }

    def get_tokens_from_refresh_token(self, body: Body) -> Body:
        found = self.lookup.client(body.get("ClientId"))
        self.clients.client_secret(found.client, body.get("ClientSecret"))
        token = body.get("RefreshToken")
        username, origin, meta = self.refresh_entry(found, token)
        rotating, grace = self.rotation(found.client)
        result = self.access_and_id(found, username, origin)
        if not rotating:
            return {"AuthenticationResult": result}
        now = self.clock()
        if meta["rotated_at"] is not None:
            if now > meta["rotated_at"] + grace:
                raise CognitoError(
                    "RefreshTokenReuseException",
                    "The refresh token has been rotated out and its grace period has ended.",
                )
            replacement = meta["replaced_by"]  # a retry within the grace period gets the same new token
        else:
            replacement, _ = self.new_refresh_token(
                found.pool, found.client.id, username, origin, issued=meta["issued"]
            )
            meta["rotated_at"] = now
            meta["replaced_by"] = replacement
        result["RefreshToken"] = replacement
        return {"AuthenticationResult": result}

    # -- revocation --------------------------------------------------------------------------------

    def revoke_token(self, body: Body) -> Body | None:
        if not self.config.enabled(COGNITO_REVOKE):
            return None
        found = self.lookup.client(body.get("ClientId"))
        if found.client.extended_config.get("EnableTokenRevocation") is False:
            raise CognitoError(
                "UnsupportedOperationException", "Token revocation is not enabled for this app client."
            )
        if self.config.enabled(COGNITO_SECRET_HASH) and found.client.generate_secret:
            provided = body.get("ClientSecret")
            if not isinstance(provided, str) or not hmac.compare_digest(provided, found.client.secret):
                raise CognitoError("UnauthorizedException", "Invalid client secret.")
        token = body.get("Token")
        if not isinstance(token, str) or not token:
            raise CognitoError("InvalidParameterException", "Missing required parameter Token")
        if jwt_claims(token) is not None:
            raise CognitoError("UnsupportedTokenTypeException", "Only refresh tokens can be revoked.")
        entry = found.pool.refresh_tokens.get(token)
        if entry is None:
            return {}  # unknown or already signed out: nothing to revoke (RFC 7009)
        client_id, _, origin = entry
        if client_id != found.client.id:
            raise CognitoError("UnauthorizedException", "The token was not issued to this app client.")
        self.revoke_family(found.pool, str(origin))
        return {}

    def revoke_family(self, pool: MotoPool, origin: str) -> None:
        revoked(pool)[origin] = self.clock()
        for registry in (pool.access_tokens, pool.id_tokens):
            for token in list(registry):
                claims = jwt_claims(token)
                if claims is not None and claims.get("origin_jti") == origin:
                    del registry[token]

    def check_access_token_not_revoked(self, token: str) -> None:
        if not self.config.enabled(COGNITO_REVOKE):
            return
        claims = jwt_claims(token)
        if not claims or not claims.get("origin_jti"):
            return
        pool_id = str(claims.get("iss", "")).rsplit("/", 1)[-1]
        for _, backend in self.lookup.backends():
            pool = backend.user_pools.get(pool_id)
            if pool is not None and claims["origin_jti"] in revoked(pool):
                raise not_authorized("Access Token has been revoked")
