"""The SES event destination of a deployed stack, for the rehearsal's local app stack.

On AWS the configuration set publishes each send and delivery to SNS, and SNS to the `SesEventsQueue` the gate
reads (`SesEventsQueueUrl`). The local emulator captures mail instead; `SesEventRelay` turns each captured
message into the same `Send` and `Delivery` events on an SQS queue of the local emulator, so the gate's
scenarios observe mail on the rehearsal exactly as they do on AWS (recipients and subject, never bodies).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from harness.scenarios.probes.email import LocalInbox

POLL_SECONDS = 0.3
QUEUE_NAME = "rehearsal-ses-events"


class SesEventRelay:
    """Polls the local emulator's captured mail and publishes SES events for new messages to a queue."""

    def __init__(self, sqs: Any, aws_endpoint_url: str) -> None:
        self.sqs = sqs
        self.inbox = LocalInbox(aws_endpoint_url)
        self.queue_url = str(sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"])
        self._seen: set[str] = {str(e.get("id")) for e in self.inbox.entries()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ses-event-relay", daemon=True)
        self.relayed = 0

    def start(self) -> SesEventRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.inbox.close()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.relay_once()
            except Exception:  # the emulator going away at the end of a rehearsal ends the relay's work
                if self._stop.is_set():
                    return

    def relay_once(self) -> int:
        """Publish events for the messages captured since the last call; how many messages."""
        fresh = [e for e in self.inbox.entries() if str(e.get("id")) not in self._seen]
        for entry in fresh:
            self._seen.add(str(entry.get("id")))
            for event_type in ("Send", "Delivery"):
                self.sqs.send_message(
                    QueueUrl=self.queue_url, MessageBody=json.dumps(ses_event(entry, event_type))
                )
        self.relayed += len(fresh)
        return len(fresh)


def ses_event(entry: dict[str, Any], event_type: str) -> dict[str, Any]:
    """An SES event-publishing record (the JSON SES sends to SNS) for one captured message."""
    destinations = entry.get("destinations") or {}
    recipients = [a for kind in ("to", "cc", "bcc") for a in destinations.get(kind, [])]
    mail = {
        "messageId": str(entry.get("id", "")),
        "source": str(entry.get("source") or ""),
        "destination": recipients,
        "commonHeaders": {"subject": str(entry.get("subject") or ""), "to": list(destinations.get("to", []))},
        "tags": {"ses:configuration-set": [str(entry.get("configuration_set") or "")]},
    }
    event: dict[str, Any] = {"eventType": event_type, "mail": mail}
    if event_type == "Delivery":
        event["delivery"] = {"recipients": recipients}
    return event
