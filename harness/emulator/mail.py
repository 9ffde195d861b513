"""Captured mail: what moto's SES (v1 and v2) accepted for sending, listed as JSON for the local inbox.

moto keeps every accepted message in `SESBackend.sent_messages`, but drops the configuration set, the send
time, and the text body when an HTML body is present. `SesCaptureMiddleware` records those from the request
(keyed by the MessageId in the response) in a `CapturedMailStore`, which is snapshotted and reset together
with the backends, and `list_captured_mail` merges both.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

SES_V1_SEND_ACTIONS = frozenset({"SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail"})
SES_V2_SEND_PATH = "/v2/email/outbound-emails"
SES_SIGNING_NAMES = frozenset({"ses", "email"})
MAX_CAPTURED_REQUEST_BYTES = 50 * 1024 * 1024  # above SES's 40 MB raw message limit
_MESSAGE_ID_XML = re.compile(rb"<MessageId>([^<]+)</MessageId>")


@dataclass(frozen=True)
class SendDetails:
    """What moto forgets about one accepted send, recorded from the request."""

    message_id: str
    sequence: int
    timestamp: float
    api: str  # "ses" (v1) or "sesv2"
    action: str  # the SES operation, e.g. "SendEmail", "SendRawEmail"
    configuration_set: str | None
    text: str | None
    html: str | None
    # a bulk send: moto stores one message under its own id but returns one id per destination
    bulk_ids: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # the message tags (SES puts them on its send events)


@dataclass(frozen=True)
class _SendRequest:
    api: str
    action: str
    configuration_set: str | None
    text: str | None
    html: str | None
    tags: tuple[tuple[str, str], ...] = ()


class CapturedMailStore:
    """The send details of every captured message, in capture order. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._details: dict[str, SendDetails] = {}
        self._next_sequence = 1

    def record(self, message_ids: Iterable[str], request: _SendRequest, bulk_ids: Iterable[str] = ()) -> None:
        """Remember the details of a successful send."""
        now = time.time()
        with self._lock:
            for message_id in message_ids:
                self._details[message_id] = SendDetails(
                    message_id=message_id,
                    sequence=self._next_sequence,
                    timestamp=now,
                    api=request.api,
                    action=request.action,
                    configuration_set=request.configuration_set,
                    text=request.text,
                    html=request.html,
                    bulk_ids=tuple(bulk_ids),
                    tags=request.tags,
                )
                self._next_sequence += 1

    def get(self, message_id: str) -> SendDetails | None:
        """The details recorded for a message, if any."""
        with self._lock:
            return self._details.get(message_id)

    def clear(self) -> None:
        """Forget everything (after a reset of the backends)."""
        with self._lock:
            self._details.clear()
            self._next_sequence = 1

    def export(self) -> dict[str, Any]:
        """Plain data for the state file (no classes, so renaming one never breaks old state files)."""
        with self._lock:
            return {
                "next_sequence": self._next_sequence,
                "messages": [asdict(details) for details in self._details.values()],
            }

    def load(self, exported: dict[str, Any]) -> None:
        """Replace the contents with what `export` returned (unknown fields are ignored)."""
        fields = set(SendDetails.__dataclass_fields__)
        with self._lock:
            self._details = {}
            for item in exported.get("messages", []):
                known = {key: value for key, value in item.items() if key in fields}
                known["bulk_ids"] = tuple(known.get("bulk_ids") or ())
                known["tags"] = tuple((str(name), str(value)) for name, value in known.get("tags") or ())
                self._details[item["message_id"]] = SendDetails(**known)
            self._next_sequence = int(exported.get("next_sequence", len(self._details) + 1))


