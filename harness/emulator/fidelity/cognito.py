"""Cognito user pools the way AWS behaves where the architecture's security depends on it.

moto keeps the pools, clients, users and groups; `CognitoAuth` takes over the calls moto gets wrong and answers
them itself from moto's objects:

- InitiateAuth / AdminInitiateAuth (USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH, USER_SRP_AUTH,
  REFRESH_TOKEN_AUTH) and RespondToAuthChallenge / AdminRespondToAuthChallenge (PASSWORD_VERIFIER,
  NEW_PASSWORD_REQUIRED, SOFTWARE_TOKEN_MFA, MFA_SETUP), with SECRET_HASH, the client's ExplicitAuthFlows,
  a real SRP-6a verifier, the pool's MfaConfiguration (plus MFA for the configured groups) and sessions that
  expire after the client's AuthSessionValidity and can be used once;
- AssociateSoftwareToken / VerifySoftwareToken with a real base32 secret per user and RFC 6238 codes;
- GetTokensFromRefreshToken with refresh-token rotation and its grace period, and RevokeToken;
- SECRET_HASH on SignUp, ConfirmSignUp, ForgotPassword, ConfirmForgotPassword, ResendConfirmationCode (then moto);
- tokens whose `iss` is `<public url>/<pool id>`, next to the pool's JWKS, and an openid-configuration naming
  that issuer; each pool signs with a key of its own (`keys.py`), which its JWKS serves.

State that must survive a restart lives on moto's own objects (so the emulator's snapshots carry it), as plain
data: `user.harness_totp` / `user.harness_totp_pending`, `pool.harness_refresh` (per refresh token: issued,
rotated, replaced by) and `pool.harness_revoked` (revoked token families). Challenge sessions live in memory:
they expire within minutes anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from harness.emulator.config import STATE_CHANGED_KEY
from harness.emulator.fidelity import keys, srp, totp
from harness.emulator.fidelity.config import (
    COGNITO_AUTH_FLOWS,
    COGNITO_ISSUER,
    COGNITO_MFA,
    COGNITO_POOL_KEYS,
    COGNITO_REFRESH_ROTATION,
    COGNITO_REVOKE,
    COGNITO_SECRET_HASH,
    COGNITO_SRP,
    COGNITO_TOTP,
    FidelityConfig,
)
from harness.emulator.fidelity.wsgi import json_error, json_response, read_body

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
DEFAULT_SESSION_MINUTES = 3  # an app client's AuthSessionValidity when not set
DEFAULT_FLOWS = frozenset({"ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"})
LEGACY_FLOWS = frozenset({"ADMIN_NO_SRP_AUTH", "CUSTOM_AUTH_FLOW_ONLY", "USER_PASSWORD_AUTH"})
FLOW_PERMISSION = {
    "USER_PASSWORD_AUTH": frozenset({"ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"}),
    "USER_SRP_AUTH": frozenset({"ALLOW_USER_SRP_AUTH"}),
    "REFRESH_TOKEN_AUTH": frozenset({"ALLOW_REFRESH_TOKEN_AUTH"}),
    "REFRESH_TOKEN": frozenset({"ALLOW_REFRESH_TOKEN_AUTH"}),
    "ADMIN_USER_PASSWORD_AUTH": frozenset({"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}),
    "ADMIN_NO_SRP_AUTH": frozenset({"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}),
}
PASSWORD_FLOWS = frozenset({"USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"})
REFRESH_FLOWS = frozenset({"REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"})
# Operations that only need SecretHash over `Username` before moto handles them.
SECRET_HASH_OPERATIONS = frozenset(
    {"SignUp", "ConfirmSignUp", "ForgotPassword", "ConfirmForgotPassword", "ResendConfirmationCode"}
)
WRONG_CREDENTIALS = "Incorrect username or password."
UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# (client setting, TokenValidityUnits key, default value, default unit): AWS's defaults
TOKEN_VALIDITY = {
    "access": ("AccessTokenValidity", "AccessToken", 60, "minutes"),
    "id": ("IdTokenValidity", "IdToken", 60, "minutes"),
    "refresh": ("RefreshTokenValidity", "RefreshToken", 30, "days"),
}
INVALID_SESSION = "Invalid session for the user."
_OPENID_PATH = re.compile(r"^/(?P<pool>[\w-]+_[0-9A-Za-z]+)/\.well-known/openid-configuration$")
_JWKS_PATH = re.compile(r"^/(?P<pool>[\w-]+_[0-9A-Za-z]+)/\.well-known/jwks\.json$")


class CognitoError(Exception):
    """An error Cognito answers with (`__type` and `message` of its JSON error body)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def not_authorized(message: str) -> CognitoError:
    return CognitoError("NotAuthorizedException", message)


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    """base64(HMAC-SHA256(client secret, username + client id)), as every Cognito client computes it."""
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The (unverified) claims of a JWT, or None when `token` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


