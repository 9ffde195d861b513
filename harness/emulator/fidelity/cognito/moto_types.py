"""The parts of moto's Cognito objects the fidelity layer reads and writes, as `Protocol`s.

moto's classes (`moto.cognitoidp.models.CognitoIdpUserPool`, `CognitoIdpUser`, ...) are untyped; naming here
exactly what is touched keeps the rest of the package typed and shows at a glance which moto internals a moto
upgrade must keep. The `harness_*` attributes are ours: state stored on moto's objects so that the emulator's
snapshots carry it (absent until first written, hence read with `getattr(..., None)`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

TotpState = dict[str, Any]
"""`{"secret": base32, "last_step": int}`: a user's verified TOTP secret and the last time step used."""
RefreshMeta = dict[str, Any]
"""Per refresh token: `{"issued": epoch, "rotated_at": epoch | None, "replaced_by": token | None}`."""


class MotoGroup(Protocol):
    group_name: str


class MotoUser(Protocol):
    username: str  # moto's internal username (the sub when the pool uses aliases)
    password: str | None
    enabled: bool
    status: str  # a moto `UserStatus` (a str enum)
    attributes: list[dict[str, str]]
    groups: Iterable[MotoGroup]
    token_verified: bool
    software_token_mfa_enabled: bool
    preferred_mfa_setting: str
    harness_totp: TotpState | None
    harness_totp_pending: str | None


class MotoClient(Protocol):
    id: str
    secret: str
    generate_secret: bool
    extended_config: dict[str, Any]  # the CreateUserPoolClient request: JSON values


class MotoPool(Protocol):
    id: str
    region: str
    mfa_config: str
    clients: dict[str, MotoClient]
    access_tokens: dict[str, tuple[str, str]]  # token -> (client id, username)
    id_tokens: dict[str, tuple[str, str]]
    refresh_tokens: dict[str, tuple[str, str, str] | None]  # token -> (client id, username, origin jti)
    harness_refresh: dict[str, RefreshMeta]
    harness_revoked: dict[str, float]  # origin jti -> when its family was revoked

    def _get_user(self, username: str) -> MotoUser | None: ...

    def create_jwt(
        self, client_id: str, username: str, token_use: str, *, expires_in: int, extra_data: dict[str, Any]
    ) -> tuple[str, int]: ...

    def create_refresh_token(self, client_id: str, username: str) -> tuple[str, str]: ...

    def get_user_extra_data_by_client_id(self, client_id: str, username: str) -> dict[str, Any]: ...


class MotoBackend(Protocol):
    user_pools: dict[str, MotoPool]
    sessions: dict[str, object]  # challenges moto itself started (CUSTOM_AUTH)

    def _validate_password(self, pool_id: str, password: str) -> None: ...
