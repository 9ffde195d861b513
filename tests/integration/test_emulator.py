"""The AWS emulator as a real process on a real socket: state survives SIGTERM and SIGKILL, Cognito tokens
issued before a restart still verify after it, captured mail is kept, a corrupt state file is set aside,
`/_harness/reset` empties everything, and a taken port is a clear error."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jwt
import moto
import pytest
from botocore.config import Config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGION = "me-south-1"
ACCOUNT_ID = "000000000000"
START_TIMEOUT = 30.0
SNAPSHOT_TIMEOUT = 10.0
POLL_SECONDS = 0.02
PASSWORD = "Correct-Horse-9-Battery"
SENDER = "no-reply@yourdomain.com"
CONFIGURATION_SET = "saas-local-transactional"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Emulator:
    """One `python -m harness.emulator` subprocess."""

    port: int
    state_file: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            )
        return self._clients[service]

    def call(self, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.endpoint + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode()

    def health(self) -> dict[str, Any]:
        status, body = self.call("GET", "/_harness/health")
        assert status == 200, body
        return dict(body)

    def messages(self, query: str = "") -> list[dict[str, Any]]:
        status, body = self.call("GET", "/_harness/ses/messages" + query)
        assert status == 200, body
        return list(body)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def wait_for_snapshot(self, after: int) -> dict[str, Any]:
        """Poll until a snapshot newer than `after` snapshots was written and nothing is pending."""
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT
        while time.monotonic() < deadline:
            persistence = self.health()["persistence"]
            if persistence["snapshots"] > after and not persistence["pending"]:
                return dict(persistence)
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"no snapshot within {SNAPSHOT_TIMEOUT}s: {self.health()}\n{self.log()[-2000:]}")


class EmulatorFactory:
    """Starts emulators and guarantees they are all killed at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Emulator] = []
        self.state_file = tmp_path / "state" / "aws" / "moto-state.pickle"

    def start(self, port: int | None = None, wait: bool = True) -> Emulator:
        port = port or free_port()
        log_path = self.tmp_path / f"emulator-{len(self.started)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "harness.emulator", "--port", str(port), "--state-file",
                 str(self.state_file), "--region", REGION, "--quiet"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
            )  # fmt: skip
        emulator = Emulator(port, self.state_file, process, log_path)
        self.started.append(emulator)
        if wait:
            self._wait_healthy(emulator)
        return emulator

    def _wait_healthy(self, emulator: Emulator) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if emulator.process.poll() is not None:
                raise AssertionError(f"emulator exited with {emulator.process.returncode}:\n{emulator.log()}")
            try:
                with urllib.request.urlopen(f"{emulator.endpoint}/_harness/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"emulator not healthy within {START_TIMEOUT}s:\n{emulator.log()}")

    def cleanup(self) -> None:
        for emulator in self.started:
            if emulator.process.poll() is None:
                emulator.process.kill()
                emulator.process.wait(timeout=10)


@pytest.fixture
def emulators(tmp_path: Path) -> Iterator[EmulatorFactory]:
    factory = EmulatorFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()


@dataclass(frozen=True)
class Provisioned:
    bucket: str
    key: str
    versions: tuple[str, ...]
    pool_id: str
    client_id: str
    username: str
    tokens: dict[str, Any]
    secret: str
    parameter: str
    message_id: str


def provision(emulator: Emulator, suffix: str = "a") -> Provisioned:
    """A small version of what `harness up` provisions, through the AWS APIs."""
    s3 = emulator.client("s3")
    bucket = f"saas-media-local-{suffix}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    key = "tenant-1/report.txt"
    versions = tuple(s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"] for body in (b"v1", b"v2"))

    idp = emulator.client("cognito-idp")
    pool_id = idp.create_user_pool(
        PoolName=f"saas-local-{suffix}",
        Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireSymbols": True}},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="backend",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    username = f"owner@{suffix}.test"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": username}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    tokens = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]

    secret = f"saas/local/app-secret-key-{suffix}"
    emulator.client("secretsmanager").create_secret(Name=secret, SecretString=f"s3cr3t-{suffix}")
    parameter = f"/saas/local/{suffix}/s3/bucket"
    emulator.client("ssm").put_parameter(Name=parameter, Value=bucket, Type="String")

    ses = emulator.client("ses")
    ses.verify_domain_identity(Domain="yourdomain.com")
    emulator.client("sesv2").create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
    message_id = ses.send_email(
        Source=SENDER,
        Destination={"ToAddresses": [username], "BccAddresses": ["audit@yourdomain.com"]},
        Message={
            "Subject": {"Data": f"Welcome {suffix}"},
            "Body": {"Text": {"Data": "plain welcome"}, "Html": {"Data": "<p>html welcome</p>"}},
        },
        ConfigurationSetName=CONFIGURATION_SET,
    )["MessageId"]
    return Provisioned(
        bucket, key, versions, pool_id, client_id, username, tokens, secret, parameter, message_id
    )


def verify_token(emulator: Emulator, provisioned: Provisioned, token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKClient(f"{emulator.endpoint}/{provisioned.pool_id}/.well-known/jwks.json")
    claims: dict[str, Any] = jwt.decode(
        token,
        jwks.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=provisioned.client_id,
        # the local issuer (fidelity: tokens name an issuer whose JWKS is served where it says)
        issuer=f"{emulator.endpoint}/{provisioned.pool_id}",
    )
    return claims


def assert_provisioned(emulator: Emulator, provisioned: Provisioned) -> None:
    s3 = emulator.client("s3")
    assert s3.get_object(Bucket=provisioned.bucket, Key=provisioned.key)["Body"].read() == b"v2"
    versions = s3.list_object_versions(Bucket=provisioned.bucket, Prefix=provisioned.key)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted(provisioned.versions)
    assert s3.get_bucket_versioning(Bucket=provisioned.bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=provisioned.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    idp = emulator.client("cognito-idp")
    user = idp.admin_get_user(UserPoolId=provisioned.pool_id, Username=provisioned.username)
    assert user["UserStatus"] == "CONFIRMED"
    refreshed = idp.admin_initiate_auth(
        UserPoolId=provisioned.pool_id,
        ClientId=provisioned.client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": provisioned.tokens["RefreshToken"]},
    )["AuthenticationResult"]
    assert (
        verify_token(emulator, provisioned, refreshed["IdToken"])["cognito:username"] == provisioned.username
    )

    secret = emulator.client("secretsmanager").get_secret_value(SecretId=provisioned.secret)
    assert secret["SecretString"].startswith("s3cr3t-")
    parameter = emulator.client("ssm").get_parameter(Name=provisioned.parameter)["Parameter"]
    assert parameter["Value"] == provisioned.bucket
    assert "yourdomain.com" in emulator.client("ses").list_identities()["Identities"]


def test_state_survives_sigterm_and_restart(emulators: EmulatorFactory) -> None:
    first = emulators.start()
    assert first.health()["restored"] is False
    provisioned = provision(first)
    id_token = provisioned.tokens["IdToken"]
    assert verify_token(first, provisioned, id_token)["cognito:username"] == provisioned.username
    [mail] = first.messages()

    assert first.stop(signal.SIGTERM) == 0
    assert first.state_file.exists()

    second = emulators.start(port=first.port)
    health = second.health()
    assert health["restored"] is True
    assert health["state_file"] == str(first.state_file)
    assert health["pid"] == second.process.pid
    assert_provisioned(second, provisioned)
    # the token was issued before the restart: the keys behind the JWKS must be the same ones
    assert (
        verify_token(second, provisioned, id_token)["sub"]
        == verify_token(first, provisioned, id_token)["sub"]
    )
    assert second.messages() == [mail]
    assert mail["id"] == provisioned.message_id
    assert mail["source"] == SENDER
    assert mail["destinations"] == {"to": [provisioned.username], "cc": [], "bcc": ["audit@yourdomain.com"]}
    assert mail["subject"] == "Welcome a"
    assert mail["body"] == {"text": "plain welcome", "html": "<p>html welcome</p>"}
    assert mail["configuration_set"] == CONFIGURATION_SET
    assert mail["timestamp"].endswith("Z")


def test_change_survives_sigkill_once_snapshotted(emulators: EmulatorFactory) -> None:
    emulator = emulators.start()
    provisioned = provision(emulator)
    emulator.wait_for_snapshot(after=0)
    mtime = emulator.state_file.stat().st_mtime_ns
    before = emulator.health()["persistence"]["snapshots"]

    emulator.client("secretsmanager").put_secret_value(SecretId=provisioned.secret, SecretString="rotated")
    emulator.client("s3").put_object(Bucket=provisioned.bucket, Key="tenant-2/late.txt", Body=b"late")
    emulator.wait_for_snapshot(after=before)
    assert emulator.state_file.stat().st_mtime_ns > mtime
    assert emulator.stop(signal.SIGKILL) == -signal.SIGKILL

    restarted = emulators.start()
    assert restarted.health()["restored"] is True
    secret = restarted.client("secretsmanager").get_secret_value(SecretId=provisioned.secret)
    assert secret["SecretString"] == "rotated"
    late = restarted.client("s3").get_object(Bucket=provisioned.bucket, Key="tenant-2/late.txt")
    assert late["Body"].read() == b"late"
    assert [m["id"] for m in restarted.messages()] == [provisioned.message_id]


def test_every_acknowledged_change_survives_an_immediate_sigkill(emulators: EmulatorFactory) -> None:
    """No waiting for a snapshot: an answered request is on disk (the emulator snapshots before answering)."""
    emulator = emulators.start()
    provisioned = provision(emulator)
    emulator.client("s3").put_object(Bucket=provisioned.bucket, Key="tenant-3/just-now.txt", Body=b"now")
    emulator.client("cognito-idp").admin_create_user(
        UserPoolId=provisioned.pool_id, Username="just-signed-up@example.test", MessageAction="SUPPRESS"
    )
    assert emulator.stop(signal.SIGKILL) == -signal.SIGKILL

    restarted = emulators.start()
    assert restarted.health()["persistence"]["synchronous"] is True
    body = restarted.client("s3").get_object(Bucket=provisioned.bucket, Key="tenant-3/just-now.txt")["Body"]
    assert body.read() == b"now"
    user = restarted.client("cognito-idp").admin_get_user(
        UserPoolId=provisioned.pool_id, Username="just-signed-up@example.test"
    )
    assert user["Username"] == "just-signed-up@example.test"


def test_a_torn_state_file_starts_from_the_previous_snapshot_and_says_so(emulators: EmulatorFactory) -> None:
    emulator = emulators.start()
    provisioned = provision(emulator)
    emulator.client("s3").put_object(Bucket=provisioned.bucket, Key="tenant-4/last.txt", Body=b"last")
    assert emulator.stop(signal.SIGKILL) == -signal.SIGKILL
    previous = emulators.state_file.with_name(emulators.state_file.name + ".prev")
    assert previous.exists()
    torn = emulators.state_file.read_bytes()[:200]
    emulators.state_file.write_bytes(torn)

    restarted = emulators.start()
    health = restarted.health()
    assert health["restored"] is True
    assert health["persistence"]["restored_from_previous"] == str(previous)
    assert Path(health["persistence"]["moved_aside"]).read_bytes() == torn
    assert "restored the previous snapshot" in restarted.log()
    assert_provisioned(restarted, provisioned)  # everything before the last change


def state_file_bytes(header: bytes, body: bytes) -> bytes:
    return b"harness-aws-emulator-state\n" + struct.pack(">Q", len(header)) + header + body


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x80\x05not a state file at all", id="garbage"),
        pytest.param(
            state_file_bytes(b'{"format": 1, "moto_version": "0.0.1"}', b"\x80\x05..."),
            id="other-moto-version",
        ),
        pytest.param(state_file_bytes(b'{"format": 1}', b"")[:-4], id="truncated-header"),
        pytest.param(
            state_file_bytes(
                json.dumps({"format": 1, "moto_version": moto.__version__}).encode(), b"\x80\x05(."
            ),
            id="bad-pickle",
        ),
    ],
)
def test_corrupt_state_file_is_moved_aside(emulators: EmulatorFactory, content: bytes) -> None:
    emulators.state_file.parent.mkdir(parents=True)
    emulators.state_file.write_bytes(content)

    emulator = emulators.start()
    persistence = emulator.health()["persistence"]
    assert emulator.health()["restored"] is False
    aside = Path(persistence["moved_aside"])
    assert aside.name.startswith("moto-state.pickle.corrupt-")
    assert aside.read_bytes() == content
    assert not emulators.state_file.exists()
    assert f"state file {emulators.state_file} cannot be restored" in emulator.log()
    assert "WARNING" in emulator.log()

    # persistence still works: the next change is saved to the usual path
    emulator.client("s3").create_bucket(
        Bucket="after-corruption", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    status, snapshot = emulator.call("POST", "/_harness/snapshot")
    assert status == 200, snapshot
    assert snapshot["bytes"] > 0
    assert emulators.state_file.exists()


def test_reset_empties_everything_and_deletes_the_state_file(emulators: EmulatorFactory) -> None:
    emulator = emulators.start()
    provisioned = provision(emulator)
    status, snapshot = emulator.call("POST", "/_harness/snapshot")
    assert status == 200
    assert {"bytes", "ms", "capture_ms", "backends"} <= snapshot.keys()
    assert emulator.state_file.exists()

    status, body = emulator.call("POST", "/_harness/reset")
    assert (status, body) == (200, {"status": "ok", "state_file_deleted": True})
    assert not emulator.state_file.exists()
    assert emulator.health()["persistence"]["pending"] is False
    assert emulator.client("s3").list_buckets()["Buckets"] == []
    assert emulator.client("secretsmanager").list_secrets()["SecretList"] == []
    assert emulator.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []
    assert emulator.client("ssm").describe_parameters()["Parameters"] == []
    assert emulator.messages() == []

    assert emulator.stop(signal.SIGTERM) == 0
    restarted = emulators.start()
    assert restarted.client("s3").list_buckets()["Buckets"] == []
    with pytest.raises(restarted.client("secretsmanager").exceptions.ResourceNotFoundException):
        restarted.client("secretsmanager").get_secret_value(SecretId=provisioned.secret)


def test_control_endpoints_and_mail_filters(emulators: EmulatorFactory) -> None:
    emulator = emulators.start()
    ses = emulator.client("ses")
    with pytest.raises(ses.exceptions.MessageRejected):  # moto, like SES, refuses unverified senders
        ses.send_email(
            Source=SENDER,
            Destination={"ToAddresses": ["x@example.test"]},
            Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        )
    ses.verify_email_identity(EmailAddress=SENDER)
    first = ses.send_email(
        Source=SENDER,
        Destination={"ToAddresses": ["Ann <ann@example.test>"]},
        Message={"Subject": {"Data": "one"}, "Body": {"Html": {"Data": "<b>1</b>"}}},
    )["MessageId"]
    second = emulator.client("sesv2").send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["bob@example.test"], "CcAddresses": ["ann@example.test"]},
        Content={"Simple": {"Subject": {"Data": "two"}, "Body": {"Text": {"Data": "2"}}}},
    )["MessageId"]
    raw = "\r\n".join(
        [f"From: {SENDER}", "To: carol@example.test", "Subject: three", "Content-Type: text/plain", "", "3"]
    )
    third = ses.send_raw_email(RawMessage={"Data": raw.encode()})["MessageId"]

    everything = emulator.messages()
    assert [m["id"] for m in everything] == [first, second, third]
    assert [m["api"] for m in everything] == ["ses", "sesv2", "ses"]
    assert everything[0]["body"] == {"text": None, "html": "<b>1</b>"}
    assert everything[2]["subject"] == "three"
    assert everything[2]["body"]["text"].strip() == "3"
    assert [m["id"] for m in emulator.messages("?to=ANN@example.test")] == [first, second]
    assert [m["id"] for m in emulator.messages(f"?since_id={first}")] == [second, third]
    assert [m["id"] for m in emulator.messages(f"?since_id={first}&to=carol@example.test")] == [third]
    status, body = emulator.call("GET", "/_harness/ses/messages?since_id=nope")
    assert status == 404
    assert "nope" in body["error"]

    assert emulator.call("GET", "/_harness/nope")[0] == 404
    assert emulator.call("GET", "/_harness/reset")[0] == 405
    # the Cognito JWKS route and S3 virtual-host addressing share the port with /_harness/
    emulator.client("s3").create_bucket(
        Bucket="vhost", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    # Unsigned requests are refused as on AWS; header signatures are not verified locally, any will do.
    signed = "AWS4-HMAC-SHA256 Credential=test/20260101/me-south-1/s3/aws4_request, SignedHeaders=host, Signature=0"
    status, listing = emulator.call(
        "GET",
        "/?list-type=2",
        headers={"Host": f"vhost.s3.localhost:{emulator.port}", "Authorization": signed},
    )
    assert status == 200
    assert "<Name>vhost</Name>" in listing


def test_unsigned_cognito_calls_land_in_the_emulators_region(emulators: EmulatorFactory) -> None:
    """GlobalSignOut is unsigned (no region in the request): it must find the me-south-1 pool, as on AWS."""
    emulator = emulators.start()
    provisioned = provision(emulator)
    idp = emulator.client("cognito-idp")
    access = provisioned.tokens["AccessToken"]
    assert idp.get_user(AccessToken=access)["Username"] == provisioned.username
    idp.global_sign_out(AccessToken=access)
    with pytest.raises(idp.exceptions.NotAuthorizedException):
        idp.get_user(AccessToken=access)


def test_port_in_use_is_a_clear_error(emulators: EmulatorFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        emulator = emulators.start(port=port, wait=False)
        assert emulator.process.wait(timeout=30) == 2
    log = emulator.log()
    assert f"port {port} on 127.0.0.1 is already in use" in log
    assert "AWS emulator" in log
    assert "--port" in log
