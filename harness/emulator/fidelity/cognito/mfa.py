"""MFA: whether a sign-in is challenged (the pool's MfaConfiguration, plus the topology's MFA groups), and
software tokens: AssociateSoftwareToken / VerifySoftwareToken with a real base32 secret per user and RFC 6238
codes, each code usable once.

A user's TOTP state lives on moto's user object (`harness_totp`, `harness_totp_pending`)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from harness.emulator.fidelity import totp
from harness.emulator.fidelity.cognito.common import (
    INVALID_SESSION,
    Body,
    Clock,
    CognitoError,
    Found,
    Session,
    not_authorized,
)
from harness.emulator.fidelity.cognito.lookup import Lookup
from harness.emulator.fidelity.cognito.moto_types import MotoPool, MotoUser
from harness.emulator.fidelity.cognito.sessions import Sessions
from harness.emulator.fidelity.cognito.tokens import Tokens
from harness.emulator.fidelity.config import COGNITO_MFA, COGNITO_TOTP, FidelityConfig


class Mfa:
    def __init__(
        self,
        config: FidelityConfig,
        clock: Clock,
        required_groups: Iterable[str],
        lookup: Lookup,
        sessions: Sessions,
        tokens: Tokens,
    ) -> None:
        self.config = config
        self.clock = clock
        self.required_groups = frozenset(required_groups)
        self.lookup = lookup
        self.sessions = sessions
        self.tokens = tokens

    # -- the challenge after a password ------------------------------------------------------------

    def required(self, pool: MotoPool, user: MotoUser) -> bool:
        if pool.mfa_config == "ON":
            return True
        if pool.mfa_config == "OPTIONAL" and self.required_groups:
            return any(group.group_name in self.required_groups for group in user.groups)
        return False

    def or_tokens(self, found: Found, user: MotoUser) -> Body:
        """An MFA challenge (SOFTWARE_TOKEN_MFA or MFA_SETUP) when one is due, otherwise tokens."""
        has_totp = bool(getattr(user, "harness_totp", None)) and user.token_verified
        challenge = self.sessions.challenge
        if not self.config.enabled(COGNITO_MFA):
            # moto's rule: only users who chose TOTP are challenged
            if has_totp and user.software_token_mfa_enabled:
                return challenge(found, user, "SOFTWARE_TOKEN_MFA", {"USER_ID_FOR_SRP": user.username})
            return self.tokens.issue(found, user.username)
        if found.pool.mfa_config == "OFF":
            return self.tokens.issue(found, user.username)
        if self.required(found.pool, user):
            if has_totp:
                return challenge(found, user, "SOFTWARE_TOKEN_MFA", {"USER_ID_FOR_SRP": user.username})
            return challenge(
                found,
                user,
                "MFA_SETUP",
                {"MFAS_CAN_SETUP": json.dumps(["SOFTWARE_TOKEN_MFA"]), "USER_ID_FOR_SRP": user.username},
            )
        if has_totp and user.software_token_mfa_enabled:
            return challenge(found, user, "SOFTWARE_TOKEN_MFA", {"USER_ID_FOR_SRP": user.username})
        return self.tokens.issue(found, user.username)

    def answer(self, found: Found, session: Session, user: MotoUser, name: str, responses: Body) -> Body:
        """RespondToAuthChallenge for SOFTWARE_TOKEN_MFA and MFA_SETUP."""
        if name == "SOFTWARE_TOKEN_MFA":
            self.check_totp(user, str(responses.get("SOFTWARE_TOKEN_MFA_CODE", "")), refusal="challenge")
            self.sessions.consume(session)
            return self.tokens.issue(found, user.username)
        if not session.mfa_setup_verified:
            raise not_authorized(INVALID_SESSION)
        self.sessions.consume(session)
        user.software_token_mfa_enabled = True
        user.preferred_mfa_setting = "SOFTWARE_TOKEN_MFA"
        return self.tokens.issue(found, user.username)

    # -- software tokens ---------------------------------------------------------------------------

    def _session_user(self, session: Session) -> tuple[Found, MotoUser]:
        found = self.lookup.pool_client(session.pool_id, session.client_id)
        user = self.lookup.user(found.pool, session.username)
        if user is None:
            raise not_authorized(INVALID_SESSION)
        return found, user

    def _setup_session(self, session_id: object) -> tuple[Session, Found, MotoUser]:
        old = self.sessions.by_id(session_id)
        if old.challenge != "MFA_SETUP":
            raise not_authorized(INVALID_SESSION)
        found, user = self._session_user(old)
        return old, found, user

    def associate_software_token(self, body: Body) -> Body:
        secret = totp.new_secret()
        if body.get("Session"):
            old, found, user = self._setup_session(body["Session"])
            user.harness_totp_pending = secret
            self.sessions.consume(old)
            new = self.sessions.new(found, user.username, "MFA_SETUP")
            return {"SecretCode": secret, "Session": new.id}
        if not body.get("AccessToken"):
            raise CognitoError("InvalidParameterException", "Either AccessToken or Session must be given")
        _, user = self.lookup.user_for_access_token(body["AccessToken"])
        user.harness_totp_pending = secret
        return {"SecretCode": secret}

    def verify_software_token(self, body: Body) -> Body:
        code = str(body.get("UserCode", ""))
        if body.get("Session"):
            old, found, user = self._setup_session(body["Session"])
            self.activate_totp(user, code)
            self.sessions.consume(old)
            new = self.sessions.new(found, user.username, "MFA_SETUP", mfa_setup_verified=True)
            return {"Status": "SUCCESS", "Session": new.id}
        if not body.get("AccessToken"):
            raise CognitoError("InvalidParameterException", "Either AccessToken or Session must be given")
        _, user = self.lookup.user_for_access_token(body["AccessToken"])
        self.activate_totp(user, code)
        return {"Status": "SUCCESS"}

    def activate_totp(self, user: MotoUser, code: str) -> None:
        pending = getattr(user, "harness_totp_pending", None)
        if not pending:
            raise CognitoError(
                "SoftwareTokenMFANotFoundException",
                "Software Token MFA has not been associated with the user.",
            )
        step = totp.matching_step(pending, code, self.clock())
        if step is None and not self.config.enabled(COGNITO_TOTP):
            step = totp.step_of(self.clock())
        if step is None:
            raise CognitoError(
                "EnableSoftwareTokenMFAException", "Code mismatch and fail enable Software Token MFA"
            )
        user.harness_totp = {"secret": pending, "last_step": step}
        user.harness_totp_pending = None
        user.token_verified = True

    def check_totp(self, user: MotoUser, code: str, refusal: str) -> None:
        state = getattr(user, "harness_totp", None)
        if not state:
            raise CognitoError(
                "SoftwareTokenMFANotFoundException", "Software Token MFA has not been enabled by the user."
            )
        if not self.config.enabled(COGNITO_TOTP):
            return
        step = totp.matching_step(state["secret"], code, self.clock())
        if step is None:
            raise CognitoError("CodeMismatchException", "Invalid code or auth state for the user.")
        if step <= int(state.get("last_step", -1)):
            raise CognitoError("ExpiredCodeException", "Your software token has already been used once.")
        user.harness_totp = {**state, "last_step": step}
