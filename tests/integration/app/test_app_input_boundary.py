"""Bad input is the client's error on every route: 4xx JSON, never 5xx (the running backend, real Postgres).

- control characters and lone surrogates in any text field, query parameter or path → 422, for every text
  field of every body the API takes (the list is read from the OpenAPI document, so a new field is covered);
- integers beyond their column → 422; a body above the limit → 413 before it is read;
- every operation's OpenAPI entry lists the error statuses the API answers;
- property-based fuzzing over the OpenAPI document (schemathesis, seeded): 0 server errors, and every
  response matches its documented schema and status.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from app_stack_clients import TenantUnderTest

pytestmark = pytest.mark.integration

BAD_TEXT = ["nul\x00here", "bell\x07", "esc\x1b[2J", "del\x7f", "lone \ud800 surrogate"]
ERROR_STATUSES = {"400", "401", "403", "404", "409", "413", "422", "429", "503"}


@pytest.fixture(scope="module")
def openapi(stack: Any) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{stack.api_url}/api/v1/openapi.json", timeout=10).json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _text_fields(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    schema = _resolve(document, schema)
    fields = []
    for name, prop in schema.get("properties", {}).items():
        options = [_resolve(document, p) for p in prop.get("anyOf", [prop])]
        if any(o.get("type") == "string" for o in options):
            fields.append(name)
    return fields


def _body_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                found.append((method.upper(), path, body["schema"]))
    return found


def test_every_text_field_of_every_body_refuses_control_characters(
    openapi: dict[str, Any], tenant: TenantUnderTest
) -> None:
    api = tenant.api("owner")
    tried = 0
    for method, path, schema in _body_operations(openapi):
        url = path.replace("{item_id}", "00000000-0000-0000-0000-000000000000")
        for field in _text_fields(openapi, schema):
            for bad in BAD_TEXT:
                body = json.dumps(
                    {field: bad}
                ).encode()  # ensure_ascii: \u0000 and \ud800 escapes, as JSON allows
                response = api.request(
                    method, url, content=body, headers={"Content-Type": "application/json"}
                )
                tried += 1
                assert response.status_code == 422, (method, path, field, repr(bad), response.text)
                assert response.json()["error"]["details"][0]["loc"] == ["body", field]
    print(f"\ncontrol characters: {tried} requests, every one 422")
    assert tried > 40


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_query_parameters_and_paths_refuse_control_characters(tenant: TenantUnderTest, bad: str) -> None:
    api = tenant.api("member")
    encoded = quote(bad.encode("utf-8", "surrogatepass"))
    response = api.get(f"/api/v1/media/download?key={tenant.id}/{encoded}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["query", "key"]
    response = api.get(f"/api/v1/catalog/{encoded}")
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/catalog", {"sku": "BIG-1", "name": "n", "price_cents": 2**31, "currency": "USD"}),
        ("/api/v1/catalog", {"sku": "BIG-2", "name": "n", "price_cents": 2**63, "currency": "USD"}),
        ("/api/v1/orders", {"items": [{"sku": "X", "qty": 2**31}]}),
        ("/api/v1/donations", {"amount_cents": 2**63, "currency": "USD"}),
    ],
)
def test_integers_beyond_their_column_are_422(
    tenant: TenantUnderTest, path: str, body: dict[str, Any]
) -> None:
    response = tenant.api("owner").post(path, json=body)
    assert response.status_code == 422, response.text


def test_limits_beyond_bigint_are_422(tenant: TenantUnderTest) -> None:
    response = tenant.api("owner").put(
        "/api/v1/ai/limits", json={"soft_limit_tokens": 2**63, "hard_limit_tokens": 2**63}
    )
    assert response.status_code == 422, response.text


def test_a_large_body_is_refused_with_413_without_being_read(stack: Any, tenant: TenantUnderTest) -> None:
    api = tenant.api("owner")
    big = b'{"note": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = api.post("/api/v1/donations", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    # Declared as 10 MB and never sent: the answer comes at once, so nothing waited for the body.
    url = urlsplit(stack.api_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /api/v1/donations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10485760\r\n\r\n{"
        )
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - started < 5


def test_every_operation_documents_the_error_statuses(openapi: dict[str, Any]) -> None:
    missing = {
        f"{method.upper()} {path}": sorted(ERROR_STATUSES - set(operation["responses"]))
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if path != "/api/v1/health" and ERROR_STATUSES - set(operation["responses"])
    }
    assert not missing, missing


FUZZ_EXAMPLES_PER_OPERATION = 10


def test_fuzzing_the_openapi_document_finds_no_server_error(
    stack: Any, openapi: dict[str, Any], tenant: TenantUnderTest
) -> None:
    """Seeded (derandomized) schemathesis cases for every operation, as the tenant's owner: 0 server errors,
    every response of a documented status and shape."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_dict(openapi)
    owner = tenant.api("owner")
    headers = owner.headers()
    tried: dict[str, int] = {}
    statuses: dict[int, int] = {}
    started = time.monotonic()

    def fuzz_operation(operation: Any, label: str) -> None:
        @settings(
            max_examples=FUZZ_EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            # always as the owner, in the tenant: the cases reach the handlers (bad tokens: unit tests)
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(base_url=stack.api_url, timeout=15)
            tried[label] = tried.get(label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 429:
                return  # the rate limiter (documented); its body is the error shape, checked elsewhere
            case.validate_response(
                response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
            )

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        fuzz_operation(operation, f"{operation.method.upper()} {operation.path}")
    total = sum(tried.values())

    print(
        f"\nfuzzing: {total} cases over {len(tried)} operations in {time.monotonic() - started:.1f}s;"
        f" statuses {dict(sorted(statuses.items()))}"
    )
    assert not [s for s in statuses if s >= 500]
    assert len(tried) >= 20 and total >= 20 * 10
