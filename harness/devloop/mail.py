"""Captured mail for people: list, show (text / html / raw), the links in a message, clear.

One reader: `LocalInbox.entries` of the email probe (harness/scenarios/probes/email.py), which reads the
emulator's `/_harness/ses/messages` (harness/emulator/mail.py). The CLI (`harness mail`) and the web console
render what these functions return.

    endpoint = runner.admin_connections()[2].url
    for mail in list_mail(endpoint, to="olivia.owner@acme.test"):
        print(mail.id, mail.subject, links(show_mail(endpoint, mail.id)))
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from harness.errors import HarnessError
from harness.scenarios.probes.email import LocalInbox

_URL = re.compile(r"""https?://[^\s"'<>\])]+""")
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
PART_NAMES = ("text", "html", "raw")


@dataclass(frozen=True)
class MailMessage:
    """One captured message: the listing fields and both bodies (`raw` only for raw sends)."""

    id: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    sender: str
    subject: str
    timestamp: str | None
    text: str | None
    html: str | None
    raw: str | None
    configuration_set: str | None

    def summary(self) -> dict[str, Any]:
        """The `harness mail list --json` entry."""
        return {
            "id": self.id,
            "to": list(self.to),
            "cc": list(self.cc),
            "bcc": list(self.bcc),
            "from": self.sender,
            "subject": self.subject,
            "timestamp": self.timestamp,
            "links": links(self),
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "text": self.text, "html": self.html, "raw": self.raw}


def _message(entry: dict[str, Any]) -> MailMessage:
    destinations = entry.get("destinations") or {}
    body = entry.get("body") or {}
    return MailMessage(
        id=str(entry.get("id", "")),
        to=tuple(destinations.get("to") or ()),
        cc=tuple(destinations.get("cc") or ()),
        bcc=tuple(destinations.get("bcc") or ()),
        sender=str(entry.get("source") or ""),
        subject=str(entry.get("subject") or ""),
        timestamp=entry.get("timestamp"),
        text=body.get("text"),
        html=body.get("html"),
        raw=entry.get("raw_data"),
        configuration_set=entry.get("configuration_set"),
    )


def _inbox(endpoint: str) -> LocalInbox:
    return LocalInbox(endpoint)


def list_mail(endpoint: str, to: str | None = None) -> list[MailMessage]:
    """Every captured message (to `to` in to/cc/bcc, when given), oldest first."""
    inbox = _inbox(endpoint)
    try:
        return [_message(entry) for entry in inbox.entries(to)]
    except httpx.HTTPError as exc:
        raise HarnessError(
            f"the AWS emulator at {endpoint} did not answer ({exc})", hint="run `harness up` first"
        ) from exc
    finally:
        inbox.close()


def show_mail(endpoint: str, message_id: str) -> MailMessage:
    """One message by id (a prefix of at least 6 characters is enough when it is unambiguous)."""
    messages = list_mail(endpoint)
    exact = [m for m in messages if m.id == message_id]
    found = exact or ([m for m in messages if m.id.startswith(message_id)] if len(message_id) >= 6 else [])
    if len(found) == 1:
        return found[0]
    if not found:
        raise HarnessError(
            f"no captured message has id {message_id!r} ({len(messages)} captured)",
            hint="`harness mail list` shows the ids",
        )
    raise HarnessError(
        f"{len(found)} messages have ids starting with {message_id!r}", hint="give more of the id"
    )


def part(message: MailMessage, name: str) -> str:
    """The `text`, `html` or `raw` form of a message; `raw` is the RFC 5322 source (rebuilt when the app
    sent a simple, not a raw, email) and `text` falls back to the HTML with its tags removed."""
    if name == "html":
        if message.html is None:
            raise HarnessError(f"message {message.id} has no HTML part", hint="use --text or --raw")
        return message.html
    if name == "raw":
        return message.raw if message.raw is not None else _rebuilt_raw(message)
    if name == "text":
        if message.text is not None:
            return message.text
        if message.html is not None:
            return html.unescape(re.sub(r"<[^>]+>", "", message.html))
        return ""
    raise HarnessError(f"unknown part {name!r}", hint=f"one of {', '.join(PART_NAMES)}")


def parts(message: MailMessage) -> dict[str, str]:
    """Every form of the message that it has: {"text": ..., "html": ..., "raw": ...}."""
    found = {"text": part(message, "text"), "raw": part(message, "raw")}
    if message.html is not None:
        found["html"] = message.html
    return found


def links(message: MailMessage) -> list[str]:
    """The URLs in a message (text part, then the HTML's hrefs and text), deduplicated, in order."""
    found: dict[str, None] = {}
    for source in (message.text or "", message.html or ""):
        for url in [*_HREF.findall(source), *_URL.findall(source)]:
            url = html.unescape(url).rstrip(".,;:")
            if url.startswith(("http://", "https://")):
                found.setdefault(url, None)
    return list(found)


def clear_mail(endpoint: str) -> int:
    """Forget every captured message; returns how many there were."""
    url = endpoint.rstrip("/") + "/_harness/ses/messages"
    try:
        response = httpx.delete(url, timeout=30)
    except httpx.HTTPError as exc:
        raise HarnessError(
            f"the AWS emulator at {endpoint} did not answer ({exc})", hint="run `harness up` first"
        ) from exc
    if response.status_code != 200:
        raise HarnessError(f"clearing mail: {url} answered {response.status_code}: {response.text[:200]}")
    return int(response.json().get("cleared", 0))


def _rebuilt_raw(message: MailMessage) -> str:
    mime = EmailMessage()
    mime["Message-ID"] = f"<{message.id}@email.amazonses.com>"
    mime["From"] = message.sender
    if message.to:
        mime["To"] = ", ".join(message.to)
    if message.cc:
        mime["Cc"] = ", ".join(message.cc)
    mime["Subject"] = message.subject
    if message.timestamp:
        mime["X-Harness-Captured-At"] = message.timestamp
    mime.set_content(message.text or "")
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime.as_string()
