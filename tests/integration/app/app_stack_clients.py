"""Test-side clients of the running stack: Cognito users, the API as a user, the SES inbox, databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx

T = TypeVar("T")

PASSWORD = "Test-Passw0rd-" + "x" * 4 + "!"  # satisfies the pool policy; test users only

# Every table of the app's schema that holds a tenant's data (app/migrations: `tenants` and the tables whose
# `tenant_id` references it).
TENANT_TABLES = (
    "tenants",
    "memberships",
    "catalog_items",
    "orders",
    "donations",
    "invites",
    "media_objects",
    "ai_usage",
)
TENANT_SCOPED = TENANT_TABLES[1:]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def wait_for(probe: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.1, what: str) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def database_url_for(admin_url: str, app_url: str) -> str:
    """The admin URL, pointed at the app's database (psycopg form)."""
    admin, app = urlsplit(admin_url), urlsplit(app_url)
    return urlunsplit(("postgresql", admin.netloc, app.path, admin.query, ""))


@dataclass
class Tokens:
    access: str
    id: str


@dataclass
class User:
    email: str
    sub: str
    tokens: Tokens
    api: ApiClient


@dataclass
class Cognito:
    """Creates users in the stack's pool and signs them in through the app client."""

    env: dict[str, str]
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client: Any = boto3.client(
            "cognito-idp",
            endpoint_url=self.env.get("AWS_ENDPOINT_URL"),
            region_name=self.env["AWS_REGION"],
            aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY"),
        )
        self.pool_id = self.env["COGNITO_USER_POOL_ID"]
        self.client_id = self.env["COGNITO_CLIENT_ID"]
        self.client_secret = self.env.get("COGNITO_CLIENT_SECRET")

    def secret_hash(self, username: str, client_id: str | None = None, secret: str | None = None) -> str:
        key = (secret or self.client_secret or "").encode()
        message = (username + (client_id or self.client_id)).encode()
        return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()

    def create_user(self, email: str, password: str = PASSWORD) -> str:
        response = self.client.admin_create_user(
            UserPoolId=self.pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        self.client.admin_set_user_password(
            UserPoolId=self.pool_id, Username=email, Password=password, Permanent=True
        )
        self.created.append(email)
        return next(a["Value"] for a in response["User"]["Attributes"] if a["Name"] == "sub")

    def sign_in(
        self, email: str, password: str = PASSWORD, *, client_id: str | None = None, secret: str | None = None
    ) -> Tokens:
        client_id = client_id or self.client_id
        parameters = {"USERNAME": email, "PASSWORD": password}
        if secret or self.client_secret:
            parameters["SECRET_HASH"] = self.secret_hash(email, client_id, secret)
        result = self.client.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=parameters
        )["AuthenticationResult"]
        return Tokens(access=result["AccessToken"], id=result["IdToken"])

    def delete_created(self) -> None:
        for email in self.created:
            try:
                self.client.admin_delete_user(UserPoolId=self.pool_id, Username=email)
            except self.client.exceptions.UserNotFoundException:
                pass
        self.created.clear()


class ApiClient:
    """The API as one caller: bearer token and, optionally, a tenant (X-Tenant)."""

    def __init__(self, base_url: str, token: str | None, tenant: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.tenant = tenant
        self.http = httpx.Client(base_url=base_url, timeout=15.0)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.tenant:
            headers["X-Tenant"] = self.tenant
        return headers | (extra or {})

    def as_tenant(self, tenant: str | None) -> ApiClient:
        return ApiClient(self.base_url, self.token, tenant)

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.http.request(method, path, headers=self.headers(headers), **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass(frozen=True)
class Mail:
    source: str
    destinations: tuple[str, ...]
    subject: str
    body: str


class Inbox:
    """Mail captured by the SES emulator (`/_harness/ses/messages`, else moto's own state dump)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.http = httpx.Client(timeout=10.0)

    def messages(self) -> list[Mail]:
        response = self.http.get(f"{self.endpoint}/_harness/ses/messages")
        if response.status_code == 200:
            raw = response.json()
        else:
            raw = (
                self.http.get(f"{self.endpoint}/moto-api/data.json").json().get("ses", {}).get("Message", [])
            )
        return [self._mail(m) for m in raw]

    @staticmethod
    def _mail(message: dict[str, Any]) -> Mail:
        destinations = message.get("destinations") or []
        if isinstance(destinations, dict):  # {"to": [...], "cc": [...]} or moto's {"ToAddresses": [...]}
            destinations = [a for addresses in destinations.values() for a in addresses]  # to/cc/bcc
        body = message.get("body") or ""
        if isinstance(body, dict):  # the harness inbox: {"text": ..., "html": ...}
            body = body.get("text") or body.get("html") or ""
        return Mail(
            source=str(message.get("source", "")),
            destinations=tuple(str(d).lower() for d in destinations),
            subject=str(message.get("subject", "")),
            body=str(body),
        )

    def to(self, address: str, subject_contains: str = "") -> list[Mail]:
        return [
            m for m in self.messages() if address.lower() in m.destinations and subject_contains in m.subject
        ]

    def wait_for(self, address: str, subject_contains: str = "", timeout: float = 15.0) -> Mail:
        found = wait_for(
            lambda: self.to(address, subject_contains),
            timeout=timeout,
            interval=0.1,
            what=f"an email to {address} with {subject_contains!r} in the subject",
        )
        return found[0]


@dataclass
class TenantUnderTest:
    id: str
    slug: str
    users: dict[str, User]  # by role: owner, admin, member

    @property
    def owner(self) -> User:
        return self.users["owner"]

    @property
    def admin(self) -> User:
        return self.users["admin"]

    @property
    def member(self) -> User:
        return self.users["member"]

    def api(self, role: str) -> ApiClient:
        return self.users[role].api.as_tenant(self.slug)


def add_catalog_item(tenant: TenantUnderTest, sku: str = "TSHIRT", price_cents: int = 2500) -> dict[str, Any]:
    response = tenant.api("admin").post(
        "/api/v1/catalog",
        json={"sku": sku, "name": f"Item {sku}", "price_cents": price_cents, "currency": "USD"},
    )
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item
