"""The emulator's persistence without a server: the state file format, moto capture/restore, the runtime."""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws

from harness.emulator.config import EmulatorConfig
from harness.emulator.moto_state import MotoState
from harness.emulator.runtime import STATE_FORMAT, EmulatorRuntime
from harness.emulator.state_file import MAGIC, StateFile, UnreadableStateError
from harness.errors import StateError

ACCOUNT = "123456789012"  # moto's default account, which mock_aws uses
REGION = "me-south-1"


@pytest.fixture
def aws() -> Iterator[None]:
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with mock_aws():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


# -- state file ---------------------------------------------------------------------------------------


def test_state_file_round_trip_is_atomic_and_private(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "aws" / "moto-state.pickle")
    assert state.read() is None
    size = state.write({"format": 1}, b"body")
    contents = state.read()
    assert contents is not None
    assert (contents.header, contents.body) == ({"format": 1}, b"body")
    assert size == state.path.stat().st_size
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    assert [p.name for p in state.path.parent.iterdir()] == ["moto-state.pickle"]  # no temp file left


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"junk",
        MAGIC + b"\x00" * 7,
        MAGIC + (10**9).to_bytes(8, "big"),
        MAGIC + (2).to_bytes(8, "big") + b"[]",
    ],
)
def test_unreadable_state_files_are_recognised(tmp_path: Path, raw: bytes) -> None:
    state = StateFile(tmp_path / "s.pickle")
    state.path.write_bytes(raw)
    with pytest.raises(UnreadableStateError):
        state.read()


def test_move_aside_never_overwrites(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "s.pickle")
    state.path.write_bytes(b"first")
    first = state.move_aside()
    state.path.write_bytes(b"second")
    second = state.move_aside()
    assert first != second
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")
    assert first.name.startswith("s.pickle.corrupt-")
    assert not state.path.exists()
    assert state.delete() is False


# -- moto capture / restore ---------------------------------------------------------------------------


def provision() -> dict[str, Any]:
    s3 = client("s3")
    s3.create_bucket(Bucket="media", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    versions = [s3.put_object(Bucket="media", Key="k", Body=body)["VersionId"] for body in (b"1", b"2")]
    idp = client("cognito-idp")
    pool = idp.create_user_pool(PoolName="pool")["UserPool"]["Id"]
    app = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="c", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="u", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="u", Password="Passw0rd!Passw0rd", Permanent=True)
    client("ssm").put_parameter(Name="/p", Value="v", Type="String")
    client("ssm").add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/p", Tags=[{"Key": "t", "Value": "1"}]
    )
    client("secretsmanager").create_secret(Name="s", SecretString="x")
    client("sesv2").create_email_identity(EmailIdentity="yourdomain.com")
    return {"versions": versions, "pool": pool, "client": app}


def assert_provisioned(ids: dict[str, Any]) -> None:
    versions = client("s3").list_object_versions(Bucket="media")["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted(ids["versions"])
    auth = client("cognito-idp").admin_initiate_auth(
        UserPoolId=ids["pool"],
        ClientId=ids["client"],
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "u", "PASSWORD": "Passw0rd!Passw0rd"},
    )
    assert auth["AuthenticationResult"]["IdToken"]
    assert client("ssm").get_parameter(Name="/p")["Parameter"]["Value"] == "v"
    tags = client("ssm").list_tags_for_resource(ResourceType="Parameter", ResourceId="/p")["TagList"]
    assert tags == [{"Key": "t", "Value": "1"}]
    assert client("secretsmanager").get_secret_value(SecretId="s")["SecretString"] == "x"
    assert client("ses").list_identities()["Identities"] == ["yourdomain.com"]


def test_capture_reset_restore_round_trip(aws: None) -> None:
    from moto.ses.models import ses_backends
    from moto.sesv2.models import sesv2_backends

    ids = provision()
    state = MotoState(ACCOUNT)
    captured = state.capture({"extra": [1, 2]})
    assert f"s3/{ACCOUNT}/aws" in captured.backends
    assert f"cognitoidp/{ACCOUNT}/{REGION}" in captured.backends
    assert captured.skipped == {}

    state.reset()
    assert client("s3").list_buckets()["Buckets"] == []

    restored = state.restore(captured.data)
    assert restored.extras == {"extra": [1, 2]}
    assert set(restored.backends) == set(captured.backends)
    assert_provisioned(ids)
    # one pickling pass keeps references between backends shared (SESv2 stores into SES)
    assert sesv2_backends[ACCOUNT][REGION].core_backend is ses_backends[ACCOUNT][REGION]