class SesCaptureMiddleware:
    """Records the send details of SES v1/v2 send requests that moto accepted.

    `account_id` and `default_region` locate moto's SES backend for bulk sends (see `_record_bulk`).
    """

    def __init__(
        self, app: WSGIApplication, store: CapturedMailStore, account_id: str, default_region: str
    ) -> None:
        self.app = app
        self.store = store
        self.account_id = account_id
        self.default_region = default_region

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _parse_send_request(environ)
        if request is None:
            return self.app(environ, start_response)
        statuses: list[str] = []

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if statuses and statuses[-1].startswith("200"):
            if request.action == "SendBulkTemplatedEmail":
                self._record_bulk(environ, request, _message_ids(body, request.api))
            else:
                self.store.record(_message_ids(body, request.api), request)
        return [body]

    def _record_bulk(self, environ: WSGIEnvironment, request: _SendRequest, returned: list[str]) -> None:
        """moto stores a bulk send as one TemplateMessage under an id it never returns: find that one."""
        from moto.ses.models import TemplateMessage, ses_backends

        region = _signing_region(environ) or self.default_region
        backend = dict.get(dict.get(ses_backends, self.account_id) or {}, region)
        for message in reversed(list(getattr(backend, "sent_messages", []))):
            is_bulk = isinstance(message, TemplateMessage) and isinstance(message.destinations, list)
            if is_bulk and self.store.get(message.id) is None:
                self.store.record([message.id], request, bulk_ids=returned)
                return


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """The request body, leaving an equivalent stream in the environ for the next app."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if length <= 0 or length > MAX_CAPTURED_REQUEST_BYTES:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _credential_scope(environ: WSGIEnvironment) -> tuple[str, str] | None:
    # "AWS4-HMAC-SHA256 Credential=KEY/20260101/me-south-1/ses/aws4_request, SignedHeaders=..."
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = re.search(r"Credential=[^/,]+/[^/]+/([^/]+)/([^/]+)/", auth)
    return (match.group(1), match.group(2)) if match else None


def _signing_service(environ: WSGIEnvironment) -> str | None:
    scope = _credential_scope(environ)
    return scope[1] if scope else None


def _signing_region(environ: WSGIEnvironment) -> str | None:
    scope = _credential_scope(environ)
    return scope[0] if scope else None


def _parse_send_request(environ: WSGIEnvironment) -> _SendRequest | None:
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    path = str(environ.get("PATH_INFO", "")).rstrip("/")
    if path == SES_V2_SEND_PATH:
        body = _read_body(environ)
        return None if body is None else _parse_v2_request(body)
    if not str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        return None
    service = _signing_service(environ)
    if service is not None and service not in SES_SIGNING_NAMES:
        return None
    body = _read_body(environ)
    return None if body is None else _parse_v1_request(body)


def _parse_v1_request(body: bytes) -> _SendRequest | None:
    params = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    action = params.get("Action")
    if action not in SES_V1_SEND_ACTIONS:
        return None
    return _SendRequest(
        api="ses",
        action=action,
        configuration_set=params.get("ConfigurationSetName"),
        text=params.get("Message.Body.Text.Data"),
        html=params.get("Message.Body.Html.Data"),
        tags=tuple(
            (params[f"Tags.member.{n}.Name"], params.get(f"Tags.member.{n}.Value", ""))
            for n in range(1, 51)
            if f"Tags.member.{n}.Name" in params
        ),
    )


def _parse_v2_request(body: bytes) -> _SendRequest | None:
    try:
        params = json.loads(body)
    except ValueError:
        return None
    if not isinstance(params, dict):
        return None
    content = params.get("Content") or {}
    simple_body = (content.get("Simple") or {}).get("Body") or {}
    return _SendRequest(
        api="sesv2",
        action="SendEmail",
        configuration_set=params.get("ConfigurationSetName"),
        text=(simple_body.get("Text") or {}).get("Data"),
        html=(simple_body.get("Html") or {}).get("Data"),
        tags=tuple(
            (str(tag.get("Name", "")), str(tag.get("Value", "")))
            for tag in params.get("EmailTags") or ()
            if isinstance(tag, dict)
        ),
    )


def _message_ids(body: bytes, api: str) -> list[str]:
    if api == "sesv2":
        try:
            return [str(json.loads(body)["MessageId"])]
        except (ValueError, KeyError, TypeError):
            return []
    return [match.decode() for match in _MESSAGE_ID_XML.findall(body)]


# -- listing ---------------------------------------------------------------------------------------------


def _addresses(values: Iterable[str]) -> list[str]:
    """Deduplicated bare addresses ("Name <a@b>" -> "a@b"), in order."""
    seen: dict[str, None] = {}
    for _, address in getaddresses([str(value) for value in values]):
        if address:
            seen.setdefault(address, None)
    return list(seen)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _part(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body((subtype,))
    if part is None:
        return None
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        return None


def _raw_fields(raw_data: str, envelope: list[str]) -> dict[str, Any]:
    parsed = email.message_from_string(raw_data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    to = _addresses(parsed.get_all("To", []))
    cc = _addresses(parsed.get_all("Cc", []))
    shown = {address.lower() for address in to + cc}
    bcc = [address for address in _addresses(envelope) if address.lower() not in shown]
    return {
        "subject": parsed.get("Subject"),
        "destinations": {"to": to, "cc": cc, "bcc": bcc},
        "body": {"text": _part(parsed, "plain"), "html": _part(parsed, "html")},
    }


def _destinations(destination: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "to": _addresses(destination.get("ToAddresses") or []),
        "cc": _addresses(destination.get("CcAddresses") or []),
        "bcc": _addresses(destination.get("BccAddresses") or []),
    }


def _rendered_template(backend: Any, name: str, data: str) -> dict[str, str | None]:
    """Subject and bodies of an SES template rendered with moto's own renderer (None where it fails)."""
    from moto.ses.template import parse_template

    template = backend.templates.get(name) or {}
    try:
        values = json.loads(data or "{}")
    except ValueError:
        values = None
    rendered: dict[str, str | None] = {}
    for field, key in (("subject", "subject_part"), ("text", "text_part"), ("html", "html_part")):
        part = template.get(key)
        try:
            rendered[field] = None if not part or values is None else parse_template(str(part), values)
        except Exception:  # a template moto cannot render is listed unrendered
            rendered[field] = None
    return rendered


