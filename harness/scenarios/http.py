"""HTTP for scenarios: the API as an actor (bearer token, tenant by `X-Tenant` or subdomain), every exchange
recorded for the failure report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.errors import ScenarioError

TENANT_HEADER = "X-Tenant"
MAX_RECORDED_BODY = 64 * 1024
_UNSET: Any = object()


@dataclass
class Exchange:
    """One request and its response (or the transport error), as the report shows them."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None = None
    status: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    elapsed_ms: float = 0.0
    error: str | None = None

    def outcome(self) -> dict[str, Any]:
        """What `expect` and `save` see: status, headers (lower-case names), json (or None), body."""
        try:
            parsed: Any = json.loads(self.response_body) if self.response_body else None
        except ValueError:
            parsed = None
        return {
            "status": self.status,
            "headers": {k.lower(): v for k, v in self.response_headers.items()},
            "json": parsed,
            "body": self.response_body,
        }


class ApiClient:
    """Sends requests to the API (or any URL) and records them; `as_actor` binds a token and a tenant."""

    def __init__(
        self,
        api_url: str,
        subdomain_host: Callable[[str], tuple[str, str]] | None = None,
        *,
        timeout: float = 20.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.subdomain_host = subdomain_host
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        token: str | None = None,
        tenant_slug: str | None = None,
        tenant_via: str = "header",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        json_body: Any = _UNSET,
        content: str | bytes | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str | None]] | None = None,
    ) -> Exchange:
        """One request; never raises for HTTP statuses, records transport errors in the exchange."""
        base, host = self.api_url, None
        sent_headers: dict[str, str] = {}
        if token:
            sent_headers["Authorization"] = f"Bearer {token}"
        if tenant_slug is not None:
            if tenant_via == "subdomain":
                if self.subdomain_host is None:
                    raise ScenarioError("this target cannot address tenants by subdomain")
                base, host = self.subdomain_host(tenant_slug)
                sent_headers["Host"] = host
            else:
                sent_headers[TENANT_HEADER] = tenant_slug
        sent_headers |= dict(headers or {})
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else base + path_or_url
        kwargs: dict[str, Any] = {"headers": sent_headers, "params": _query(query)}
        recorded_body: str | None = None
        if json_body is not _UNSET:
            kwargs["json"] = json_body
            recorded_body = json.dumps(json_body, ensure_ascii=False)
        elif content is not None:
            kwargs["content"] = content
            recorded_body = content if isinstance(content, str) else f"<{len(content)} bytes>"
        elif files is not None:
            kwargs["data"], kwargs["files"] = dict(data or {}), dict(files)
            parts = [f"{k}={v}" for k, v in (data or {}).items()]
            parts += [
                f"{k}=<{f[0]}: {len(f[1])} bytes, {f[2] or 'no content type'}>" for k, f in files.items()
            ]
            recorded_body = "multipart/form-data: " + ", ".join(parts)
        request = self._http.build_request(method, url, **kwargs)
        exchange = Exchange(method, str(request.url), dict(request.headers), recorded_body)
        started = time.perf_counter()
        try:
            response = self._http.send(request)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            exchange.elapsed_ms = (time.perf_counter() - started) * 1000
            return exchange
        exchange.elapsed_ms = (time.perf_counter() - started) * 1000
        exchange.status = response.status_code
        exchange.reason = response.reason_phrase
        exchange.response_headers = dict(response.headers)
        exchange.response_body = response.text[:MAX_RECORDED_BODY]
        return exchange

    def as_actor(self, actor: Any = None, tenant: Any = None, *, via: str = "header") -> BoundClient:
        """A client for Python tests: `api_client.as_actor(owner, tenant=acme).get("/api/v1/tenant")`."""
        return BoundClient(self, actor, tenant, via)


def _query(query: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not query:
        return None
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}


class BoundClient:
    """The API as one actor for one tenant; returns `httpx.Response`-like `Exchange`s with `.json()`."""

    def __init__(self, client: ApiClient, actor: Any, tenant: Any, via: str) -> None:
        self.client = client
        self.actor = actor
        self.tenant = tenant
        self.via = via

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        token = self.actor.access_token() if self.actor is not None else None
        slug = self.tenant.slug if self.tenant is not None and hasattr(self.tenant, "slug") else self.tenant
        if "json" in kwargs:
            kwargs["json_body"] = kwargs.pop("json")
        exchange = self.client.send(
            method, path, token=token, tenant_slug=slug, tenant_via=self.via, **kwargs
        )
        if exchange.error:
            raise ScenarioError(f"{method} {path}: {exchange.error}")
        return Response(exchange)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)


class Response:
    """The small part of `httpx.Response` tests use, over a recorded `Exchange`."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.status_code = exchange.status or 0
        self.headers = httpx.Headers(exchange.response_headers)
        self.text = exchange.response_body

    def json(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.exchange.method} {self.exchange.url}>"
