"""What every part of the Cognito layer shares: AWS's constants, the error it answers with, a challenge
session, a pool and client found by id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.emulator.fidelity import srp
from harness.emulator.fidelity.cognito.moto_types import MotoBackend, MotoClient, MotoPool

Body = dict[str, Any]
"""A Cognito JSON request or response body."""
Clock = Callable[[], float]

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
INVALID_SESSION = "Invalid session for the user."


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


def jwt_claims(token: str) -> Body | None:
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
class Found:
    """A pool and one of its app clients."""

    backend: MotoBackend
    pool: MotoPool
    client: MotoClient