def _entries_of(message: Any, backend: Any, details: SendDetails | None) -> Iterator[dict[str, Any]]:
    """One listing entry per message id (a bulk templated send has one id per destination)."""
    from moto.ses.models import Message, RawMessage, TemplateMessage

    base: dict[str, Any] = {"source": message.source, "raw_data": None, "template": None}
    if isinstance(message, Message):
        yield {
            **base,
            "id": message.id,
            "subject": message.subject,
            "destinations": _destinations(message.destinations or {}),
            # moto keeps only one body (HTML if both were sent); the captured request has both
            "body": {"text": message.body, "html": None},
        }
    elif isinstance(message, RawMessage):
        yield {
            **base,
            "id": message.id,
            "raw_data": message.raw_data,
            **_raw_fields(message.raw_data, message.destinations),
        }
    elif isinstance(message, TemplateMessage) and isinstance(message.destinations, list):
        ids = list(details.bulk_ids) if details else []
        if len(ids) != len(message.destinations):
            ids = [f"{message.id}-{index}" for index in range(len(message.destinations))]
        for message_id, destination in zip(ids, message.destinations, strict=True):
            data = destination.get("ReplacementTemplateData") or message.template_data
            yield _template_entry(
                base, message_id, backend, message.template, data, destination["Destination"]
            )
    elif isinstance(message, TemplateMessage):
        yield _template_entry(
            base, message.id, backend, message.template, message.template_data, message.destinations
        )


def _template_entry(
    base: dict[str, Any], message_id: str, backend: Any, template: str, data: str, destination: dict[str, Any]
) -> dict[str, Any]:
    rendered = _rendered_template(backend, template, data)
    return {
        **base,
        "id": message_id,
        "subject": rendered["subject"],
        "destinations": _destinations(destination or {}),
        "body": {"text": rendered["text"], "html": rendered["html"]},
        "template": {"name": template, "data": data},
    }


class UnknownMessageError(LookupError):
    """`since_id` names no captured message."""


def list_captured_mail(
    store: CapturedMailStore, *, to: str | None = None, since_id: str | None = None
) -> list[dict[str, Any]]:
    """Every message moto's SES accepted, oldest first, as JSON-ready dicts.

    Each has: id, api, action, account_id, region, timestamp (ISO 8601 UTC), source, destinations
    (to/cc/bcc, bare addresses), subject, body (text/html), raw_data (raw sends), template (templated
    sends), configuration_set, tags (the message tags, name -> value). `to` keeps messages with that recipient in to, cc or bcc (case-insensitive);
    `since_id` keeps only messages captured after that one and raises `UnknownMessageError` if unknown.
    Call it with the request gate held shared so no send is half-recorded.
    """
    from moto.ses.models import ses_backends

    entries: list[dict[str, Any]] = []
    for account_id, per_account in list(dict.items(ses_backends)):
        for region, backend in list(dict.items(per_account)):
            for message in list(backend.sent_messages):
                details = store.get(message.id)
                for entry in _entries_of(message, backend, details):
                    entry.update(account_id=account_id, region=region)
                    entry.update(_details_fields(details, entry))
                    entries.append(entry)
    # messages without details (none are expected) keep their relative order at the end
    entries.sort(key=lambda entry: entry.pop("_sequence"))
    if since_id is not None:
        ids = [entry["id"] for entry in entries]
        if since_id not in ids:
            raise UnknownMessageError(since_id)
        entries = entries[ids.index(since_id) + 1 :]
    if to is not None:
        wanted = parseaddr(to)[1].lower() or to.lower()
        entries = [
            entry
            for entry in entries
            if any(
                wanted == address.lower()
                for kind in ("to", "cc", "bcc")
                for address in entry["destinations"][kind]
            )
        ]
    return entries


def _details_fields(details: SendDetails | None, entry: dict[str, Any]) -> dict[str, Any]:
    if details is None:
        return {
            "_sequence": float("inf"),
            "api": None,
            "action": None,
            "timestamp": None,
            "configuration_set": None,
            "tags": {},
        }
    fields: dict[str, Any] = {
        "_sequence": details.sequence,
        "api": details.api,
        "action": details.action,
        "timestamp": _iso(details.timestamp),
        "configuration_set": details.configuration_set,
        "tags": dict(details.tags),
    }
    if entry["raw_data"] is None and entry["template"] is None:
        fields["body"] = {"text": details.text, "html": details.html}
    return fields
