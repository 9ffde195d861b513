"""Challenge sessions: issued with each challenge, valid for the client's AuthSessionValidity, used once.

They live in memory only (not in moto's snapshots): they expire within minutes anyway."""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from typing import Any

from harness.emulator.fidelity.cognito.common import (
    DEFAULT_SESSION_MINUTES,
    INVALID_SESSION,
    Body,
    Clock,
    Found,
    Session,
    not_authorized,
)
from harness.emulator.fidelity.cognito.moto_types import MotoClient, MotoUser


class Sessions:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, str) and session_id in self._sessions

    def lifetime(self, client: MotoClient) -> float:
        minutes = client.extended_config.get("AuthSessionValidity") or DEFAULT_SESSION_MINUTES
        return float(minutes) * 60

    def add(self, session: Session) -> Session:
        self._sessions[session.id] = session
        return session

    def new(self, found: Found, username: str | None, challenge: str, **extra: Any) -> Session:
        return self.add(
            Session(
                id=base64.urlsafe_b64encode(secrets.token_bytes(96)).decode().rstrip("="),
                region=found.pool.region,
                pool_id=found.pool.id,
                client_id=found.client.id,
                username=username,
                challenge=challenge,
                expires=self.clock() + self.lifetime(found.client),
                **extra,
            )
        )

    def challenge(self, found: Found, user: MotoUser, name: str, parameters: dict[str, str]) -> Body:
        """A challenge response: its name, a new session for it, its parameters."""
        session = self.new(found, user.username, name)
        return {"ChallengeName": name, "Session": session.id, "ChallengeParameters": parameters}

    def get(self, session_id: object, client_id: str) -> Session:
        """A usable session of this client, or Cognito's refusal (unknown, used, expired)."""
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or session.client_id != client_id:
            raise not_authorized(INVALID_SESSION)
        if session.used:
            raise not_authorized("Invalid session for the user, session can only be used once.")
        if self.clock() > session.expires:
            raise not_authorized("Invalid session for the user, session is expired.")
        return session

    def by_id(self, session_id: object) -> Session:
        """A usable session whatever its client (AssociateSoftwareToken and VerifySoftwareToken name none)."""
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            raise not_authorized(INVALID_SESSION)
        return self.get(session_id, session.client_id)

    def consume(self, session: Session) -> None:
        self._sessions[session.id] = replace(session, used=True)

    def forget_expired(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if s.expires < now]:
            del self._sessions[key]
