"""The deployed target without AWS: its outputs file, its capabilities, and the SES-events inbox read from an
SQS queue (a moto queue we fill with the events SES would publish for the mailbox simulator)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness.errors import ScenarioError
from harness.scenarios.probes.email import SesEventsInbox, parse_ses_event
from harness.scenarios.targets import Capability, DeployedOutputs

QUEUE = "ses-events"


def ses_event(event_type: str, message_id: str, to: str, subject: str) -> dict[str, Any]:
    """An SES event-publishing record (configuration set -> SNS/SQS), as documented by AWS."""
    return {
        "eventType": event_type,
        "mail": {
            "timestamp": "2026-11-25T16:40:02.848Z",
            "source": "no-reply@yourdomain.com",
            "messageId": message_id,
            "destination": [to],
            "headersTruncated": False,
            "commonHeaders": {"from": ["no-reply@yourdomain.com"], "to": [to], "subject": subject},
            "tags": {"ses:configuration-set": ["saas-staging-transactional"], "tenant_id": ["t-1"]},
        },
        event_type.lower(): {"timestamp": "2026-11-25T16:40:03.100Z"},
    }


def via_sns(event: dict[str, Any]) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(event)})


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("sqs", region_name="me-south-1")
        url = client.create_queue(QueueName=QUEUE)["QueueUrl"]
        yield client, url


def queued(client: Any, url: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_actors_get_mailbox_simulator_addresses(sqs: tuple[Any, str]) -> None:
    inbox = SesEventsInbox(*sqs, wait_seconds=0)
    assert inbox.address_for("acme.Owner-1a2b") == "success+acme-owner-1a2b@simulator.amazonses.com"
    assert inbox.sees_bodies is False


def test_events_for_our_actors_become_messages(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    inbox = SesEventsInbox(client, url, wait_seconds=0)
    buyer = inbox.address_for("acme-buyer-run1")
    donor = inbox.address_for("acme-donor-run1")
    foreign = "success+other-run@simulator.amazonses.com"
    client.send_message(
        QueueUrl=url, MessageBody=via_sns(ses_event("Send", "m-1", buyer, "Order 42 confirmed"))
    )
    client.send_message(
        QueueUrl=url, MessageBody=via_sns(ses_event("Delivery", "m-1", buyer, "Order 42 confirmed"))
    )
    client.send_message(
        QueueUrl=url, MessageBody=json.dumps(ses_event("Send", "m-2", donor, "Donation receipt 7"))
    )
    client.send_message(QueueUrl=url, MessageBody=via_sns(ses_event("Send", "m-3", foreign, "Not ours")))
    client.send_message(QueueUrl=url, MessageBody="garbage")

    [order] = inbox.messages(buyer)
    assert (order.id, order.subject, order.to, order.body) == ("m-1", "Order 42 confirmed", (buyer,), None)
    assert order.events == ("Send", "Delivery")
    assert [m.subject for m in inbox.messages(donor)] == ["Donation receipt 7"]  # raw (not SNS-wrapped) too
    assert inbox.messages(foreign) == []
    # ours were deleted from the queue; another run's event and the garbage stay for their owners
    assert queued(client, url) == 2
    bodies = [m["Body"] for m in client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert any("Not ours" in body for body in bodies)


def test_a_claimed_address_collects_events_sent_before_it_was_asked(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    inbox = SesEventsInbox(client, url, wait_seconds=0)
    inbox.claim(["success+late@simulator.amazonses.com"])
    client.send_message(
        QueueUrl=url,
        MessageBody=via_sns(ses_event("Send", "m-9", "success+late@simulator.amazonses.com", "Hi")),
    )
    assert inbox.drain() == 1
    assert [m.id for m in inbox.messages("SUCCESS+LATE@simulator.amazonses.com")] == ["m-9"]


def test_parse_ses_event_accepts_notifications_too() -> None:
    notification = ses_event("Delivery", "m-5", "a@b", "S")
    notification["notificationType"] = notification.pop("eventType")
    event = parse_ses_event(json.dumps(notification))
    assert event is not None and (event.event_type, event.message_id, event.subject) == (
        "Delivery",
        "m-5",
        "S",
    )
    assert parse_ses_event(json.dumps({"Type": "Notification", "Message": "{}"})) is None


@pytest.mark.parametrize(
    "document",
    [
        {"Stacks": [{"Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://api.x"},
                                 {"OutputKey": "UserPoolId", "OutputValue": "pool"},
                                 {"OutputKey": "UserPoolClientId", "OutputValue": "client"},
                                 {"OutputKey": "Environment", "OutputValue": "staging"},
                                 {"OutputKey": "MediaBucketName", "OutputValue": "bucket"}]}]},
        [{"OutputKey": "ApiUrl", "OutputValue": "https://api.x"}, {"OutputKey": "UserPoolId", "OutputValue": "pool"},
         {"OutputKey": "UserPoolClientId", "OutputValue": "client"}, {"OutputKey": "MediaBucketName", "OutputValue": "bucket"}],
        {"API_URL": "https://api.x", "COGNITO_USER_POOL_ID": "pool", "COGNITO_CLIENT_ID": "client", "S3_BUCKET": "bucket"},
    ],
)  # fmt: skip
def test_outputs_files_in_every_shape(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    outputs = DeployedOutputs.load(path)
    assert (outputs.api_url, outputs.user_pool_id, outputs.client_id, outputs.bucket) == (
        "https://api.x", "pool", "client", "bucket",
    )  # fmt: skip
    assert outputs.environment == "staging"
    spec = outputs.spec()
    assert spec.capabilities == {Capability.OBJECTS}
    assert "SesEventsQueueUrl" in spec.why_not(Capability.EMAIL)
    assert "local-only" in spec.why_not(Capability.DATABASE)


def test_outputs_missing_a_required_value(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"ApiUrl": "https://api.x"}))
    with pytest.raises(
        ScenarioError, match=r"lack user_pool_id: UserPoolId or COGNITO_USER_POOL_ID; client_id"
    ):
        DeployedOutputs.load(path)
    path.write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        DeployedOutputs.load(path)


def test_optional_outputs_add_capabilities(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "ApiUrl": "https://api.x", "UserPoolId": "p", "UserPoolClientId": "c",
                "SesEventsQueueUrl": "https://sqs/q", "RedisUrl": "redis://tunnel:6379/0",
                "TenantBaseDomain": "staging.yourdomain.com",
            }
        )
    )  # fmt: skip
    spec = DeployedOutputs.load(path).spec()
    assert spec.capabilities == {Capability.EMAIL, Capability.REDIS, Capability.SUBDOMAIN}
    assert not spec.can(Capability.TASKS) and not spec.can(Capability.EMAIL_BODY)
