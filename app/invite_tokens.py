"""Invite tokens: HS256 JWTs signed with APP_SECRET_KEY, naming the tenant and the invite."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt

from app.error_types import ApiError  # not app.errors: the worker needs no web stack
from app.settings import get_settings

PURPOSE = "invite"


class InvalidInvite(ApiError):
    status_code = 400
    code = "invalid_invite"


@dataclass(frozen=True)
class InviteClaims:
    tenant_id: uuid.UUID
    invite_id: uuid.UUID


def mint(*, tenant_id: uuid.UUID, invite_id: uuid.UUID, expires_at: datetime) -> str:
    """Deterministic for an invite (no `iat`), so a re-sent email carries the same token."""
    claims = {
        "purpose": PURPOSE,
        "tid": str(tenant_id),
        "iid": str(invite_id),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, get_settings().app_secret_key.get_secret_value(), algorithm="HS256")


def read(token: str) -> InviteClaims:
    try:
        claims = jwt.decode(
            token,
            get_settings().app_secret_key.get_secret_value(),
            algorithms=["HS256"],
            options={"require": ["exp", "tid", "iid", "purpose"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidInvite("the invite has expired") from None
    except jwt.PyJWTError:
        raise InvalidInvite("the invite token is invalid") from None
    if claims["purpose"] != PURPOSE:
        raise InvalidInvite("the invite token is invalid")
    try:
        return InviteClaims(tenant_id=uuid.UUID(claims["tid"]), invite_id=uuid.UUID(claims["iid"]))
    except ValueError:
        raise InvalidInvite("the invite token is invalid") from None