def test_an_unpicklable_backend_is_left_out_with_one_warning(
    aws: None, caplog: pytest.LogCaptureFixture
) -> None:
    from moto.secretsmanager.models import secretsmanager_backends

    provision()
    secretsmanager_backends[ACCOUNT][REGION].poison = lambda: None  # type: ignore[attr-defined]
    state = MotoState(ACCOUNT)
    with caplog.at_level(logging.WARNING):
        captured = state.capture({})
        state.capture({})
    label = f"secretsmanager/{ACCOUNT}/{REGION}"
    assert label in captured.skipped
    assert label not in captured.backends
    assert f"s3/{ACCOUNT}/aws" in captured.backends
    assert [r.getMessage() for r in caplog.records].count(
        f"AWS emulator: not persisting {label}, it cannot be pickled ({captured.skipped[label]})"
    ) == 1


def test_restore_of_garbage_installs_nothing(aws: None) -> None:
    client("s3").create_bucket(Bucket="keep", CreateBucketConfiguration={"LocationConstraint": REGION})
    with pytest.raises(pickle.UnpicklingError):
        MotoState(ACCOUNT).restore(b"\x80\x05garbage")
    assert [b["Name"] for b in client("s3").list_buckets()["Buckets"]] == ["keep"]


def test_restore_rejects_a_payload_that_is_not_a_capture(aws: None) -> None:
    from harness.emulator import pickling

    with pytest.raises(StateError):
        MotoState(ACCOUNT).restore(pickling.dumps({"backends": [("moto.s3.models:nope", ACCOUNT, "aws", 1)]}))


# -- runtime -----------------------------------------------------------------------------------------


def runtime(state_file: Path) -> EmulatorRuntime:
    return EmulatorRuntime(EmulatorConfig(state_file=state_file, account_id=ACCOUNT, region=REGION))


def test_runtime_snapshot_restore_reset(aws: None, tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    first = runtime(path)
    assert first.restore().restored is False
    ids = provision()
    first.note_mutation()
    assert first.dirty
    result = first.snapshot()
    assert not first.dirty
    assert result.bytes == path.stat().st_size
    header = StateFile(path).read()
    assert header is not None
    assert header.header["format"] == STATE_FORMAT
    assert header.header["moto_version"] == moto.__version__

    first.reset()
    assert not path.exists()
    assert client("s3").list_buckets()["Buckets"] == []

    path_copy = tmp_path / "copy.pickle"
    StateFile(path_copy).write(header.header, header.body)
    second = runtime(path_copy)
    report = second.restore()
    assert report.restored is True
    assert second.health()["restored"] is True
    assert_provisioned(ids)


def test_runtime_moves_an_incompatible_file_aside(
    aws: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.pickle"
    StateFile(path).write({"format": STATE_FORMAT, "moto_version": "4.0.0"}, b"whatever")
    subject = runtime(path)
    with caplog.at_level(logging.WARNING):
        report = subject.restore()
    assert report.restored is False
    assert report.moved_aside is not None
    assert Path(report.moved_aside).exists()
    assert not path.exists()
    assert "moto 4.0.0" in (report.problem or "")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(path) in warning.getMessage()
    assert "moved aside" in warning.getMessage()
    assert subject.health()["persistence"]["moved_aside"] == report.moved_aside
    subject.note_mutation()
    assert subject.snapshot().bytes > 0  # persistence goes on with a fresh file


def test_a_torn_state_file_falls_back_to_the_previous_snapshot(
    aws: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.pickle"
    writer = runtime(path)
    ids = provision()
    writer.note_mutation()
    writer.snapshot()  # becomes the previous snapshot with the next write
    client("s3").create_bucket(Bucket="later", CreateBucketConfiguration={"LocationConstraint": REGION})
    writer.note_mutation()
    writer.snapshot()
    previous = tmp_path / "state.pickle.prev"
    assert previous.exists()
    path.write_bytes(path.read_bytes()[:40])  # the current file torn after it was written
    MotoState(ACCOUNT).reset()  # a new process: nothing in memory

    subject = runtime(path)
    with caplog.at_level(logging.WARNING):
        report = subject.restore()
    assert report.restored is True
    assert report.from_previous == str(previous)
    assert report.problem
    assert report.moved_aside is not None and Path(report.moved_aside).exists()
    assert subject.health()["persistence"]["restored_from_previous"] == str(previous)
    assert_provisioned(ids)
    assert "later" not in [b["Name"] for b in client("s3").list_buckets()["Buckets"]]
    assert any("previous snapshot" in r.getMessage() for r in caplog.records)
    subject.note_mutation()
    assert subject.snapshot().bytes > 0  # and persistence goes on


def test_snapshot_without_a_state_file_explains_itself() -> None:
    subject = EmulatorRuntime(EmulatorConfig(state_file=None))
    with pytest.raises(StateError, match="--state-file"):
        subject.snapshot()
    assert subject.health()["persistence"]["enabled"] is False
    assert json.dumps(subject.health())
