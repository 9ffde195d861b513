"""RFC 6238 TOTP as Cognito uses it: HMAC-SHA1, 6 digits, 30 s steps, a base32 secret of 32 random bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct

STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 32  # Cognito's SecretCode: 52 base32 characters, unpadded
WINDOW_STEPS = 1  # the current code, and the one before and after it (clock drift)


def new_secret() -> str:
    """A fresh secret as Cognito returns it from AssociateSoftwareToken (base32, no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def code_at(secret: str, step: int) -> str:
    """The code of time step `step` (RFC 4226 HOTP of the step counter)."""
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def step_of(now: float) -> int:
    return int(now // STEP_SECONDS)


def matching_step(secret: str, code: str, now: float, window: int = WINDOW_STEPS) -> int | None:
    """The time step within +-`window` of `now` whose code is `code`, or None."""
    code = code.strip()
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_of(now)
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None
