"""Which tenant a request names: subdomain parsing and the X-Tenant header."""

from __future__ import annotations

import pytest

from app.errors import ApiError
from app.tenancy import requested_tenant_slug, role_allows, tenant_slug_from_host


@pytest.mark.parametrize(
    ("host", "slug"),
    [
        ("acme.yourdomain.com", "acme"),
        ("acme.yourdomain.com:443", "acme"),
        ("ACME.YourDomain.com.", "acme"),
        ("acme.localhost", "acme"),
        ("acme.localhost:3000", "acme"),
        ("acme.preview.vercel.app", "acme"),
        ("yourdomain.com", None),
        ("localhost:8000", None),
        ("127.0.0.1:8000", None),
        ("[::1]:8000", None),
        ("www.yourdomain.com", None),
        ("api.yourdomain.com", None),
        ("a.b.localhost", None),
        ("under_score.yourdomain.com", None),
        ("", None),
        (None, None),
    ],
)
def test_slug_from_host(host: str | None, slug: str | None) -> None:
    assert tenant_slug_from_host(host) == slug


@pytest.mark.parametrize(
    ("host", "slug"),
    [
        ("acme.yourdomain.com", "acme"),
        ("acme.other.com", None),
        ("a.b.yourdomain.com", None),
        ("yourdomain.com", None),
    ],
)
def test_slug_from_host_with_base_domain(host: str, slug: str | None) -> None:
    assert tenant_slug_from_host(host, "yourdomain.com") == slug


def test_header_names_the_tenant() -> None:
    assert requested_tenant_slug("Acme", "127.0.0.1:8000", None) == "acme"


def test_subdomain_names_the_tenant() -> None:
    assert requested_tenant_slug(None, "acme.localhost", None) == "acme"


def test_header_and_subdomain_must_agree() -> None:
    assert requested_tenant_slug("acme", "acme.localhost", None) == "acme"
    with pytest.raises(ApiError, match="contradicts"):
        requested_tenant_slug("globex", "acme.localhost", None)


@pytest.mark.parametrize("header", [None, "bad slug!", "-x"])
def test_missing_or_invalid_tenant(header: str | None) -> None:
    with pytest.raises(ApiError) as raised:
        requested_tenant_slug(header, "127.0.0.1", None)
    assert raised.value.code == "tenant_required"


@pytest.mark.parametrize(
    ("role", "minimum", "allowed"),
    [
        ("owner", "admin", True),
        ("admin", "admin", True),
        ("member", "admin", False),
        ("admin", "owner", False),
        ("member", "member", True),
        ("unknown", "member", False),
    ],
)
def test_role_ranks(role: str, minimum: str, allowed: bool) -> None:
    assert role_allows(role, minimum) is allowed  # type: ignore[arg-type]
