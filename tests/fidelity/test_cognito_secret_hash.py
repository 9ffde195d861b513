"""SECRET_HASH: required and verified for an app client with a secret, on every call that names a user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from fidelity_clients import PASSWORD, Pool, PoolFactory, error_of

MISSING = "Client {client} is configured with secret but SECRET_HASH was not received"
WRONG = "Unable to verify secret hash for client {client}"


def assert_refused(call: Callable[[], Any], pool: Pool, message: str) -> None:
    with pytest.raises(ClientError) as info:
        call()
    assert error_of(info) == ("NotAuthorizedException", message.format(client=pool.client_id))


@pytest.fixture
def pool(make_pool: PoolFactory) -> Pool:
    return make_pool(secret=True)


def test_initiate_auth_without_secret_hash_is_refused(pool: Pool) -> None:
    email = pool.create_user()
    assert_refused(
        lambda: pool.idp.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        ),
        pool,
        MISSING,
    )


def test_initiate_auth_with_a_wrong_secret_hash_is_refused(pool: Pool) -> None:
    email = pool.create_user()
    for wrong in (pool.secret_hash("someone-else@example.test"), "bm90IGEgaGFzaA=="):
        assert_refused(
            lambda wrong=wrong: pool.idp.initiate_auth(
                ClientId=pool.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD, "SECRET_HASH": wrong},
            ),
            pool,
            WRONG,
        )


def test_initiate_auth_with_the_right_secret_hash_signs_in(pool: Pool) -> None:
    email = pool.create_user()
    result = pool.sign_in(email)["AuthenticationResult"]
    assert result["AccessToken"] and result["IdToken"] and result["RefreshToken"]


def test_admin_initiate_auth_needs_the_secret_hash(pool: Pool) -> None:
    email = pool.create_user()

    def sign_in(**extra: str) -> Any:
        return pool.idp.admin_initiate_auth(
            UserPoolId=pool.id,
            ClientId=pool.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD, **extra},
        )

    assert_refused(sign_in, pool, MISSING)
    assert_refused(lambda: sign_in(SECRET_HASH=pool.secret_hash("x@example.test")), pool, WRONG)
    assert sign_in(SECRET_HASH=pool.secret_hash(email))["AuthenticationResult"]["AccessToken"]


def test_respond_to_auth_challenge_needs_the_secret_hash(pool: Pool) -> None:
    email = pool.create_user(confirmed=False)  # FORCE_CHANGE_PASSWORD: a NEW_PASSWORD_REQUIRED challenge
    pool.idp.admin_set_user_password(UserPoolId=pool.id, Username=email, Password=PASSWORD, Permanent=False)
    challenge = pool.sign_in(email)
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    def respond(**extra: str) -> Any:
        return pool.idp.respond_to_auth_challenge(
            ClientId=pool.client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge["Session"],
            ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": "Another-Horse-7-Battery", **extra},
        )

    assert_refused(respond, pool, MISSING)
    assert_refused(lambda: respond(SECRET_HASH=pool.secret_hash("x@example.test")), pool, WRONG)
    assert respond(SECRET_HASH=pool.secret_hash(email))["AuthenticationResult"]["AccessToken"]


def test_refresh_token_auth_needs_the_secret_hash_of_the_internal_username(pool: Pool) -> None:
    email = pool.create_user()
    refresh = pool.sign_in(email)["AuthenticationResult"]["RefreshToken"]

    def refresh_with(**extra: str) -> Any:
        return pool.idp.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh, **extra},
        )

    assert_refused(refresh_with, pool, MISSING)
    # after sign-in Cognito knows the user by its own username (the sub), not by the email alias
    assert_refused(lambda: refresh_with(SECRET_HASH=pool.secret_hash(email)), pool, WRONG)
    result = refresh_with(SECRET_HASH=pool.secret_hash(pool.internal_username(email)))
    assert result["AuthenticationResult"]["AccessToken"]


@pytest.mark.parametrize(
    "operation",
    ["sign_up", "confirm_sign_up", "forgot_password", "confirm_forgot_password", "resend_confirmation_code"],
)
def test_user_operations_need_the_secret_hash(pool: Pool, operation: str) -> None:
    email = pool.create_user()
    arguments: dict[str, Any] = {
        "sign_up": {"Password": PASSWORD},
        "confirm_sign_up": {"ConfirmationCode": "123456"},
        "forgot_password": {},
        "confirm_forgot_password": {"ConfirmationCode": "123456", "Password": PASSWORD},
        "resend_confirmation_code": {},
    }[operation]
    call = getattr(pool.idp, operation)
    assert_refused(lambda: call(ClientId=pool.client_id, Username=email, **arguments), pool, MISSING)
    assert_refused(
        lambda: call(
            ClientId=pool.client_id, Username=email, SecretHash=pool.secret_hash("x@y.test"), **arguments
        ),
        pool,
        WRONG,
    )


def test_sign_up_and_forgot_password_with_the_right_secret_hash_are_accepted(pool: Pool) -> None:
    email = "new-user@example.test"
    created = pool.idp.sign_up(
        ClientId=pool.client_id, Username=email, Password=PASSWORD, SecretHash=pool.secret_hash(email)
    )
    assert created["UserSub"]
    existing = pool.create_user()
    sent = pool.idp.forgot_password(
        ClientId=pool.client_id, Username=existing, SecretHash=pool.secret_hash(existing)
    )
    assert sent["CodeDeliveryDetails"]["DeliveryMedium"]


def test_a_client_without_a_secret_needs_no_secret_hash(make_pool: PoolFactory) -> None:
    pool = make_pool(secret=False)
    email = pool.create_user()
    assert pool.sign_in(email)["AuthenticationResult"]["AccessToken"]


def test_auth_flows_the_client_does_not_allow_are_refused(make_pool: PoolFactory) -> None:
    pool = make_pool(flows=("ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"))
    email = pool.create_user()
    with pytest.raises(ClientError) as info:
        pool.sign_in(email)
    assert error_of(info) == (
        "InvalidParameterException",
        "USER_PASSWORD_AUTH flow not enabled for this client",
    )
    with pytest.raises(ClientError) as info:
        pool.idp.admin_initiate_auth(
            UserPoolId=pool.id,
            ClientId=pool.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters=pool.auth_parameters(email),
        )
    assert error_of(info) == ("InvalidParameterException", "Auth flow not enabled for this client")
    allowed = make_pool(flows=("ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"))
    assert allowed.sign_in(allowed.create_user())["AuthenticationResult"]["AccessToken"]


def test_a_wrong_password_is_refused_like_cognito(make_pool: PoolFactory) -> None:
    pool = make_pool(PreventUserExistenceErrors="ENABLED")
    email = pool.create_user()
    for username, password in ((email, "Wrong-Horse-9-Battery"), ("nobody@example.test", PASSWORD)):
        with pytest.raises(ClientError) as info:
            pool.idp.initiate_auth(
                ClientId=pool.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters=pool.auth_parameters(username, password),
            )
        assert error_of(info) == ("NotAuthorizedException", "Incorrect username or password.")
