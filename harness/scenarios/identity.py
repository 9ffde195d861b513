"""Cognito users for scenario actors: created with the admin API, signed in through the confidential app client.

The same calls on both targets (the emulator locally, the deployed pool on AWS). The app client has a secret,
so every sign-in carries `SECRET_HASH = base64(HMAC-SHA256(client_secret, username + client_id))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Any

from harness.errors import ScenarioError

# Satisfies any Cognito password policy the topology can declare (length <= 99, all four character classes).
_ALPHABET = string.ascii_letters + string.digits


def generate_password() -> str:
    """A fresh password per actor: 20 random letters/digits plus the classes a strict policy demands."""
    core = "".join(secrets.choice(_ALPHABET) for _ in range(20))
    return f"Sc-{core}-9a!"


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Tokens:
    access: str
    id: str
    refresh: str | None = None

    def __repr__(self) -> str:  # tokens are bearer credentials: a traceback shows only which ones there are
        return f"Tokens(access=***, id=***, refresh={'***' if self.refresh else None})"


class SignInRefused(ScenarioError):
    """Cognito refused the credentials (wrong password, unknown user, disabled user)."""


class CognitoIdentity:
    """Creates, signs in and deletes users of one pool through one app client."""

    def __init__(self, client: Any, pool_id: str, client_id: str, client_secret: str | None) -> None:
        self.client = client
        self.pool_id = pool_id
        self.client_id = client_id
        self.client_secret = client_secret

    def create_user(self, email: str, password: str, name: str | None = None) -> str:
        """Create a confirmed user with a permanent password; returns its `sub`."""
        attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        if name:
            attributes.append({"Name": "name", "Value": name})
        try:
            created = self.client.admin_create_user(
                UserPoolId=self.pool_id, Username=email, UserAttributes=attributes, MessageAction="SUPPRESS"
            )
            self.client.admin_set_user_password(
                UserPoolId=self.pool_id, Username=email, Password=password, Permanent=True
            )
        except Exception as exc:
            raise ScenarioError(
                f"Cognito: could not create the user {email} in pool {self.pool_id}: {exc}",
                hint="check that the pool exists and the credentials may call cognito-idp:AdminCreateUser",
            ) from exc
        attrs = created["User"].get("Attributes", [])
        sub = next((a["Value"] for a in attrs if a["Name"] == "sub"), None)
        if sub is None:
            raise ScenarioError(f"Cognito returned no `sub` for the new user {email}")
        return str(sub)

    def sign_in(self, email: str, password: str) -> Tokens:
        """USER_PASSWORD_AUTH with SECRET_HASH; `SignInRefused` when the credentials are wrong."""
        parameters = {"USERNAME": email, "PASSWORD": password}
        if self.client_secret:
            parameters["SECRET_HASH"] = secret_hash(email, self.client_id, self.client_secret)
        try:
            response = self.client.initiate_auth(
                ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=parameters
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NotAuthorizedException", "UserNotFoundException", "PasswordResetRequiredException"):
                raise SignInRefused(f"Cognito refused the sign-in of {email}: {code}") from exc
            raise ScenarioError(f"Cognito: sign-in of {email} failed: {exc}") from exc
        result = response.get("AuthenticationResult")
        if not result:
            challenge = response.get("ChallengeName", "an unknown challenge")
            raise ScenarioError(
                f"Cognito answered the sign-in of {email} with {challenge} instead of tokens",
                hint="scenario users get no MFA and a permanent password; is the pool's MFA set to ON?",
            )
        return Tokens(access=result["AccessToken"], id=result["IdToken"], refresh=result.get("RefreshToken"))

    def delete_user(self, email: str) -> None:
        try:
            self.client.admin_delete_user(UserPoolId=self.pool_id, Username=email)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code != "UserNotFoundException":
                raise
