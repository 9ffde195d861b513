"""The email probe: which messages the app sent to an actor.

- `LocalInbox` reads the AWS emulator's captured mail (`GET {AWS_ENDPOINT_URL}/_harness/ses/messages`):
  recipients, subject and body.
- `SesEventsInbox` is for a deployed stack: actors get SES mailbox-simulator addresses
  (`success+<label>@simulator.amazonses.com`, always delivered, never a real mailbox), and the configuration
  set's event destination (SNS -> SQS, or SQS directly) tells us what was sent and delivered: recipients and
  subject (SES events carry the headers, never the body).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from harness.errors import ScenarioError

SIMULATOR_DOMAIN = "simulator.amazonses.com"
LOCAL_ACTOR_DOMAIN = "scenarios.test"  # a reserved TLD: nothing can ever be delivered there
_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Mail:
    """One message as the probe saw it; `body` is None where the target cannot see bodies."""

    id: str
    to: tuple[str, ...]
    subject: str
    body: str | None
    source: str = ""
    events: tuple[str, ...] = ()

    def outcome(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": list(self.to),
            "subject": self.subject,
            "body": self.body,
            "source": self.source,
        }


class Inbox(Protocol):
    """The email probe's interface."""

    sees_bodies: bool

    def address_for(self, label: str) -> str:
        """The address a new actor gets, so that mail to it can be observed."""
        ...

    def messages(self, to: str) -> list[Mail]:
        """Messages sent to `to` so far, oldest first."""
        ...


def _label(label: str) -> str:
    return _LABEL.sub("-", label.lower()).strip("-")[:48] or "actor"


class LocalInbox:
    """The emulator's captured mail."""

    sees_bodies = True

    def __init__(self, aws_endpoint_url: str, timeout: float = 10.0) -> None:
        self.url = aws_endpoint_url.rstrip("/") + "/_harness/ses/messages"
        self._http = httpx.Client(timeout=timeout)

    def address_for(self, label: str) -> str:
        return f"{_label(label)}@{LOCAL_ACTOR_DOMAIN}"

    def messages(self, to: str) -> list[Mail]:
        return [_captured(entry) for entry in self.entries(to)]

    def entries(self, to: str | None = None) -> list[dict[str, Any]]:
        """The emulator's captured-mail entries as JSON (harness/emulator/mail.py), oldest first; also
        what `harness mail` (harness/devloop/mail.py) reads."""
        response = self._http.get(self.url, params={"to": to} if to else None)
        if response.status_code != 200:
            raise ScenarioError(
                f"the emulator's mail capture answered {response.status_code} at {self.url}: {response.text[:200]}"
            )
        entries: list[dict[str, Any]] = response.json()
        return entries

    def close(self) -> None:
        self._http.close()


def _captured(entry: dict[str, Any]) -> Mail:
    destinations = entry.get("destinations") or {}
    to = [address for kind in ("to", "cc", "bcc") for address in destinations.get(kind, [])]
    body = entry.get("body") or {}
    return Mail(
        id=str(entry.get("id", "")),
        to=tuple(a.lower() for a in to),
        subject=str(entry.get("subject") or ""),
        body=str(body.get("text") or body.get("html") or ""),
        source=str(entry.get("source") or ""),
        events=("Send",),
    )


@dataclass
class _Seen:
    mail: Mail
    events: list[str] = field(default_factory=list)


class SesEventsInbox:
    """SES events of the configuration set, read from an SQS queue (SNS-wrapped or raw)."""

    sees_bodies = False

    def __init__(self, sqs: Any, queue_url: str, *, wait_seconds: int = 1, max_batches: int = 10) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.wait_seconds = wait_seconds
        self.max_batches = max_batches
        self._claimed: set[str] = set()
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def address_for(self, label: str) -> str:
        address = f"success+{_label(label)}@{SIMULATOR_DOMAIN}"
        with self._lock:
            self._claimed.add(address)
        return address

    def claim(self, addresses: Iterable[str]) -> None:
        """Events for these recipients are ours: kept here and deleted from the queue."""
        with self._lock:
            self._claimed.update(a.lower() for a in addresses)

    def messages(self, to: str) -> list[Mail]:
        self.drain()
        wanted = to.lower()
        with self._lock:
            found = [seen for seen in self._seen.values() if wanted in seen.mail.to]
        return [
            Mail(s.mail.id, s.mail.to, s.mail.subject, None, s.mail.source, tuple(s.events)) for s in found
        ]

    def drain(self) -> int:
        """Read what the queue holds now; returns how many events were ours."""
        ours = 0
        for _ in range(self.max_batches):
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self.wait_seconds,
                VisibilityTimeout=30,
            )
            batch = response.get("Messages", [])
            if not batch:
                break
            mine, others = [], []
            for message in batch:
                event = parse_ses_event(message.get("Body", ""))
                if event is not None and self._record(event):
                    mine.append(message)
                else:
                    others.append(message)
            ours += len(mine)
            if mine:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(mine)],
                )
            if others:
                # Not ours (another run on the same stack): visible again at once for its owner.
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(others)
                    ],
                )
            if not mine:
                break
        return ours

    def _record(self, event: SesEvent) -> bool:
        with self._lock:
            if not self._claimed.intersection(event.destinations):
                return False
            seen = self._seen.get(event.message_id)
            if seen is None:
                mail = Mail(event.message_id, event.destinations, event.subject, None, event.source)
                seen = self._seen[event.message_id] = _Seen(mail)
            if event.event_type not in seen.events:
                seen.events.append(event.event_type)
            return True


@dataclass(frozen=True)
class SesEvent:
    event_type: str  # Send, Delivery, Bounce, Complaint, Reject, ...
    message_id: str
    destinations: tuple[str, ...]
    subject: str
    source: str
    tags: dict[str, Sequence[str]]


def parse_ses_event(body: str) -> SesEvent | None:
    """An SES event (configuration-set event publishing or identity notification), SNS-wrapped or raw."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
        try:
            document = json.loads(document["Message"])
        except (TypeError, ValueError):
            return None
    if not isinstance(document, dict) or not isinstance(document.get("mail"), dict):
        return None
    mail = document["mail"]
    headers = mail.get("commonHeaders") or {}
    event_type = document.get("eventType") or document.get("notificationType") or "Unknown"
    return SesEvent(
        event_type=str(event_type),
        message_id=str(mail.get("messageId", "")),
        destinations=tuple(str(d).lower() for d in mail.get("destination", [])),
        subject=str(headers.get("subject") or ""),
        source=str(mail.get("source") or ""),
        tags={str(k): tuple(v) for k, v in (mail.get("tags") or {}).items()},
    )
