"""The emulator's WSGI chain without a socket: control endpoints, the request gate, SES send capture."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest
from werkzeug.test import Client

from harness.emulator.app import build_wsgi_app
from harness.emulator.config import EmulatorConfig
from harness.emulator.mail import CapturedMailStore, SesCaptureMiddleware, _raw_fields
from harness.emulator.runtime import EmulatorRuntime

SES_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/me-south-1/ses/aws4_request, SignedHeaders=host"


class FakeAws:
    """Stands in for moto: records what it saw and answers a fixed body."""

    def __init__(self, body: bytes = b"<ok/>", status: str = "200 OK") -> None:
        self.body = body
        self.status = status
        self.seen: list[tuple[str, bytes]] = []
        self.gate_users: list[int] = []
        self.runtime: EmulatorRuntime | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.seen.append((environ["PATH_INFO"], environ["wsgi.input"].read(length)))
        if self.runtime is not None:
            self.gate_users.append(self.runtime.gate.active_requests)
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("moto crashed")
        start_response(self.status, [("Content-Type", "text/xml")])
        return [self.body]


def make_app(
    tmp_path: Path | None = None, aws: WSGIApplication | None = None, *, sync_snapshots: bool = True
) -> tuple[Client, EmulatorRuntime]:
    state_file = tmp_path / "state.pickle" if tmp_path else None
    runtime = EmulatorRuntime(EmulatorConfig(state_file=state_file, sync_snapshots=sync_snapshots))
    aws = aws or FakeAws()
    if isinstance(aws, FakeAws):
        aws.runtime = runtime
    return Client(build_wsgi_app(runtime, aws)), runtime


def test_health_answers_without_reaching_moto() -> None:
    aws = FakeAws()
    client, _ = make_app(aws=aws)
    response = client.get("/_harness/health")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["restored"] is False
    assert body["state_file"] is None
    assert isinstance(body["pid"], int)
    assert aws.seen == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/_harness/nope", 404),
        ("GET", "/_harness", 404),
        ("POST", "/_harness/health", 405),
        ("GET", "/_harness/snapshot", 405),
        ("POST", "/_harness/snapshot", 409),  # no state file: persistence is off
    ],
)
def test_control_errors_are_json(method: str, path: str, status: int) -> None:
    client, _ = make_app()
    response = client.open(path, method=method)
    assert response.status_code == status
    assert "error" in response.get_json()


def test_aws_paths_that_merely_look_similar_reach_moto() -> None:
    aws = FakeAws()
    client, _ = make_app(aws=aws)
    assert client.get("/_harnessx/health").status_code == 200
    assert aws.seen == [("/_harnessx/health", b"")]


def test_requests_hold_the_gate_and_changes_mark_state_dirty(tmp_path: Path) -> None:
    aws = FakeAws()
    client, runtime = make_app(tmp_path, aws, sync_snapshots=False)
    # buffered: the body is read and closed as a real server does, which is when the gate is left
    assert client.get("/bucket", buffered=True).status_code == 200
    assert aws.gate_users == [1]
    assert runtime.gate.active_requests == 0
    assert not runtime.dirty
    assert client.put("/bucket/key", data=b"x", buffered=True).status_code == 200
    assert runtime.dirty
    assert client.post("/_harness/snapshot").status_code == 200
    assert not runtime.dirty


def test_a_change_is_on_disk_before_it_is_answered(tmp_path: Path) -> None:
    aws = FakeAws()
    client, runtime = make_app(tmp_path, aws)
    assert client.get("/bucket", buffered=True).status_code == 200
    assert not (tmp_path / "state.pickle").exists()  # a read writes nothing
    assert client.put("/bucket/key", data=b"x", buffered=True).status_code == 200
    assert (tmp_path / "state.pickle").exists()
    assert not runtime.dirty
    assert runtime.gate.active_requests == 0
    snapshots = runtime.health()["persistence"]["snapshots"]
    assert client.put("/bucket/key2", data=b"y", buffered=True).status_code == 200
    assert runtime.health()["persistence"]["snapshots"] == snapshots + 1
    assert (tmp_path / "state.pickle.prev").exists()  # the snapshot it replaced


def test_a_change_that_could_not_be_saved_is_not_acknowledged(tmp_path: Path) -> None:
    """Before: the failed snapshot was logged and the request answered 200 — acknowledged, not durable, so
    a SIGKILL lost it. Now the answer is a retryable 503 until a snapshot holds the change."""
    aws = FakeAws()
    client, runtime = make_app(tmp_path, aws)
    blocker = tmp_path / f".state.pickle.tmp-{os.getpid()}"
    blocker.mkdir()  # the snapshot's temporary file cannot be created: the write fails
    refused = client.put("/bucket/key", data=b"x", buffered=True)
    assert refused.status_code == 503
    assert b"ServiceUnavailable" in refused.data and b"could not save this change" in refused.data
    assert refused.headers["Retry-After"] == "1"
    assert runtime.health()["persistence"]["last_error"]
    assert runtime.gate.active_requests == 0
    blocker.rmdir()
    assert client.put("/bucket/key2", data=b"y", buffered=True).status_code == 200
    assert (tmp_path / "state.pickle").exists()
    assert not runtime.dirty  # the earlier change is on disk too


def test_a_crashing_handler_still_leaves_the_gate(tmp_path: Path) -> None:
    client, runtime = make_app(tmp_path)
    with pytest.raises(RuntimeError):
        client.post("/boom")
    assert runtime.gate.active_requests == 0
    assert runtime.dirty


def v1_send(aws: FakeAws, store: CapturedMailStore, params: dict[str, str]) -> Any:
    app = SesCaptureMiddleware(aws, store, "000000000000", "me-south-1")
    body = urlencode(params)
    return Client(app).post(
        "/",
        data=body,
        headers={"Authorization": SES_AUTH},
        content_type="application/x-www-form-urlencoded",
    )


def test_v1_send_details_are_recorded_and_the_body_still_reaches_moto() -> None:
    aws = FakeAws(b"<SendEmailResponse><SendEmailResult><MessageId>m-1</MessageId></SendEmailResult>")
    store = CapturedMailStore()
    params = {
        "Action": "SendEmail",
        "Source": "a@b.test",
        "Message.Body.Text.Data": "plain",
        "Message.Body.Html.Data": "<p>html</p>",
        "ConfigurationSetName": "transactional",
        "Tags.member.1.Name": "idempotency_key",
        "Tags.member.1.Value": "order-1",
        "Tags.member.2.Name": "possible_duplicate",
        "Tags.member.2.Value": "true",
    }
    response = v1_send(aws, store, params)
    assert response.status_code == 200
    assert aws.seen[0][1] == urlencode(params).encode()
    details = store.get("m-1")
    assert details is not None
    assert (details.api, details.action, details.configuration_set) == ("ses", "SendEmail", "transactional")
    assert (details.text, details.html) == ("plain", "<p>html</p>")
    assert dict(details.tags) == {"idempotency_key": "order-1", "possible_duplicate": "true"}


def test_rejected_sends_and_other_actions_are_not_recorded() -> None:
    store = CapturedMailStore()
    rejected = FakeAws(b"<MessageId>m-2</MessageId>", status="400 Bad Request")
    v1_send(rejected, store, {"Action": "SendEmail"})
    v1_send(FakeAws(b"<MessageId>m-3</MessageId>"), store, {"Action": "VerifyEmailIdentity"})
    assert store.get("m-2") is None
    assert store.get("m-3") is None


def test_v2_send_details_are_recorded() -> None:
    aws = FakeAws(json.dumps({"MessageId": "m-4"}).encode())
    store = CapturedMailStore()
    app = SesCaptureMiddleware(aws, store, "000000000000", "me-south-1")
    payload = {
        "FromEmailAddress": "a@b.test",
        "ConfigurationSetName": "cs",
        "EmailTags": [{"Name": "tenant_id", "Value": "t-1"}],
        "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
    }
    Client(app).post("/v2/email/outbound-emails", json=payload)
    details = store.get("m-4")
    assert details is not None
    assert (details.api, details.configuration_set, details.text, details.html) == ("sesv2", "cs", "t", None)
    assert details.tags == (("tenant_id", "t-1"),)


def test_store_export_load_round_trip() -> None:
    store = CapturedMailStore()
    aws = FakeAws(b"<MessageId>a</MessageId><MessageId>b</MessageId>")
    v1_send(aws, store, {"Action": "SendEmail", "Message.Body.Text.Data": "t", "Tags.member.1.Name": "k",
                         "Tags.member.1.Value": "v"})  # fmt: skip
    copy = CapturedMailStore()
    copy.load(json.loads(json.dumps(store.export())))
    assert copy.get("a") == store.get("a")
    assert copy.export() == store.export()
    copy.clear()
    assert copy.get("a") is None


def test_raw_messages_are_parsed_for_the_inbox() -> None:
    raw = "\r\n".join(
        [
            "From: Shop <no-reply@yourdomain.com>",
            "To: Ann <ann@x.test>",
            "Cc: bob@x.test",
            "Subject: Order 42",
            "MIME-Version: 1.0",
            'Content-Type: multipart/alternative; boundary="B"',
            "",
            "--B",
            "Content-Type: text/plain",
            "",
            "plain",
            "--B",
            "Content-Type: text/html",
            "",
            "<p>html</p>",
            "--B--",
            "",
        ]
    )
    fields = _raw_fields(raw, ["Ann <ann@x.test>", "bob@x.test", "hidden@x.test"])
    assert fields["subject"] == "Order 42"
    assert fields["destinations"] == {"to": ["ann@x.test"], "cc": ["bob@x.test"], "bcc": ["hidden@x.test"]}
    assert fields["body"]["text"].strip() == "plain"
    assert fields["body"]["html"].strip() == "<p>html</p>"


def test_listing_renders_templates_and_splits_bulk_sends() -> None:
    import boto3
    from moto import mock_aws

    from harness.emulator.mail import UnknownMessageError, list_captured_mail

    with mock_aws():
        ses = boto3.client("ses", region_name="me-south-1", aws_access_key_id="k", aws_secret_access_key="s")
        ses.verify_domain_identity(Domain="yourdomain.com")
        ses.create_template(
            Template={"TemplateName": "t", "SubjectPart": "Hi {{name}}", "TextPart": "Hello {{name}}"}
        )
        source = "no-reply@yourdomain.com"
        one = ses.send_templated_email(
            Source=source,
            Destination={"ToAddresses": ["ann@x.test"]},
            Template="t",
            TemplateData=json.dumps({"name": "Ann"}),
        )["MessageId"]
        ses.send_bulk_templated_email(
            Source=source,
            Template="t",
            DefaultTemplateData=json.dumps({"name": "everyone"}),
            Destinations=[
                {"Destination": {"ToAddresses": ["b@x.test"]}, "ReplacementTemplateData": '{"name": "B"}'},
                {"Destination": {"ToAddresses": ["c@x.test"]}},
            ],
        )
        store = CapturedMailStore()  # sent in-process, so no request details were captured
        listed = list_captured_mail(store)
        assert [m["subject"] for m in listed] == ["Hi Ann", "Hi B", "Hi everyone"]
        assert listed[0]["id"] == one
        assert listed[0]["body"] == {"text": "Hello Ann", "html": None}
        assert listed[0]["template"] == {"name": "t", "data": '{"name": "Ann"}'}
        assert listed[1]["timestamp"] is None
        assert [m["destinations"]["to"] for m in list_captured_mail(store, to="C@x.test")] == [["c@x.test"]]
        assert [m["subject"] for m in list_captured_mail(store, since_id=one)] == ["Hi B", "Hi everyone"]
        with pytest.raises(UnknownMessageError):
            list_captured_mail(store, since_id="unknown")
