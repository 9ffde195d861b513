"""What the fault suite keeps in flight (orders, donations, invites, uploads, Cognito sign-ups) and how it
checks afterwards that nothing acknowledged was lost and every intended email went out exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

CLIENT_TIMEOUT = 8.0


@dataclass
class Actors:
    """A fresh tenant: an admin (who invites) and a member (who orders, donates and uploads)."""

    tenant_id: str
    slug: str
    api_url: str
    admin_token: str
    member_token: str

    def client(self, token: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}", "X-Tenant": self.slug}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=CLIENT_TIMEOUT)


@dataclass
class Acknowledged:
    orders: list[str] = field(default_factory=list)
    donations: list[str] = field(default_factory=list)
    invites: dict[str, str] = field(default_factory=dict)  # invite id -> invitee email
    objects: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # an error answer or a transport error

    @property
    def total(self) -> int:
        return (
            len(self.orders) + len(self.donations) + len(self.invites) + len(self.objects) + len(self.users)
        )


class Workload:
    """Threads issuing requests back to back until stopped; records what was acknowledged."""

    def __init__(self, actors: Actors, cognito: Any, pool_id: str, threads: int = 2) -> None:
        self.actors = actors
        self.cognito = cognito
        self.pool_id = pool_id
        self.threads = threads
        self.ack = Acknowledged()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=CLIENT_TIMEOUT * 3)

    def _run(self, n: int) -> None:
        member = self.actors.client(self.actors.member_token)
        admin = self.actors.client(self.actors.admin_token)
        steps = (self._order, self._donation, self._invite, self._upload, self._sign_up)
        i = n
        while not self._stop.is_set():
            step = steps[i % len(steps)]
            i += 1
            name = step.__name__.strip("_")
            with self._lock:
                self.ack.attempts[name] += 1
            try:
                step(member, admin)
            except Exception:  # an outage: refused, reset, timed out or an error answer — not acknowledged
                with self._lock:
                    self.ack.refused[name] += 1
                time.sleep(0.05)

    def _order(self, member: httpx.Client, _: httpx.Client) -> None:
        response = member.post("/api/v1/orders", json={"items": [{"sku": "FAULT", "qty": 1}]})
        response.raise_for_status()
        with self._lock:
            self.ack.orders.append(response.json()["id"])

    def _donation(self, member: httpx.Client, _: httpx.Client) -> None:
        response = member.post("/api/v1/donations", json={"amount_cents": 100, "currency": "USD"})
        response.raise_for_status()
        with self._lock:
            self.ack.donations.append(response.json()["id"])

    def _invite(self, _: httpx.Client, admin: httpx.Client) -> None:
        email = f"invitee-{uuid.uuid4().hex[:10]}@faults.test"
        response = admin.post("/api/v1/invites", json={"email": email, "role": "member"})
        response.raise_for_status()
        with self._lock:
            self.ack.invites[response.json()["id"]] = email

    def _upload(self, member: httpx.Client, _: httpx.Client) -> None:
        response = member.post("/api/v1/media", json={"filename": "f.txt", "content_type": "text/plain"})
        response.raise_for_status()
        media = response.json()
        form = media["upload"]
        stored = httpx.post(
            form["url"],
            data=form["fields"],
            files={"file": ("f.txt", b"fault", "text/plain")},
            timeout=CLIENT_TIMEOUT,
        )
        stored.raise_for_status()
        with self._lock:
            self.ack.objects.append(media["key"])

    def _sign_up(self, _: httpx.Client, __: httpx.Client) -> None:
        email = f"signup-{uuid.uuid4().hex[:10]}@faults.test"
        self.cognito.admin_create_user(UserPoolId=self.pool_id, Username=email, MessageAction="SUPPRESS")
        with self._lock:
            self.ack.users.append(email)


@dataclass
class Verdict:
    committed: int  # rows in the database (acknowledged or not: a response can be lost after the commit)
    lost: list[str]  # acknowledged but missing
    unsent: list[str]  # committed, no email (yet)
    duplicates: list[str]  # more than one copy not marked possible_duplicate: a second email nobody announced
    # more than one copy, every extra one tagged possible_duplicate: the worker could not rule out that SES
    # had accepted an earlier attempt (it died mid-send, or SES did not answer) and said so — SES has no
    # idempotency token, so only the tag can make such a resend honest
    announced: list[str]


@dataclass
class Copies:
    total: int = 0
    untagged: int = 0

    def add(self, tags: dict[str, str]) -> None:
        self.total += 1
        self.untagged += tags.get("possible_duplicate") != "true"


def captured_mail(aws_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = httpx.get(f"{aws_url}/_harness/ses/messages", timeout=30).json()
    return messages


def verify(
    db: psycopg.Connection[Any], aws_url: str, s3: Any, bucket: str, cognito: Any, pool_id: str, tenant_id: str,
    ack: Acknowledged,
) -> Verdict:  # fmt: skip
    orders = {str(r[0]) for r in db.execute("SELECT id FROM orders WHERE tenant_id = %s", (tenant_id,))}
    donations = {str(r[0]) for r in db.execute("SELECT id FROM donations WHERE tenant_id = %s", (tenant_id,))}
    invites = {
        str(r[0]): r[1]
        for r in db.execute("SELECT id, email FROM invites WHERE tenant_id = %s", (tenant_id,))
    }
    lost = [f"order {i}" for i in ack.orders if i not in orders]
    lost += [f"donation {i}" for i in ack.donations if i not in donations]
    lost += [f"invite {i}" for i in ack.invites if i not in invites]
    for key in ack.objects:
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except Exception:
            lost.append(f"object {key}")
    for user in ack.users:
        try:
            cognito.admin_get_user(UserPoolId=pool_id, Username=user)
        except Exception:
            lost.append(f"cognito user {user}")
    by_subject: dict[str, Copies] = {}
    by_recipient: dict[str, Copies] = {}
    for message in captured_mail(aws_url):
        tags = message.get("tags") or {}
        by_subject.setdefault(str(message.get("subject", "")), Copies()).add(tags)
        for address in message.get("destinations", {}).get("to", []):
            by_recipient.setdefault(address, Copies()).add(tags)

    def copies(prefix: str) -> Copies:
        found = Copies()
        for subject, each in by_subject.items():
            if subject.startswith(prefix):
                found.total += each.total
                found.untagged += each.untagged
        return found

    sent = {f"order {i}": copies(f"Order {i} ") for i in orders}
    sent |= {f"donation {i}": copies(f"Donation receipt {i} ") for i in donations}
    sent |= {f"invite {i}": by_recipient.get(email, Copies()) for i, email in invites.items()}
    return Verdict(
        committed=len(orders) + len(donations) + len(invites),
        lost=lost,
        unsent=[k for k, n in sent.items() if n.total == 0],
        duplicates=[k for k, n in sent.items() if n.untagged > 1],
        announced=[k for k, n in sent.items() if n.total > 1 and n.untagged <= 1],
    )
