"""Transactional emails: rendering (pure) and sending through SES with the configuration set."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from app.aws import ses_client
from app.settings import get_settings

# SES error codes worth retrying; anything else (e.g. MessageRejected) will not succeed on a retry.
TRANSIENT_SES_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestTimeout"}
)


class EmailError(Exception):
    """Sending failed for good (the task is not retried)."""


class TransientEmailError(EmailError):
    """Sending failed in a way a retry may fix (throttling, network)."""


class AmbiguousSendError(TransientEmailError):
    """The request reached SES but no answer came back (connection dropped or timed out while reading): SES
    may have accepted it. A retry is the only way not to lose the email, and may deliver it twice."""


# The request never left: connecting failed, so SES cannot have accepted anything.
_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    idempotency_key: str  # stable per business event, e.g. `order-confirmation-<order id>`
    tenant_id: str


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def order_confirmation(
    *,
    tenant_id: str,
    tenant_name: str,
    order_id: str,
    to: str,
    items: list[dict[str, Any]],
    total_cents: int,
    currency: str,
) -> Email:
    lines = [
        f"  {item['qty']} x {item['name']} ({item['sku']}) @ {_money(item['unit_price_cents'], currency)}"
        for item in items
    ]
    text = "\n".join(
        [
            f"Thank you for your order at {tenant_name}.",
            "",
            f"Order: {order_id}",
            *lines,
            f"Total: {_money(total_cents, currency)}",
        ]
    )
    return Email(
        to=to,
        subject=f"Order {order_id} confirmed - {tenant_name}",
        text=text,
        idempotency_key=f"order-confirmation-{order_id}",
        tenant_id=tenant_id,
    )


def donation_receipt(
    *, tenant_id: str, tenant_name: str, donation_id: str, to: str, amount_cents: int, currency: str
) -> Email:
    text = "\n".join(
        [
            f"Thank you for your donation to {tenant_name}.",
            "",
            f"Receipt: {donation_id}",
            f"Amount: {_money(amount_cents, currency)}",
        ]
    )
    return Email(
        to=to,
        subject=f"Donation receipt {donation_id} - {tenant_name}",
        text=text,
        idempotency_key=f"donation-receipt-{donation_id}",
        tenant_id=tenant_id,
    )


def invite(
    *, tenant_id: str, tenant_name: str, invite_id: str, to: str, role: str, token: str, api_url: str
) -> Email:
    text = "\n".join(
        [
            f"You have been invited to join {tenant_name} as {role}.",
            "",
            "Sign in, then accept the invite:",
            f"  POST {api_url.rstrip('/')}/api/v1/invites/accept",
            f"Invite token: {token}",
        ]
    )
    return Email(
        to=to,
        subject=f"You're invited to {tenant_name}",
        text=text,
        idempotency_key=f"invite-{invite_id}",
        tenant_id=tenant_id,
    )


def _tag_value(value: str) -> str:
    # SES message tags admit only ASCII letters, digits, '_' and '-'.
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)[:256]


def send(email: Email, *, possible_duplicate: bool = False) -> str:
    """Send through SES (with the configuration set, for delivery events); returns SES's MessageId.

    `possible_duplicate`: an earlier attempt may have been accepted (`AmbiguousSendError`); the message is
    tagged `possible_duplicate=true`, so SES's events (and a reader of the captured mail) can tell it apart.
    """
    settings = get_settings()
    request: dict[str, Any] = {
        "Source": settings.ses_sender,
        "Destination": {"ToAddresses": [email.to]},
        "Message": {
            "Subject": {"Data": email.subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": email.text, "Charset": "UTF-8"}},
        },
        "Tags": [
            {"Name": "idempotency_key", "Value": _tag_value(email.idempotency_key)},
            {"Name": "tenant_id", "Value": _tag_value(email.tenant_id)},
        ],
    }
    if possible_duplicate:
        request["Tags"].append({"Name": "possible_duplicate", "Value": "true"})
    if settings.ses_configuration_set:
        request["ConfigurationSetName"] = settings.ses_configuration_set
    try:
        response = ses_client().send_email(**request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in TRANSIENT_SES_CODES:
            raise TransientEmailError(f"SES {code}: {exc}") from exc
        raise EmailError(f"SES refused the email ({code}): {exc}") from exc
    except _NOT_SENT as exc:  # connection refused or not made: the endpoint may come back
        raise TransientEmailError(f"SES unreachable: {exc}") from exc
    except (HTTPClientError, ReadTimeoutError) as exc:  # sent, then the connection dropped or went silent
        raise AmbiguousSendError(f"SES did not answer (it may have accepted the email): {exc}") from exc
    except BotoCoreError as exc:
        raise TransientEmailError(f"SES unreachable: {exc}") from exc
    return str(response["MessageId"])
