"""Cognito user pools the way AWS behaves where the architecture's security depends on it.

moto keeps the pools, clients, users and groups; `CognitoAuth` (auth.py) takes over the calls moto gets wrong and answers
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

The parts, one module each by reason to change: `lookup.py` (pools, clients, users by id), `clients.py` (an app
client's SECRET_HASH, client secret and auth flows), `sessions.py` (challenge sessions), `flows.py` (sign-in:
InitiateAuth, SRP, RespondToAuthChallenge), `mfa.py` (MFA challenges and software tokens), `tokens.py` (issuing,
refresh rotation, revocation), `discovery.py` (JWKS, openid-configuration), `middleware.py` (`CognitoCheck`, the
WSGI side), `auth.py` (`CognitoAuth`, composing them); `moto_types.py` names, as `Protocol`s, exactly the
parts of moto's objects this layer touches.
"""

from __future__ import annotations

from harness.emulator.fidelity.cognito.auth import CognitoAuth
from harness.emulator.fidelity.cognito.common import (
    TARGET_PREFIX,
    CognitoError,
    Found,
    Session,
    jwt_claims,
    not_authorized,
    secret_hash,
)
from harness.emulator.fidelity.cognito.middleware import CognitoCheck

__all__ = [
    "TARGET_PREFIX",
    "CognitoAuth",
    "CognitoCheck",
    "CognitoError",
    "Found",
    "Session",
    "jwt_claims",
    "not_authorized",
    "secret_hash",
]
