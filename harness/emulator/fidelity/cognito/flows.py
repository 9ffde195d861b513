"""Signing in: InitiateAuth / AdminInitiateAuth (USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH, USER_SRP_AUTH,
REFRESH_TOKEN_AUTH) and RespondToAuthChallenge / AdminRespondToAuthChallenge (PASSWORD_VERIFIER with a real
SRP-6a verifier, NEW_PASSWORD_REQUIRED, then the MFA challenges of mfa.py)."""

from __future__ import annotations

import json
import secrets

from harness.emulator.fidelity import srp
from harness.emulator.fidelity.cognito.clients import ClientChecks
from harness.emulator.fidelity.cognito.common import (
    INVALID_SESSION,
    REFRESH_FLOWS,
    WRONG_CREDENTIALS,
    Body,
    Clock,
    CognitoError,
    Found,
    Session,
    not_authorized,
)
from harness.emulator.fidelity.cognito.lookup import Lookup
from harness.emulator.fidelity.cognito.mfa import Mfa
from harness.emulator.fidelity.cognito.moto_types import MotoUser
from harness.emulator.fidelity.cognito.sessions import Sessions
from harness.emulator.fidelity.cognito.tokens import Tokens
from harness.emulator.fidelity.config import COGNITO_SRP, FidelityConfig


