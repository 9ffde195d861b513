"""The running stack is real and shaped like production (one stack for the session, read-mostly checks)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
import redis
from botocore.exceptions import ClientError

from harness.envcontract import CONTRACT_KEYS
from harness.scenarios.identity import secret_hash
from harness.scenarios.monitor import PROBE_CLIENT_NAME
from harness.testing import RunningStack

pytestmark = pytest.mark.integration


def test_postgres_is_version_16(stack: RunningStack) -> None:
    with psycopg.connect(stack.admin_database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None and row[0].startswith("16.")


def _role(conn: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication"
        " FROM pg_roles WHERE rolname = %s",
        (name,),
    )
    row = cur.fetchone()
    assert row is not None, f"role {name} missing"
    keys = ("login", "superuser", "bypassrls", "createrole", "createdb", "replication")
    return dict(zip(keys, row, strict=True))


def test_app_user_is_a_plain_login_role_that_owns_nothing(stack: RunningStack) -> None:
    with psycopg.connect(stack.admin_database_url) as conn:
        assert _role(conn, "app_user") == {
            "login": True,
            "superuser": False,
            "bypassrls": False,
            "createrole": False,
            "createdb": False,
            "replication": False,
        }
        owned = conn.execute(
            "SELECT 'class ' || relname FROM pg_class WHERE pg_get_userbyid(relowner) = 'app_user'"
            " UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE pg_get_userbyid(nspowner) = 'app_user'"
            " UNION ALL SELECT 'database ' || datname FROM pg_database WHERE pg_get_userbyid(datdba) = 'app_user'"
            " UNION ALL SELECT 'type ' || typname FROM pg_type WHERE pg_get_userbyid(typowner) = 'app_user'"
            " UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pg_get_userbyid(proowner) = 'app_user'"
        ).fetchall()
        assert owned == []


def test_app_migrator_owns_the_schema_and_database(stack: RunningStack) -> None:
    pg = stack.topology.postgres
    with psycopg.connect(stack.admin_database_url) as conn:
        assert _role(conn, "app_migrator")["superuser"] is False
        schema_owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (pg.schema_name,)
        ).fetchone()
        db_owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (pg.database,)
        ).fetchone()
    assert schema_owner == ("app_migrator",)
    assert db_owner == ("app_migrator",)


def test_app_user_connects_but_cannot_create_objects(stack: RunningStack) -> None:
    with psycopg.connect(stack.env()["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app_user",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE sneaky (id int)")


def test_runtime_redis_users_are_confined_to_their_namespaces(stack: RunningStack) -> None:
    suffix = uuid.uuid4().hex
    # refused on purpose: named so the scenario audits' redis-refusals leave these out
    backend = redis.Redis.from_url(stack.env("backend")["REDIS_URL"], client_name=PROBE_CLIENT_NAME)
    worker = (
        redis.Redis.from_url(stack.env("worker")["REDIS_URL"], client_name=PROBE_CLIENT_NAME)
        if "worker" in stack.topology.services
        else None
    )
    try:
        backend.set(f"ai:quota:test:{suffix}", 1, ex=60)
        backend.set(f"rl:test:{suffix}", 1, ex=60)
        with pytest.raises(redis.exceptions.NoPermissionError):
            backend.set(f"sessions:{suffix}", 1)
        with pytest.raises(redis.exceptions.NoPermissionError):
            backend.get("anything-else")
        with pytest.raises(redis.exceptions.NoPermissionError):
            backend.flushall()
        with pytest.raises(redis.exceptions.NoPermissionError):
            backend.config_get("*")
        if worker is not None:
            worker.set(f"celery:test:{suffix}", 1, ex=60)
            with pytest.raises(redis.exceptions.NoPermissionError):
                worker.set(f"rl:test:{suffix}", 1)  # rate limiting belongs to the backend alone
    finally:
        backend.close()
        if worker is not None:
            worker.close()


KEYLESS_DESTRUCTIVE = [
    ("SWAPDB", "0", "1"),
    ("FLUSHDB",),
    ("FLUSHALL",),
    ("KEYS", "*"),
    ("RANDOMKEY",),
    ("SCRIPT", "FLUSH"),
    ("SCRIPT", "KILL"),
    ("FUNCTION", "FLUSH"),
    ("FUNCTION", "LIST"),
    ("FUNCTION", "DELETE", "lib"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('x', function() return 1 end)"),
]


@pytest.mark.parametrize("command", KEYLESS_DESTRUCTIVE, ids=lambda c: " ".join(c[:2]))
def test_component_users_cannot_run_keyless_commands_that_reach_other_namespaces(
    stack: RunningStack, command: tuple[str, ...]
) -> None:
    """Key patterns confine keyed commands only: SWAPDB (empties db 0 for everyone, like FLUSHDB), SCRIPT FLUSH,
    FUNCTION ..., KEYS and RANDOMKEY (key names of every namespace) must be refused outright."""
    for component in [n for n in ("backend", "worker") if n in stack.topology.services]:
        client = redis.Redis.from_url(stack.env(component)["REDIS_URL"], client_name=PROBE_CLIENT_NAME)
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        finally:
            client.close()


def test_redis_default_user_needs_a_password(stack: RunningStack) -> None:
    anonymous = redis.Redis(host=stack.redis.host, port=stack.redis.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host=stack.redis.host, port=stack.redis.port, password="wrong")
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()
    assert redis.Redis.from_url(stack.redis_admin_url).ping()


def test_bucket_has_every_rule_of_the_topology(stack: RunningStack) -> None:
    s3 = stack.client("s3")
    bucket = stack.topology.s3.bucket
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == stack.topology.region
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [(r["Status"], r["Transitions"]) for r in lifecycle] == [
        ("Enabled", [{"Days": 90, "StorageClass": "STANDARD_IA"}])
    ]


def test_presigned_download_of_a_tenant_object(stack: RunningStack) -> None:
    import httpx

    s3 = stack.client("s3")
    bucket = stack.topology.s3.bucket
    key = f"{uuid.uuid4()}/private.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"tenant data")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"  # the bucket default applies to new objects
    assert head["VersionId"] not in (None, "null")  # versioning is on
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    assert httpx.get(url).content == b"tenant data"


def test_ses_rejects_an_unverified_sender_and_accepts_the_topology_sender(stack: RunningStack) -> None:
    ses = stack.client("ses")
    message = {"Subject": {"Data": "hello"}, "Body": {"Text": {"Data": "body"}}}
    with pytest.raises(ClientError) as info:
        ses.send_email(
            Source="someone@unverified.example", Destination={"ToAddresses": ["a@b.test"]}, Message=message
        )
    assert info.value.response["Error"]["Code"] == "MessageRejected"
    sent = ses.send_email(
        Source=stack.topology.ses.sender,
        Destination={"ToAddresses": ["buyer@example.test"]},
        Message=message,
        ConfigurationSetName=stack.topology.ses.configuration_set,
    )
    assert sent["MessageId"]
    identities = ses.get_identity_verification_attributes(Identities=[stack.topology.ses.domain])
    assert identities["VerificationAttributes"][stack.topology.ses.domain]["VerificationStatus"] == "Success"


def test_cognito_enforces_the_password_policy_and_issues_tokens(stack: RunningStack) -> None:
    env = stack.env()
    idp = stack.client("cognito-idp")
    pool, client_id, secret = (
        env["COGNITO_USER_POOL_ID"],
        env["COGNITO_CLIENT_ID"],
        env["COGNITO_CLIENT_SECRET"],
    )
    email = f"user-{uuid.uuid4().hex[:10]}@example.test"
    idp.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    for weak in ("Short1!a", "alllowercase1!xyz", "NoDigitsHere!!xyz", "NoSymbols123xyzAB"):
        with pytest.raises(ClientError) as info:
            idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=weak, Permanent=True)
        assert info.value.response["Error"]["Code"] == "InvalidPasswordException", weak
    password = "Correct-Horse-9-Battery"
    idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    idp.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName="Member")
    tokens = idp.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={
            "USERNAME": email,
            "PASSWORD": password,
            "SECRET_HASH": secret_hash(email, client_id, secret),
        },
    )["AuthenticationResult"]
    assert tokens["AccessToken"] and tokens["IdToken"] and tokens["RefreshToken"]
    groups = {g["GroupName"] for g in idp.list_groups(UserPoolId=pool)["Groups"]}
    assert groups >= {"Owner", "Admin", "Member"}
    mfa = idp.get_user_pool_mfa_config(UserPoolId=pool)
    assert mfa["SoftwareTokenMfaConfiguration"]["Enabled"] is True
    assert mfa["MfaConfiguration"] == stack.topology.cognito.mfa


def test_secrets_and_parameters_read_back_as_the_env_contract(stack: RunningStack) -> None:
    env = stack.env()
    sm, ssm = stack.client("secretsmanager"), stack.client("ssm")
    for secret in stack.topology.secrets:
        assert sm.get_secret_value(SecretId=secret.name)["SecretString"] == env[secret.env], secret.name
    for param in stack.topology.parameters:
        assert ssm.get_parameter(Name=param.name)["Parameter"]["Value"] == env[param.env], param.name
    assert set(CONTRACT_KEYS) <= set(env)


def test_a_client_nobody_here_wrote_sees_the_bucket(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """localstack-client (what `awslocal` users have) finds the stack via LOCALSTACK_HOST, like port 4566."""
    import localstack_client.session

    assert stack.topology.aws.port == 4566  # the default every localstack tool assumes
    monkeypatch.setenv("LOCALSTACK_HOST", f"127.0.0.1:{stack.aws.url.rsplit(':', 1)[1]}")
    session = localstack_client.session.Session(region_name=stack.topology.region)
    names = [b["Name"] for b in session.client("s3").list_buckets()["Buckets"]]
    assert stack.topology.s3.bucket in names


def test_plain_boto3_with_aws_endpoint_url_sees_the_bucket(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for key, value in stack.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert stack.topology.s3.bucket in names
