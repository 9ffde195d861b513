"""Media: presigned upload and download for keys under `{tenant_id}/`; other tenants' keys are refused."""

from __future__ import annotations

import httpx
import pytest
from app_stack_clients import TenantUnderTest

pytestmark = pytest.mark.integration


def upload(tenant: TenantUnderTest, content: bytes, filename: str = "logo.png") -> dict:
    response = tenant.api("member").post(
        "/api/v1/media", json={"filename": filename, "content_type": "image/png"}
    )
    assert response.status_code == 201, response.text
    media = response.json()
    form = media["upload"]
    stored = httpx.post(form["url"], data=form["fields"], files={"file": (filename, content, "image/png")})
    assert stored.status_code in (200, 201, 204), stored.text
    return media


def test_upload_then_download(tenant: TenantUnderTest) -> None:
    media = upload(tenant, b"\x89PNG fake image bytes")
    assert media["key"].startswith(f"{tenant.id}/")
    assert media["key"].endswith("/logo.png")

    by_id = tenant.api("member").get(f"/api/v1/media/{media['id']}")
    assert by_id.status_code == 200
    assert httpx.get(by_id.json()["download_url"]).content == b"\x89PNG fake image bytes"

    by_key = tenant.api("admin").get("/api/v1/media/download", params={"key": media["key"]})
    assert by_key.status_code == 200
    assert httpx.get(by_key.json()["download_url"]).content == b"\x89PNG fake image bytes"


def test_other_tenants_key_is_refused(tenant: TenantUnderTest, other_tenant: TenantUnderTest) -> None:
    theirs = upload(other_tenant, b"secret")
    intruder = tenant.api("owner")

    download = intruder.get("/api/v1/media/download", params={"key": theirs["key"]})
    assert download.status_code == 403
    assert download.json()["error"]["code"] == "forbidden"

    overwrite = intruder.post("/api/v1/media", json={"filename": "x.png", "key": theirs["key"]})
    assert overwrite.status_code == 403

    assert intruder.get(f"/api/v1/media/{theirs['id']}").status_code == 404


@pytest.mark.parametrize("suffix", ["", "../escape.png", "a//b.png", "./x.png"])
def test_keys_that_could_escape_the_prefix_are_refused(tenant: TenantUnderTest, suffix: str) -> None:
    response = tenant.api("member").post(
        "/api/v1/media", json={"filename": "x.png", "key": f"{tenant.id}/{suffix}"}
    )
    assert response.status_code == 403


def test_filename_is_sanitised(tenant: TenantUnderTest) -> None:
    response = tenant.api("member").post("/api/v1/media", json={"filename": "../../etc/pass wd"})
    assert response.status_code == 201
    assert response.json()["key"].endswith("/pass_wd")
