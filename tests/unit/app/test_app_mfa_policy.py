"""The app's MFA rule for privileged roles (pure logic; the real thing runs in test_app_mfa.py)."""

from __future__ import annotations

import asyncio

import pytest

from app.auth import MfaPolicy, Principal, mfa_required_for
from app.errors import MfaRequired
from app.settings import Settings

REQUIRED = frozenset({"Owner", "Admin"})


def principal(token: str = "tok-1", groups: tuple[str, ...] = (), expires_at: float = 2_000.0) -> Principal:
    return Principal(
        sub="sub-1",
        token_use="access",
        username="u",
        email=None,
        groups=groups,
        token=token,
        expires_at=expires_at,
    )


class FakeCognito:
    def __init__(self, methods: list[str]) -> None:
        self.methods = methods
        self.calls = 0

    async def __call__(self, token: str) -> list[str]:
        self.calls += 1
        return list(self.methods)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("role", "groups", "required"),
    [
        ("owner", (), True),
        ("admin", (), True),
        ("member", (), False),
        ("member", ("Admin",), True),  # a pool-wide Admin acting as a member still needs MFA
        ("member", ("Member",), False),
    ],
)
def test_which_callers_need_mfa(role: str, groups: tuple[str, ...], required: bool) -> None:
    assert mfa_required_for(role, groups, REQUIRED) is required


def test_no_required_groups_never_asks_cognito() -> None:
    lookup = FakeCognito([])
    asyncio.run(MfaPolicy(frozenset(), lookup=lookup).check(principal(), "owner"))
    assert lookup.calls == 0


def test_owner_without_totp_is_refused_with_how_to_fix_it() -> None:
    policy = MfaPolicy(REQUIRED, lookup=FakeCognito(["SMS_MFA"]))  # only TOTP counts
    with pytest.raises(MfaRequired) as refused:
        asyncio.run(policy.check(principal(), "owner"))
    assert refused.value.status_code == 403
    assert refused.value.code == "mfa_required"
    assert "SetUserMFAPreference" in refused.value.message


def test_member_is_not_checked() -> None:
    lookup = FakeCognito([])
    asyncio.run(MfaPolicy(REQUIRED, lookup=lookup).check(principal(), "member"))
    assert lookup.calls == 0


def test_an_id_token_cannot_prove_mfa() -> None:
    id_principal = Principal("s", "id", "u", None, (), "tok", 2_000.0)
    with pytest.raises(MfaRequired, match="access token"):
        asyncio.run(
            MfaPolicy(REQUIRED, lookup=FakeCognito(["SOFTWARE_TOKEN_MFA"])).check(id_principal, "admin")
        )


def test_a_positive_answer_is_cached_until_the_token_expires() -> None:
    clock, lookup = Clock(), FakeCognito(["SOFTWARE_TOKEN_MFA"])
    policy = MfaPolicy(REQUIRED, lookup=lookup, clock=clock)
    caller = principal(expires_at=clock.now + 600)

    async def run() -> None:
        for _ in range(3):
            await policy.check(caller, "owner")
        clock.now += 601
        await policy.check(caller, "owner")

    asyncio.run(run())
    assert lookup.calls == 2  # once, then again after the token's `exp`


def test_a_negative_answer_is_rechecked_after_the_negative_ttl() -> None:
    clock, lookup = Clock(), FakeCognito([])
    policy = MfaPolicy(REQUIRED, lookup=lookup, clock=clock, negative_ttl=30)

    async def attempt() -> bool:
        try:
            await policy.check(principal(), "admin")
        except MfaRequired:
            return False
        return True

    assert asyncio.run(attempt()) is False
    lookup.methods = ["SOFTWARE_TOKEN_MFA"]  # the user enrolls
    assert asyncio.run(attempt()) is False  # still the cached "no" within 30 s
    clock.now += 31
    assert asyncio.run(attempt()) is True
    assert lookup.calls == 2


def test_the_cache_stays_bounded() -> None:
    lookup = FakeCognito(["SOFTWARE_TOKEN_MFA"])
    policy = MfaPolicy(REQUIRED, lookup=lookup, max_entries=5)

    async def run() -> None:
        for n in range(20):
            await policy.check(principal(token=f"tok-{n}", expires_at=10**10), "owner")

    asyncio.run(run())
    assert len(policy._cache) <= 5


@pytest.mark.parametrize(
    ("value", "groups"), [("", set()), ("Owner, Admin", {"Owner", "Admin"}), (",", set())]
)
def test_settings_parse_the_required_groups(
    monkeypatch: pytest.MonkeyPatch, value: str, groups: set[str]
) -> None:
    monkeypatch.setenv("COGNITO_MFA_REQUIRED_GROUPS", value)
    settings = Settings(
        database_url="postgresql://u:p4ssw0rd-long@h/db",
        redis_url="redis://h",
        s3_bucket="b",
        ses_sender="s@x.test",
        cognito_user_pool_id="pool",
        cognito_client_id="client",
        app_secret_key="k" * 40,
    )
    assert settings.mfa_required_groups == groups