@dataclass(frozen=True)
class Session:
    """One challenge in progress."""

    id: str
    region: str
    pool_id: str
    client_id: str
    username: str | None  # moto's internal username; None for a made-up SRP challenge of an unknown user
    challenge: str
    expires: float
    used: bool = False
    srp_state: srp.SrpChallenge | None = None
    mfa_setup_verified: bool = False


@dataclass(frozen=True)
class _Found:
    """A pool and one of its app clients."""

    backend: Any
    pool: Any
    client: Any


Clock = Callable[[], float]


class CognitoAuth:
    """Answers the Cognito operations listed in the module docstring from moto's state."""

    def __init__(
        self, config: FidelityConfig, account_id: str, public_url: str, clock: Clock = time.time
    ) -> None:
        self.config = config
        self.account_id = account_id
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.required_groups = frozenset(config.mfa_required_groups)
        keys.install(config.enabled(COGNITO_POOL_KEYS))
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "InitiateAuth": self.initiate_auth,
            "AdminInitiateAuth": self.admin_initiate_auth,
            "RespondToAuthChallenge": self.respond_to_auth_challenge,
            "AdminRespondToAuthChallenge": self.admin_respond_to_auth_challenge,
            "AssociateSoftwareToken": self.associate_software_token,
            "VerifySoftwareToken": self.verify_software_token,
            "GetTokensFromRefreshToken": self.get_tokens_from_refresh_token,
            "RevokeToken": self.revoke_token,
        }

    def on(self, check: str) -> bool:
        return self.config.enabled(check)

    def issuer(self, pool_id: str) -> str:
        return f"{self.public_url}/{pool_id}"

    def handle(self, action: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The response to `action`, or None to let moto answer (after the checks passed)."""
        if action in SECRET_HASH_OPERATIONS:
            self._check_operation_secret_hash(body)
            return None
        if "AccessToken" in body and isinstance(body["AccessToken"], str):
            self._check_access_token_not_revoked(body["AccessToken"])
        handler = self._handlers.get(action)
        if handler is None:
            return None
        with self._lock:
            self._forget_expired_sessions()
            return handler(body)

    # -- lookups -----------------------------------------------------------------------------------

    def _backends(self) -> list[tuple[str, Any]]:
        from moto.cognitoidp.models import cognitoidp_backends

        backends: Any = cognitoidp_backends
        regions: dict[str, Any] = dict.get(backends, self.account_id) or {}
        return [(region, backend) for region, backend in dict.items(regions) if region != "global"]

    def _find_client(self, client_id: Any) -> _Found:
        for _, backend in self._backends():
            for pool in backend.user_pools.values():
                client = pool.clients.get(client_id)
                if client is not None:
                    return _Found(backend, pool, client)
        raise CognitoError("ResourceNotFoundException", f"User pool client {client_id} does not exist.")

    def _find_pool(self, pool_id: Any) -> tuple[Any, Any]:
        for _, backend in self._backends():
            pool = backend.user_pools.get(pool_id)
            if pool is not None:
                return backend, pool
        raise CognitoError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")

    def _pool_client(self, pool_id: Any, client_id: Any) -> _Found:
        backend, pool = self._find_pool(pool_id)
        client = pool.clients.get(client_id)
        if client is None:
            raise CognitoError("ResourceNotFoundException", f"User pool client {client_id} does not exist.")
        return _Found(backend, pool, client)

    @staticmethod
    def _user(pool: Any, username: str | None) -> Any:
        if not username:
            return None
        return pool._get_user(username)

    def _unknown_user(self, client: Any) -> CognitoError:
        if client.extended_config.get("PreventUserExistenceErrors") == "ENABLED":
            return not_authorized(WRONG_CREDENTIALS)
        return CognitoError("UserNotFoundException", "User does not exist.")

    # -- SECRET_HASH and auth flows ----------------------------------------------------------------

    def _check_secret_hash(self, client: Any, username: str, provided: Any) -> None:
        if not self.on(COGNITO_SECRET_HASH) or not client.generate_secret:
            return
        if not provided:
            raise not_authorized(
                f"Client {client.id} is configured with secret but SECRET_HASH was not received"
            )
        expected = secret_hash(username, client.id, client.secret)
        if not isinstance(provided, str) or not hmac.compare_digest(expected, provided):
            raise not_authorized(f"Unable to verify secret hash for client {client.id}")

    def _check_client_secret(self, client: Any, provided: Any) -> None:
        """GetTokensFromRefreshToken and RevokeToken take the client secret itself."""
        if not self.on(COGNITO_SECRET_HASH) or not client.generate_secret:
            return
        if not provided:
            raise not_authorized(
                f"Client {client.id} is configured with secret but ClientSecret was not received"
            )
        if not isinstance(provided, str) or not hmac.compare_digest(provided, client.secret):
            raise not_authorized(f"Unable to verify client secret for client {client.id}")

    def _check_operation_secret_hash(self, body: dict[str, Any]) -> None:
        found = self._find_client(body.get("ClientId"))
        self._check_secret_hash(found.client, str(body.get("Username", "")), body.get("SecretHash"))

    def _check_flow_allowed(self, client: Any, flow: str) -> None:
        if not self.on(COGNITO_AUTH_FLOWS) or flow not in FLOW_PERMISSION:
            return
        allowed = set(client.extended_config.get("ExplicitAuthFlows") or DEFAULT_FLOWS)
        if allowed & LEGACY_FLOWS:
            allowed |= {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
        if allowed & FLOW_PERMISSION[flow]:
            return
        if flow == "USER_PASSWORD_AUTH":
            raise CognitoError(
                "InvalidParameterException", "USER_PASSWORD_AUTH flow not enabled for this client"
            )
        raise CognitoError("InvalidParameterException", "Auth flow not enabled for this client")

    # -- InitiateAuth ------------------------------------------------------------------------------

    def initiate_auth(self, body: dict[str, Any]) -> dict[str, Any] | None:
        found = self._find_client(body.get("ClientId"))
        return self._initiate(
            found, str(body.get("AuthFlow", "")), body.get("AuthParameters") or {}, admin=False
        )

    def admin_initiate_auth(self, body: dict[str, Any]) -> dict[str, Any] | None:
        found = self._pool_client(body.get("UserPoolId"), body.get("ClientId"))
        return self._initiate(
            found, str(body.get("AuthFlow", "")), body.get("AuthParameters") or {}, admin=True
        )

    def _initiate(
        self, found: _Found, flow: str, params: dict[str, Any], admin: bool
    ) -> dict[str, Any] | None:
        valid = (
            {"ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH", *REFRESH_FLOWS}
            if admin
            else {"USER_PASSWORD_AUTH", "USER_SRP_AUTH", *REFRESH_FLOWS}
        )
        if flow not in valid:
            return None  # CUSTOM_AUTH, USER_AUTH and invalid flows: moto's answer
        self._check_flow_allowed(found.client, flow)
        if flow in REFRESH_FLOWS:
            return self._refresh_via_initiate_auth(found, params)
        username = params.get("USERNAME")
        if not username:
            raise CognitoError("InvalidParameterException", "Missing required parameter USERNAME")
        self._check_secret_hash(found.client, str(username), params.get("SECRET_HASH"))
        if flow == "USER_SRP_AUTH":
            return self._start_srp(found, str(username), str(params.get("SRP_A", "")))
        user = self._user(found.pool, str(username))
        if user is None:
            raise self._unknown_user(found.client)
        if not user.enabled:
            raise not_authorized("User is disabled.")
        if user.password != params.get("PASSWORD"):
            raise not_authorized(WRONG_CREDENTIALS)
        return self._after_password(found, user)

    def _after_password(self, found: _Found, user: Any) -> dict[str, Any]:
        """What follows a proven password: a NEW_PASSWORD_REQUIRED or MFA challenge, or tokens."""
        from moto.cognitoidp.models import UserStatus

        if user.status == UserStatus.UNCONFIRMED:
            raise CognitoError("UserNotConfirmedException", "User is not confirmed.")
        if user.status == UserStatus.RESET_REQUIRED:
            raise CognitoError("PasswordResetRequiredException", "Password reset required for the user")
        if user.status == UserStatus.FORCE_CHANGE_PASSWORD:
            attributes = {
                a["Name"]: a["Value"] for a in user.attributes if a["Name"] not in ("sub", "email_verified")
            }
            return self._challenge(
                found,
                user,
                "NEW_PASSWORD_REQUIRED",
                {
                    "USER_ID_FOR_SRP": user.username,
                    "requiredAttributes": "[]",
                    "userAttributes": json.dumps(attributes),
                },
            )
        return self._mfa_or_tokens(found, user)

    def _mfa_required(self, pool: Any, user: Any) -> bool:
        if pool.mfa_config == "ON":
            return True
        if pool.mfa_config == "OPTIONAL" and self.required_groups:
            return any(group.group_name in self.required_groups for group in user.groups)
        return False

    def _mfa_or_tokens(self, found: _Found, user: Any) -> dict[str, Any]:
        has_totp = bool(getattr(user, "harness_totp", None)) and user.token_verified
        if not self.on(COGNITO_MFA):
            # moto's rule: only users who chose TOTP are challenged
            if has_totp and user.software_token_mfa_enabled:
                return self._challenge(found, user, "SOFTWARE_TOKEN_MFA", {"USER_ID_FOR_SRP": user.username})
            return self._tokens(found, user.username)
        if found.pool.mfa_config == "OFF":
            return self._tokens(found, user.username)
        if self._mfa_required(found.pool, user):
            if has_totp:
                return self._challenge(found, user, "SOFTWARE_TOKEN_MFA", {"USER_ID_FOR_SRP": user.username})
            return self._challenge(
                found,
                user,
                "MFA_SETUP",
                {"MFAS_CAN_SETUP": json.dumps(["SOFTWARE_TOKEN_MFA"]), "USER_ID_FOR_SRP": user.username},
            )
        if has_totp and user.software_token_mfa_enabled:
            return self._challenge(found, user, "SOFTWARE_TOKEN_MFA", {"USER_ID_FOR_SRP": user.username})
        return self._tokens(found, user.username)

    # -- sessions ----------------------------------------------------------------------------------

    def _session_lifetime(self, client: Any) -> float:
        minutes = client.extended_config.get("AuthSessionValidity") or DEFAULT_SESSION_MINUTES
        return float(minutes) * 60

    def _new_session(self, found: _Found, username: str | None, challenge: str, **extra: Any) -> Session:
        session = Session(
            id=base64.urlsafe_b64encode(secrets.token_bytes(96)).decode().rstrip("="),
            region=found.pool.region,
            pool_id=found.pool.id,
            client_id=found.client.id,
            username=username,
            challenge=challenge,
            expires=self.clock() + self._session_lifetime(found.client),
            **extra,
        )
        self._sessions[session.id] = session
        return session

    def _challenge(self, found: _Found, user: Any, name: str, parameters: dict[str, str]) -> dict[str, Any]:
        session = self._new_session(found, user.username, name)
        return {"ChallengeName": name, "Session": session.id, "ChallengeParameters": parameters}

    def _session(self, session_id: Any, client_id: str) -> Session:
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.client_id != client_id:
            raise not_authorized(INVALID_SESSION)
        if session.used:
            raise not_authorized("Invalid session for the user, session can only be used once.")
        if self.clock() > session.expires:
            raise not_authorized("Invalid session for the user, session is expired.")
        return session

    def _consume(self, session: Session) -> None:
        self._sessions[session.id] = replace(session, used=True)

    def _forget_expired_sessions(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if s.expires < now]:
            del self._sessions[key]

    # -- SRP ---------------------------------------------------------------------------------------

    def _start_srp(self, found: _Found, username: str, srp_a: str) -> dict[str, Any]:
        if not srp_a:
            raise CognitoError("InvalidParameterException", "Missing required parameter SRP_A")
        user = self._user(found.pool, username)
        if user is None and found.client.extended_config.get("PreventUserExistenceErrors") != "ENABLED":
            raise CognitoError("UserNotFoundException", "User does not exist.")
        if user is not None and not user.enabled:
            raise not_authorized("User is disabled.")
        user_id = user.username if user is not None else username
        # an unknown user gets a challenge that no password answers, as with PreventUserExistenceErrors
        password = user.password if user is not None and user.password else secrets.token_hex(32)
        try:
            state = srp.start(found.pool.id, user_id, password, srp_a)
        except srp.SrpError as exc:
            raise CognitoError("InvalidParameterException", f"Invalid SRP_A: {exc}") from exc
        session = Session(
            id=state.secret_block,
            region=found.pool.region,
            pool_id=found.pool.id,
            client_id=found.client.id,
            username=user.username if user is not None else None,
            challenge="PASSWORD_VERIFIER",
            expires=self.clock() + self._session_lifetime(found.client),
            srp_state=state,
        )
        self._sessions[session.id] = session
        return {
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeParameters": {
                **state.challenge_parameters(),
                "USER_ID_FOR_SRP": user_id,
                "USERNAME": user_id,
            },
        }

    # -- RespondToAuthChallenge --------------------------------------------------------------------

    def respond_to_auth_challenge(self, body: dict[str, Any]) -> dict[str, Any] | None:
        found = self._find_client(body.get("ClientId"))
        return self._respond(found, body)

    def admin_respond_to_auth_challenge(self, body: dict[str, Any]) -> dict[str, Any] | None:
        found = self._pool_client(body.get("UserPoolId"), body.get("ClientId"))
        return self._respond(found, body)

    def _respond(self, found: _Found, body: dict[str, Any]) -> dict[str, Any] | None:
        name = str(body.get("ChallengeName", ""))
        responses: dict[str, Any] = body.get("ChallengeResponses") or {}
        session_id = body.get("Session")
        if name == "PASSWORD_VERIFIER":
            session_id = responses.get("PASSWORD_CLAIM_SECRET_BLOCK") or session_id
        if session_id not in self._sessions and session_id in found.backend.sessions:
            return None  # a challenge moto started (CUSTOM_AUTH): moto's to answer
        session = self._session(session_id, found.client.id)
        if session.pool_id != found.pool.id or session.challenge != name:
            raise not_authorized(INVALID_SESSION)
        username = responses.get("USERNAME")
        if not username:
            raise CognitoError("InvalidParameterException", "Missing required parameter USERNAME")
        self._check_secret_hash(found.client, str(username), responses.get("SECRET_HASH"))
        user = self._user(found.pool, str(username))
        if name == "PASSWORD_VERIFIER":
            return self._password_verifier(found, session, user, responses)
        if user is None or user.username != session.username:
            raise not_authorized(INVALID_SESSION)
        if name == "NEW_PASSWORD_REQUIRED":
            return self._new_password(found, session, user, responses)
        if name == "SOFTWARE_TOKEN_MFA":
            self._check_totp(user, str(responses.get("SOFTWARE_TOKEN_MFA_CODE", "")), refusal="challenge")
            self._consume(session)
            return self._tokens(found, user.username)
        if name == "MFA_SETUP":
            if not session.mfa_setup_verified:
                raise not_authorized(INVALID_SESSION)
            self._consume(session)
            user.software_token_mfa_enabled = True
            user.preferred_mfa_setting = "SOFTWARE_TOKEN_MFA"
            return self._tokens(found, user.username)
        raise CognitoError("InvalidParameterException", f"Unsupported challenge {name}")

    def _password_verifier(
        self, found: _Found, session: Session, user: Any, responses: dict[str, Any]
    ) -> dict[str, Any]:
        state = session.srp_state
        assert state is not None
        self._consume(session)
        verified = (
            user is not None
            and session.username == user.username
            and (
                not self.on(COGNITO_SRP)
                or srp.verify(
                    state,
                    found.pool.id,
                    user.username,
                    str(responses.get("TIMESTAMP", "")),
                    str(responses.get("PASSWORD_CLAIM_SIGNATURE", "")),
                )
            )
        )
        if not verified:
            raise not_authorized(WRONG_CREDENTIALS)
        return self._after_password(found, user)

    def _new_password(
        self, found: _Found, session: Session, user: Any, responses: dict[str, Any]
    ) -> dict[str, Any]:
        from moto.cognitoidp.models import UserStatus
        from moto.core.exceptions import JsonRESTError

        new_password = responses.get("NEW_PASSWORD")
        if not new_password:
            raise CognitoError("InvalidParameterException", "Missing required parameter NEW_PASSWORD")
        try:
            found.backend._validate_password(found.pool.id, str(new_password))
        except JsonRESTError as exc:
            raise CognitoError(str(exc.error_type), str(exc.message)) from exc
        self._consume(session)
        user.password = str(new_password)
        user.status = UserStatus.CONFIRMED
        return self._mfa_or_tokens(found, user)

    # -- TOTP --------------------------------------------------------------------------------------

    def _user_for_access_token(self, token: Any) -> tuple[Any, Any]:
        for _, backend in self._backends():
            for pool in backend.user_pools.values():
                entry = pool.access_tokens.get(token)
                if entry is not None:
                    user = pool._get_user(entry[1])
                    if user is not None:
                        return pool, user
        raise not_authorized("Invalid Access Token")

    def _session_user(self, session: Session) -> tuple[_Found, Any]:
        found = self._pool_client(session.pool_id, session.client_id)
        user = self._user(found.pool, session.username)
        if user is None:
            raise not_authorized(INVALID_SESSION)
        return found, user

    def associate_software_token(self, body: dict[str, Any]) -> dict[str, Any]:
        secret = totp.new_secret()
        if body.get("Session"):
            old = self._session_by_id(body["Session"])
            if old.challenge != "MFA_SETUP":
                raise not_authorized(INVALID_SESSION)
            found, user = self._session_user(old)
            user.harness_totp_pending = secret
            self._consume(old)
            new = self._new_session(found, user.username, "MFA_SETUP")
            return {"SecretCode": secret, "Session": new.id}
        if not body.get("AccessToken"):
            raise CognitoError("InvalidParameterException", "Either AccessToken or Session must be given")
        _, user = self._user_for_access_token(body["AccessToken"])
        user.harness_totp_pending = secret
        return {"SecretCode": secret}

    def verify_software_token(self, body: dict[str, Any]) -> dict[str, Any]:
        code = str(body.get("UserCode", ""))
        if body.get("Session"):
            old = self._session_by_id(body["Session"])
            if old.challenge != "MFA_SETUP":
                raise not_authorized(INVALID_SESSION)
            found, user = self._session_user(old)
            self._activate_totp(user, code)
            self._consume(old)
            new = self._new_session(found, user.username, "MFA_SETUP", mfa_setup_verified=True)
            return {"Status": "SUCCESS", "Session": new.id}
        if not body.get("AccessToken"):
            raise CognitoError("InvalidParameterException", "Either AccessToken or Session must be given")
        _, user = self._user_for_access_token(body["AccessToken"])
        self._activate_totp(user, code)
        return {"Status": "SUCCESS"}

    def _session_by_id(self, session_id: Any) -> Session:
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            raise not_authorized(INVALID_SESSION)
        return self._session(session_id, session.client_id)

    def _activate_totp(self, user: Any, code: str) -> None:
        pending = getattr(user, "harness_totp_pending", None)
        if not pending:
            raise CognitoError(
                "SoftwareTokenMFANotFoundException",
                "Software Token MFA has not been associated with the user.",
            )
        step = totp.matching_step(pending, code, self.clock())
        if step is None and not self.on(COGNITO_TOTP):
            step = totp.step_of(self.clock())
        if step is None:
            raise CognitoError(
                "EnableSoftwareTokenMFAException", "Code mismatch and fail enable Software Token MFA"
            )
        user.harness_totp = {"secret": pending, "last_step": step}
        user.harness_totp_pending = None
        user.token_verified = True

    def _check_totp(self, user: Any, code: str, refusal: str) -> None:
        state = getattr(user, "harness_totp", None)
        if not state:
            raise CognitoError(
                "SoftwareTokenMFANotFoundException", "Software Token MFA has not been enabled by the user."
            )
        if not self.on(COGNITO_TOTP):
            return
        step = totp.matching_step(state["secret"], code, self.clock())
        if step is None:
            raise CognitoError("CodeMismatchException", "Invalid code or auth state for the user.")
        if step <= int(state.get("last_step", -1)):
            raise CognitoError("ExpiredCodeException", "Your software token has already been used once.")
        user.harness_totp = {**state, "last_step": step}

    # -- tokens ------------------------------------------------------------------------------------

    @staticmethod
    def _refresh_meta(pool: Any) -> dict[str, dict[str, Any]]:
        meta: dict[str, dict[str, Any]] | None = getattr(pool, "harness_refresh", None)
        if meta is None:
            meta = pool.harness_refresh = {}
        return meta

    @staticmethod
    def _revoked(pool: Any) -> dict[str, float]:
        revoked: dict[str, float] | None = getattr(pool, "harness_revoked", None)
        if revoked is None:
            revoked = pool.harness_revoked = {}
        return revoked

    @staticmethod
    def validity_seconds(client: Any, token_use: str) -> int:
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

    def _jwt(self, found: _Found, username: str, token_use: str, origin_jti: str) -> str:
        pool, client_id = found.pool, found.client.id
        user = pool._get_user(username)
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
        if self.on(COGNITO_ISSUER):
            extra["iss"] = self.issuer(pool.id)
        lifetime = self.validity_seconds(found.client, token_use)
        token, _ = pool.create_jwt(client_id, username, token_use, expires_in=lifetime, extra_data=extra)
        registry = pool.access_tokens if token_use == "access" else pool.id_tokens
        registry[token] = (client_id, username)
        return str(token)

    def _new_refresh_token(
        self, pool: Any, client_id: str, username: str, origin_jti: str | None, issued: float | None = None
    ) -> tuple[str, str]:
        """A refresh token; a rotated one (`origin_jti` given) keeps its family and the family's expiry."""
        token, origin = pool.create_refresh_token(client_id, username)
        if origin_jti is not None:
            origin = origin_jti
            pool.refresh_tokens[token] = (client_id, username, origin)
        meta = {"issued": self.clock() if issued is None else issued, "rotated_at": None, "replaced_by": None}
        self._refresh_meta(pool)[token] = meta
        return str(token), str(origin)

    def _tokens(self, found: _Found, username: str) -> dict[str, Any]:
        refresh, origin = self._new_refresh_token(found.pool, found.client.id, username, None)
        result = self._access_and_id(found, username, origin)
        result["RefreshToken"] = refresh
        return {"ChallengeParameters": {}, "AuthenticationResult": result}

    def _access_and_id(self, found: _Found, username: str, origin: str) -> dict[str, Any]:
        return {
            "AccessToken": self._jwt(found, username, "access", origin),
            "IdToken": self._jwt(found, username, "id", origin),
            "ExpiresIn": self.validity_seconds(found.client, "access"),
            "TokenType": "Bearer",
        }

    # -- refresh tokens ----------------------------------------------------------------------------

    def _rotation(self, client: Any) -> tuple[bool, int]:
        config = client.extended_config.get("RefreshTokenRotation") or {}
        enabled = self.on(COGNITO_REFRESH_ROTATION) and config.get("Feature") == "ENABLED"
        return enabled, int(config.get("RetryGracePeriodSeconds") or 0)

    def _refresh_entry(self, found: _Found, token: Any) -> tuple[str, str, dict[str, Any]]:
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
        if origin in self._revoked(found.pool):
            raise not_authorized("Refresh Token has been revoked")
        user = self._user(found.pool, username)
        if user is None:
            raise not_authorized("User does not exist.")
        if not user.enabled:
            raise not_authorized("User is disabled.")
        meta = self._refresh_meta(found.pool).setdefault(
            token, {"issued": self.clock(), "rotated_at": None, "replaced_by": None}
        )
        if self.clock() > meta["issued"] + self.validity_seconds(found.client, "refresh"):
            raise not_authorized("Refresh Token has expired")
        return str(user.username), str(origin), meta

    def _refresh_via_initiate_auth(self, found: _Found, params: dict[str, Any]) -> dict[str, Any]:
        rotating, _ = self._rotation(found.client)
        if rotating:
            raise CognitoError(
                "InvalidParameterException",
                "REFRESH_TOKEN_AUTH is not supported for app clients with refresh token rotation enabled; "
                "use GetTokensFromRefreshToken",
            )
        username, origin, _ = self._refresh_entry(found, params.get("REFRESH_TOKEN"))
        self._check_secret_hash(found.client, username, params.get("SECRET_HASH"))
        return {
            "ChallengeParameters": {},
            "AuthenticationResult": self._access_and_id(found, username, origin),
        }

    def get_tokens_from_refresh_token(self, body: dict[str, Any]) -> dict[str, Any]:
        found = self._find_client(body.get("ClientId"))
        self._check_client_secret(found.client, body.get("ClientSecret"))
        token = body.get("RefreshToken")
        username, origin, meta = self._refresh_entry(found, token)
        rotating, grace = self._rotation(found.client)
        result = self._access_and_id(found, username, origin)
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
            replacement, _ = self._new_refresh_token(
                found.pool, found.client.id, username, origin, issued=meta["issued"]
            )
            meta["rotated_at"] = now
            meta["replaced_by"] = replacement
        result["RefreshToken"] = replacement
        return {"AuthenticationResult": result}

    # -- revocation --------------------------------------------------------------------------------

    def revoke_token(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if not self.on(COGNITO_REVOKE):
            return None
        found = self._find_client(body.get("ClientId"))
        if found.client.extended_config.get("EnableTokenRevocation") is False:
            raise CognitoError(
                "UnsupportedOperationException", "Token revocation is not enabled for this app client."
            )
        if self.on(COGNITO_SECRET_HASH) and found.client.generate_secret:
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
        self._revoke_family(found.pool, str(origin))
        return {}

    def _revoke_family(self, pool: Any, origin: str) -> None:
        self._revoked(pool)[origin] = self.clock()
        for registry in (pool.access_tokens, pool.id_tokens):
            for token in list(registry):
                claims = jwt_claims(token)
                if claims is not None and claims.get("origin_jti") == origin:
                    del registry[token]

    def _check_access_token_not_revoked(self, token: str) -> None:
        if not self.on(COGNITO_REVOKE):
            return
        claims = jwt_claims(token)
        if not claims or not claims.get("origin_jti"):
            return
        pool_id = str(claims.get("iss", "")).rsplit("/", 1)[-1]
        for _, backend in self._backends():
            pool = backend.user_pools.get(pool_id)
            if pool is not None and claims["origin_jti"] in self._revoked(pool):
                raise not_authorized("Access Token has been revoked")

    # -- discovery ---------------------------------------------------------------------------------

    def jwks(self, pool_id: str) -> tuple[dict[str, Any], bool] | None:
        """(the pool's JWKS, whether its key was made just now), or None for an unknown pool."""
        pool = keys.find_user_pool(self.account_id, pool_id)
        if pool is None:
            return None
        made = getattr(pool, "harness_signing_kid", None) is None
        return keys.public_jwks(pool), made

    def openid_configuration(self, pool_id: str) -> dict[str, Any]:
        issuer = self.issuer(pool_id)
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "response_types_supported": ["code", "token"],
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }


class CognitoCheck:
    """WSGI middleware: Cognito JSON calls go to `CognitoAuth` first; what it does not answer goes to moto."""

    def __init__(self, app: WSGIApplication, auth: CognitoAuth) -> None:
        self.app = app
        self.auth = auth

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith(TARGET_PREFIX):
            return self._operation(target[len(TARGET_PREFIX) :], environ, start_response)
        is_get = str(environ.get("REQUEST_METHOD", "")).upper() == "GET"
        path = str(environ.get("PATH_INFO", ""))
        if is_get and self.auth.on(COGNITO_ISSUER) and (match := _OPENID_PATH.match(path)):
            return _json_document(start_response, self.auth.openid_configuration(match["pool"]))
        if is_get and self.auth.on(COGNITO_POOL_KEYS) and (match := _JWKS_PATH.match(path)):
            found = self.auth.jwks(match["pool"])
            if found is not None:
                document, made = found
                if made:
                    environ[STATE_CHANGED_KEY] = True  # a new key: the next snapshot must carry it
                return _json_document(start_response, document)
        return self.app(environ, start_response)

    def _operation(
        self, action: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            body = json.loads(read_body(environ) or b"{}")
        except ValueError:
            return self.app(environ, start_response)  # moto reports the malformed body
        if not isinstance(body, dict):
            return self.app(environ, start_response)
        try:
            result = self.auth.handle(action, body)
        except CognitoError as exc:
            return json_error(start_response, exc.code, exc.message)
        if result is None:
            return self.app(environ, start_response)
        return json_response(start_response, 200, result)


def _json_document(start_response: StartResponse, document: dict[str, Any]) -> Iterable[bytes]:
    payload = json.dumps(document).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