class SignIn:
    def __init__(
        self,
        config: FidelityConfig,
        clock: Clock,
        lookup: Lookup,
        clients: ClientChecks,
        sessions: Sessions,
        mfa: Mfa,
        tokens: Tokens,
    ) -> None:
        self.config = config
        self.clock = clock
        self.lookup = lookup
        self.clients = clients
        self.sessions = sessions
        self.mfa = mfa
        self.tokens = tokens

    # -- InitiateAuth ------------------------------------------------------------------------------

    def initiate_auth(self, body: Body) -> Body | None:
        found = self.lookup.client(body.get("ClientId"))
        return self._initiate(
            found, str(body.get("AuthFlow", "")), body.get("AuthParameters") or {}, admin=False
        )

    def admin_initiate_auth(self, body: Body) -> Body | None:
        found = self.lookup.pool_client(body.get("UserPoolId"), body.get("ClientId"))
        return self._initiate(
            found, str(body.get("AuthFlow", "")), body.get("AuthParameters") or {}, admin=True
        )

    def _initiate(self, found: Found, flow: str, params: Body, admin: bool) -> Body | None:
        valid = (
            {"ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH", *REFRESH_FLOWS}
            if admin
            else {"USER_PASSWORD_AUTH", "USER_SRP_AUTH", *REFRESH_FLOWS}
        )
        if flow not in valid:
            return None  # CUSTOM_AUTH, USER_AUTH and invalid flows: moto's answer
        self.clients.flow_allowed(found.client, flow)
        if flow in REFRESH_FLOWS:
            return self.tokens.refresh_via_initiate_auth(found, params)
        username = params.get("USERNAME")
        if not username:
            raise CognitoError("InvalidParameterException", "Missing required parameter USERNAME")
        self.clients.secret_hash(found.client, str(username), params.get("SECRET_HASH"))
        if flow == "USER_SRP_AUTH":
            return self._start_srp(found, str(username), str(params.get("SRP_A", "")))
        user = self.lookup.user(found.pool, str(username))
        if user is None:
            raise self.lookup.unknown_user(found.client)
        if not user.enabled:
            raise not_authorized("User is disabled.")
        if user.password != params.get("PASSWORD"):
            raise not_authorized(WRONG_CREDENTIALS)
        return self._after_password(found, user)

    def _after_password(self, found: Found, user: MotoUser) -> Body:
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
            return self.sessions.challenge(
                found,
                user,
                "NEW_PASSWORD_REQUIRED",
                {
                    "USER_ID_FOR_SRP": user.username,
                    "requiredAttributes": "[]",
                    "userAttributes": json.dumps(attributes),
                },
            )
        return self.mfa.or_tokens(found, user)

    # -- SRP ---------------------------------------------------------------------------------------

    def _start_srp(self, found: Found, username: str, srp_a: str) -> Body:
        if not srp_a:
            raise CognitoError("InvalidParameterException", "Missing required parameter SRP_A")
        user = self.lookup.user(found.pool, username)
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
        self.sessions.add(
            Session(
                id=state.secret_block,
                region=found.pool.region,
                pool_id=found.pool.id,
                client_id=found.client.id,
                username=user.username if user is not None else None,
                challenge="PASSWORD_VERIFIER",
                expires=self.clock() + self.sessions.lifetime(found.client),
                srp_state=state,
            )
        )
        return {
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeParameters": {
                **state.challenge_parameters(),
                "USER_ID_FOR_SRP": user_id,
                "USERNAME": user_id,
            },
        }

    # -- RespondToAuthChallenge --------------------------------------------------------------------

    def respond_to_auth_challenge(self, body: Body) -> Body | None:
        found = self.lookup.client(body.get("ClientId"))
        return self._respond(found, body)

    def admin_respond_to_auth_challenge(self, body: Body) -> Body | None:
        found = self.lookup.pool_client(body.get("UserPoolId"), body.get("ClientId"))
        return self._respond(found, body)

    def _respond(self, found: Found, body: Body) -> Body | None:
        name = str(body.get("ChallengeName", ""))
        responses: Body = body.get("ChallengeResponses") or {}
        session_id = body.get("Session")
        if name == "PASSWORD_VERIFIER":
            session_id = responses.get("PASSWORD_CLAIM_SECRET_BLOCK") or session_id
        if session_id not in self.sessions and session_id in found.backend.sessions:
            return None  # a challenge moto started (CUSTOM_AUTH): moto's to answer
        session = self.sessions.get(session_id, found.client.id)
        if session.pool_id != found.pool.id or session.challenge != name:
            raise not_authorized(INVALID_SESSION)
        username = responses.get("USERNAME")
        if not username:
            raise CognitoError("InvalidParameterException", "Missing required parameter USERNAME")
        self.clients.secret_hash(found.client, str(username), responses.get("SECRET_HASH"))
        user = self.lookup.user(found.pool, str(username))
        if name == "PASSWORD_VERIFIER":
            return self._password_verifier(found, session, user, responses)
        if user is None or user.username != session.username:
            raise not_authorized(INVALID_SESSION)
        if name == "NEW_PASSWORD_REQUIRED":
            return self._new_password(found, session, user, responses)
        if name in ("SOFTWARE_TOKEN_MFA", "MFA_SETUP"):
            return self.mfa.answer(found, session, user, name, responses)
        raise CognitoError("InvalidParameterException", f"Unsupported challenge {name}")

    def _password_verifier(
        self, found: Found, session: Session, user: MotoUser | None, responses: Body
    ) -> Body:
        state = session.srp_state
        assert state is not None
        self.sessions.consume(session)
        verified = (
            user is not None
            and session.username == user.username
            and (
                not self.config.enabled(COGNITO_SRP)
                or srp.verify(
                    state,
                    found.pool.id,
                    user.username,
                    str(responses.get("TIMESTAMP", "")),
                    str(responses.get("PASSWORD_CLAIM_SIGNATURE", "")),
                )
            )
        )
        if not verified or user is None:
            raise not_authorized(WRONG_CREDENTIALS)
        return self._after_password(found, user)

    def _new_password(self, found: Found, session: Session, user: MotoUser, responses: Body) -> Body:
        from moto.cognitoidp.models import UserStatus
        from moto.core.exceptions import JsonRESTError

        new_password = responses.get("NEW_PASSWORD")
        if not new_password:
            raise CognitoError("InvalidParameterException", "Missing required parameter NEW_PASSWORD")
        try:
            found.backend._validate_password(found.pool.id, str(new_password))
        except JsonRESTError as exc:
            raise CognitoError(str(exc.error_type), str(exc.message)) from exc
        self.sessions.consume(session)
        user.password = str(new_password)
        user.status = UserStatus.CONFIRMED
        return self.mfa.or_tokens(found, user)
