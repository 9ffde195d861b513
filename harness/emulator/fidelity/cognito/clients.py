"""What an app client requires of a call: its SECRET_HASH or client secret, and its ExplicitAuthFlows."""

from __future__ import annotations

import hmac

from harness.emulator.fidelity.cognito.common import (
    DEFAULT_FLOWS,
    FLOW_PERMISSION,
    LEGACY_FLOWS,
    CognitoError,
    not_authorized,
    secret_hash,
)
from harness.emulator.fidelity.cognito.moto_types import MotoClient
from harness.emulator.fidelity.config import COGNITO_AUTH_FLOWS, COGNITO_SECRET_HASH, FidelityConfig


class ClientChecks:
    def __init__(self, config: FidelityConfig) -> None:
        self.config = config

    def secret_hash(self, client: MotoClient, username: str, provided: object) -> None:
        if not self.config.enabled(COGNITO_SECRET_HASH) or not client.generate_secret:
            return
        if not provided:
            raise not_authorized(
                f"Client {client.id} is configured with secret but SECRET_HASH was not received"
            )
        expected = secret_hash(username, client.id, client.secret)
        if not isinstance(provided, str) or not hmac.compare_digest(expected, provided):
            raise not_authorized(f"Unable to verify secret hash for client {client.id}")

    def client_secret(self, client: MotoClient, provided: object) -> None:
        """GetTokensFromRefreshToken and RevokeToken take the client secret itself."""
        if not self.config.enabled(COGNITO_SECRET_HASH) or not client.generate_secret:
            return
        if not provided:
            raise not_authorized(
                f"Client {client.id} is configured with secret but ClientSecret was not received"
            )
        if not isinstance(provided, str) or not hmac.compare_digest(provided, client.secret):
            raise not_authorized(f"Unable to verify client secret for client {client.id}")

    def flow_allowed(self, client: MotoClient, flow: str) -> None:
        if not self.config.enabled(COGNITO_AUTH_FLOWS) or flow not in FLOW_PERMISSION:
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
