"""`CognitoAuth`: the Cognito operations the fidelity layer answers itself, composed from its parts (lookup,
client checks, sessions, tokens, MFA, sign-in flows, discovery); `handle` is the one entry point."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harness.emulator.fidelity import keys
from harness.emulator.fidelity.cognito.clients import ClientChecks
from harness.emulator.fidelity.cognito.common import SECRET_HASH_OPERATIONS, Body, Clock
from harness.emulator.fidelity.cognito.discovery import Discovery
from harness.emulator.fidelity.cognito.flows import SignIn
from harness.emulator.fidelity.cognito.lookup import Lookup
from harness.emulator.fidelity.cognito.mfa import Mfa
from harness.emulator.fidelity.cognito.moto_types import MotoClient
from harness.emulator.fidelity.cognito.sessions import Sessions
from harness.emulator.fidelity.cognito.tokens import Tokens, validity_seconds
from harness.emulator.fidelity.config import COGNITO_POOL_KEYS, FidelityConfig

Handler = Callable[[Body], Body | None]


class CognitoAuth:
    """Answers the Cognito operations listed in the package docstring from moto's state."""

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
        self.lookup = Lookup(account_id)
        self.clients = ClientChecks(config)
        self.sessions = Sessions(clock)
        self.tokens = Tokens(config, clock, self.lookup, self.clients, public_url)
        self.mfa = Mfa(config, clock, self.required_groups, self.lookup, self.sessions, self.tokens)
        self.sign_in = SignIn(config, clock, self.lookup, self.clients, self.sessions, self.mfa, self.tokens)
        self.discovery = Discovery(account_id, self.tokens)
        self._handlers: dict[str, Handler] = {
            "InitiateAuth": self.sign_in.initiate_auth,
            "AdminInitiateAuth": self.sign_in.admin_initiate_auth,
            "RespondToAuthChallenge": self.sign_in.respond_to_auth_challenge,
            "AdminRespondToAuthChallenge": self.sign_in.admin_respond_to_auth_challenge,
            "AssociateSoftwareToken": self.mfa.associate_software_token,
            "VerifySoftwareToken": self.mfa.verify_software_token,
            "GetTokensFromRefreshToken": self.tokens.get_tokens_from_refresh_token,
            "RevokeToken": self.tokens.revoke_token,
        }

    def on(self, check: str) -> bool:
        return self.config.enabled(check)

    def issuer(self, pool_id: str) -> str:
        return self.tokens.issuer(pool_id)

    @staticmethod
    def validity_seconds(client: MotoClient, token_use: str) -> int:
        """How long a token of `token_use` (access, id, refresh) issued to `client` lives."""
        return validity_seconds(client, token_use)

    def handle(self, action: str, body: Body) -> Body | None:
        """The response to `action`, or None to let moto answer (after the checks passed)."""
        if action in SECRET_HASH_OPERATIONS:
            found = self.lookup.client(body.get("ClientId"))
            self.clients.secret_hash(found.client, str(body.get("Username", "")), body.get("SecretHash"))
            return None
        if "AccessToken" in body and isinstance(body["AccessToken"], str):
            self.tokens.check_access_token_not_revoked(body["AccessToken"])
        handler = self._handlers.get(action)
        if handler is None:
            return None
        with self._lock:
            self.sessions.forget_expired()
            return handler(body)

    def jwks(self, pool_id: str) -> tuple[Body, bool] | None:
        """(the pool's JWKS, whether its key was made just now), or None for an unknown pool."""
        return self.discovery.jwks(pool_id)

    def openid_configuration(self, pool_id: str) -> Body:
        return self.discovery.openid_configuration(pool_id)
