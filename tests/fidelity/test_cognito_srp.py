"""USER_SRP_AUTH end to end with pycognito's AWSSRP (the SRP-6a client Amplify-style SDKs implement)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from fidelity_clients import PASSWORD, Pool, PoolFactory, error_of
from pycognito.aws_srp import AWSSRP


def srp_client(pool: Pool, email: str, password: str = PASSWORD) -> AWSSRP:
    return AWSSRP(
        username=email,
        password=password,
        pool_id=pool.id,
        client_id=pool.client_id,
        client=pool.idp,
        client_secret=pool.client_secret,
    )


@pytest.fixture
def pool(make_pool: PoolFactory) -> Pool:
    return make_pool(secret=True)


def test_srp_with_the_right_password_signs_in(pool: Pool, emulator: Any) -> None:
    email = pool.create_user()
    tokens = srp_client(pool, email).authenticate_user()
    result = tokens["AuthenticationResult"]
    assert result["AccessToken"] and result["IdToken"] and result["RefreshToken"]
    assert pool.idp.get_user(AccessToken=result["AccessToken"])["Username"] == pool.internal_username(email)


def test_srp_with_a_wrong_password_is_refused(pool: Pool) -> None:
    email = pool.create_user()
    with pytest.raises(ClientError) as info:
        srp_client(pool, email, "Wrong-Horse-9-Battery").authenticate_user()
    assert error_of(info) == ("NotAuthorizedException", "Incorrect username or password.")


def test_srp_with_a_tampered_claim_is_refused(pool: Pool) -> None:
    email = pool.create_user()
    client = srp_client(pool, email)
    params = client.get_auth_params()
    challenge = pool.idp.initiate_auth(
        ClientId=pool.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=params
    )
    assert challenge["ChallengeName"] == "PASSWORD_VERIFIER"
    responses = client.process_challenge(challenge["ChallengeParameters"], params)
    forged = dict(
        responses, TIMESTAMP=responses["TIMESTAMP"].replace("UTC", "GMT")
    )  # signed over another text
    with pytest.raises(ClientError) as info:
        pool.idp.respond_to_auth_challenge(
            ClientId=pool.client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=forged
        )
    assert error_of(info) == ("NotAuthorizedException", "Incorrect username or password.")
    # a claim answers one challenge once: the genuine one cannot be replayed after the refusal either
    with pytest.raises(ClientError) as info:
        pool.idp.respond_to_auth_challenge(
            ClientId=pool.client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
        )
    assert error_of(info)[0] == "NotAuthorizedException"


def test_srp_of_an_unknown_user_is_refused_without_revealing_it(make_pool: PoolFactory) -> None:
    pool = make_pool(secret=True, PreventUserExistenceErrors="ENABLED")
    with pytest.raises(ClientError) as info:
        srp_client(pool, "nobody@example.test").authenticate_user()
    assert error_of(info) == ("NotAuthorizedException", "Incorrect username or password.")


def test_srp_needs_the_secret_hash(pool: Pool) -> None:
    email = pool.create_user()
    client = srp_client(pool, email)
    params = {k: v for k, v in client.get_auth_params().items() if k != "SECRET_HASH"}
    with pytest.raises(ClientError) as info:
        pool.idp.initiate_auth(ClientId=pool.client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=params)
    assert error_of(info) == (
        "NotAuthorizedException",
        f"Client {pool.client_id} is configured with secret but SECRET_HASH was not received",
    )
