"""TOTP (RFC 6238, checked with pyotp) and MfaConfiguration, including MFA for the Owner/Admin groups."""

from __future__ import annotations

import base64
import time
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError
from fidelity_clients import Pool, PoolFactory, error_of

STEP = 30


def code(secret: str, steps_from_now: int = 0, at: float | None = None) -> str:
    return str(pyotp.TOTP(secret).at((at or time.time()) + steps_from_now * STEP))


def enroll_totp(pool: Pool, email: str, at: float | None = None) -> str:
    """Associate + verify a software token with the access token of a signed-in user, and prefer it."""
    access = pool.sign_in(email)["AuthenticationResult"]["AccessToken"]
    secret = str(pool.idp.associate_software_token(AccessToken=access)["SecretCode"])
    verified = pool.idp.verify_software_token(AccessToken=access, UserCode=code(secret, at=at))
    assert verified["Status"] == "SUCCESS"
    pool.idp.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    return secret


def answer_mfa(pool: Pool, email: str, challenge: dict[str, Any], totp_code: str) -> Any:
    return pool.idp.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="SOFTWARE_TOKEN_MFA",
        Session=challenge["Session"],
        ChallengeResponses={
            "USERNAME": email,
            "SOFTWARE_TOKEN_MFA_CODE": totp_code,
            "SECRET_HASH": pool.secret_hash(email),
        },
    )


def test_associate_software_token_returns_a_real_base32_secret(make_pool: PoolFactory) -> None:
    pool = make_pool(mfa="OPTIONAL")
    access = pool.sign_in(pool.create_user())["AuthenticationResult"]["AccessToken"]
    first = pool.idp.associate_software_token(AccessToken=access)["SecretCode"]
    second = pool.idp.associate_software_token(AccessToken=access)["SecretCode"]
    assert first != second  # a fresh secret each time, never one shared by every user
    assert len(base64.b32decode(first + "=" * (-len(first) % 8))) == 32
    assert pyotp.TOTP(first).now().isdigit()


def test_verify_software_token_accepts_only_a_valid_code(make_pool: PoolFactory) -> None:
    pool = make_pool(mfa="OPTIONAL")
    access = pool.sign_in(pool.create_user())["AuthenticationResult"]["AccessToken"]
    secret = pool.idp.associate_software_token(AccessToken=access)["SecretCode"]
    for wrong in ("000000", code(secret, steps_from_now=3), code(pyotp.random_base32())):
        if wrong == code(secret):
            continue
        with pytest.raises(ClientError) as info:
            pool.idp.verify_software_token(AccessToken=access, UserCode=wrong)
        assert error_of(info) == (
            "EnableSoftwareTokenMFAException",
            "Code mismatch and fail enable Software Token MFA",
        )
    assert pool.idp.verify_software_token(AccessToken=access, UserCode=code(secret))["Status"] == "SUCCESS"


def test_the_mfa_challenge_accepts_only_the_current_code_once(make_pool: PoolFactory) -> None:
    pool = make_pool(mfa="OPTIONAL")
    email = pool.create_user()
    enrolled_at = time.time()
    secret = enroll_totp(pool, email, at=enrolled_at)  # consumed the code of that step
    challenge = pool.sign_in(email)
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    for wrong in ("123456", code(secret, steps_from_now=-2), code(secret, steps_from_now=2)):
        with pytest.raises(ClientError) as info:
            answer_mfa(pool, email, challenge, wrong)
        assert error_of(info) == ("CodeMismatchException", "Invalid code or auth state for the user.")
    with pytest.raises(ClientError) as info:  # the code the enrolment used
        answer_mfa(pool, email, challenge, code(secret, at=enrolled_at))
    assert error_of(info) == ("ExpiredCodeException", "Your software token has already been used once.")
    next_code = code(secret, steps_from_now=1, at=enrolled_at)  # within the +-1 step window
    tokens = answer_mfa(pool, email, challenge, next_code)
    assert tokens["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as info:
        answer_mfa(pool, email, challenge, next_code)
    assert error_of(info) == (
        "NotAuthorizedException",
        "Invalid session for the user, session can only be used once.",
    )


def test_mfa_off_never_challenges(make_pool: PoolFactory, idp: Any) -> None:
    pool = make_pool(mfa="OPTIONAL")
    email = pool.create_user()
    enroll_totp(pool, email)
    idp.set_user_pool_mfa_config(UserPoolId=pool.id, MfaConfiguration="OFF")
    assert pool.sign_in(email)["AuthenticationResult"]["AccessToken"]


def test_mfa_optional_challenges_only_users_who_enabled_it(make_pool: PoolFactory) -> None:
    pool = make_pool(mfa="OPTIONAL")
    plain, enrolled = pool.create_user(groups=("Member",)), pool.create_user(groups=("Member",))
    enroll_totp(pool, enrolled)
    assert pool.sign_in(plain)["AuthenticationResult"]["AccessToken"]
    assert pool.sign_in(enrolled)["ChallengeName"] == "SOFTWARE_TOKEN_MFA"


def test_mfa_on_makes_every_user_set_up_totp_first(make_pool: PoolFactory) -> None:
    pool = make_pool(mfa="ON")
    email = pool.create_user()
    challenge = pool.sign_in(email)
    assert challenge["ChallengeName"] == "MFA_SETUP"
    assert challenge["ChallengeParameters"]["MFAS_CAN_SETUP"] == '["SOFTWARE_TOKEN_MFA"]'
    associated = pool.idp.associate_software_token(Session=challenge["Session"])
    secret = associated["SecretCode"]
    with pytest.raises(ClientError) as info:
        pool.idp.verify_software_token(Session=associated["Session"], UserCode="000000")
    assert error_of(info)[0] == "EnableSoftwareTokenMFAException"
    verified = pool.idp.verify_software_token(Session=associated["Session"], UserCode=code(secret))
    assert verified["Status"] == "SUCCESS"
    tokens = pool.idp.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="MFA_SETUP",
        Session=verified["Session"],
        ChallengeResponses={"USERNAME": email, "SECRET_HASH": pool.secret_hash(email)},
    )
    assert tokens["AuthenticationResult"]["AccessToken"]
    # from now on the user is challenged for a code
    again = pool.sign_in(email)
    assert again["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    assert answer_mfa(pool, email, again, code(secret, steps_from_now=1))["AuthenticationResult"]["IdToken"]


@pytest.mark.parametrize("group", ["Owner", "Admin"])
def test_mfa_is_required_for_owner_and_admin_groups(make_pool: PoolFactory, group: str) -> None:
    pool = make_pool(mfa="OPTIONAL")
    privileged = pool.create_user(groups=(group,))
    member = pool.create_user(groups=("Member",))
    assert pool.sign_in(privileged)["ChallengeName"] == "MFA_SETUP"
    assert pool.sign_in(member)["AuthenticationResult"]["AccessToken"]
