"""SES v1 and v2, in the new (botocore >= 1.43) and the old (AWS CLI v1, older SDKs) request shapes, see one
identity state (harness/emulator/ses_identities.py). Real clients over a real socket."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from fidelity_clients import REGION, Emulator

from harness.emulator.ses_identities import rewrite_old_shape


def _domain() -> str:
    return f"d{uuid.uuid4().hex[:10]}.example.test"


def old_shape(
    emulator: Emulator, method: str, path: str, query: str = "", body: bytes = b""
) -> httpx.Response:
    """A request in the pre-1.43 SES v2 shape, SigV4-signed as AWS CLI v1 signs it."""
    url = f"{emulator.endpoint}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "ses", REGION).add_auth(request)
    return httpx.request(method, url, headers=dict(request.headers.items()), content=body)


@pytest.fixture
def ses(emulator: Emulator) -> Any:
    return emulator.client("ses")


@pytest.fixture
def sesv2(emulator: Emulator) -> Any:
    return emulator.client("sesv2")


def test_a_v1_verified_domain_with_dkim_is_verified_with_dkim_success_in_v2(ses: Any, sesv2: Any) -> None:
    domain = _domain()
    ses.verify_domain_identity(Domain=domain)
    tokens = ses.verify_domain_dkim(Domain=domain)["DkimTokens"]
    v1 = ses.get_identity_dkim_attributes(Identities=[domain])["DkimAttributes"][domain]
    assert v1["DkimEnabled"] and v1["DkimVerificationStatus"] == "Success"
    v2 = sesv2.get_email_identity(EmailIdentity=domain)
    assert v2["VerifiedForSendingStatus"] is True
    assert v2["DkimAttributes"]["Status"] == "SUCCESS" and v2["DkimAttributes"]["SigningEnabled"] is True
    assert v2["DkimAttributes"]["Tokens"] == tokens == v1["DkimTokens"]


def test_a_v2_created_domain_reads_the_same_in_v1(ses: Any, sesv2: Any) -> None:
    domain = _domain()
    sesv2.create_email_identity(EmailIdentity=domain)
    v2 = sesv2.get_email_identity(EmailIdentity=domain)
    v1_verified = ses.get_identity_verification_attributes(Identities=[domain])["VerificationAttributes"]
    v1_dkim = ses.get_identity_dkim_attributes(Identities=[domain])["DkimAttributes"][domain]
    assert v1_verified[domain]["VerificationStatus"] == "Success" and v2["VerifiedForSendingStatus"] is True
    assert v1_dkim["DkimVerificationStatus"] == "Success" and v2["DkimAttributes"]["Status"] == "SUCCESS"


def test_list_email_identities_in_both_path_shapes(emulator: Emulator, ses: Any, sesv2: Any) -> None:
    domain = _domain()
    ses.verify_domain_identity(Domain=domain)
    new = {i["IdentityName"] for i in sesv2.list_email_identities()["EmailIdentities"]}
    response = old_shape(emulator, "GET", "/v2/email/identities", "PageSize=1000")
    assert response.status_code == 200, response.text
    old = {i["IdentityName"] for i in response.json()["EmailIdentities"]}
    assert domain in new and old == new
    assert all(i["SendingEnabled"] for i in response.json()["EmailIdentities"])


def test_other_old_shapes_answer_as_the_new_ones(emulator: Emulator, sesv2: Any) -> None:
    name = f"cs-{uuid.uuid4().hex[:8]}"
    sesv2.create_configuration_set(ConfigurationSetName=name)
    response = old_shape(emulator, "GET", "/v2/email/configuration-sets")
    assert response.status_code == 200, response.text
    assert name in response.json()["ConfigurationSets"]
    assert name in sesv2.list_configuration_sets()["ConfigurationSets"]


@pytest.mark.parametrize(
    ("method", "path", "query", "new_method", "new_path"),
    [
        ("GET", "/v2/email/identities", "PageSize=5&NextToken=t", "POST", "/v2/email/list-identities"),
        ("GET", "/v2/email/configuration-sets", "", "POST", "/v2/email/list-configuration-sets"),
        ("GET", "/v2/email/contact-lists/news/contacts", "PageSize=2", "POST", "/v2/email/contact-lists/news/contacts/list"),
        ("GET", "/v2/email/import-jobs", "", "POST", "/v2/email/import-jobs/list"),
        ("PUT", "/v1/email/identities/a.test/dkim/signing", "", "PUT", "/v2/email/identities/a.test/dkim/signing"),
    ],
)  # fmt: skip
def test_every_moved_operation_is_rewritten(
    method: str, path: str, query: str, new_method: str, new_path: str
) -> None:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                               "REQUEST_URI": path, "wsgi.input": io.BytesIO(b"{}")}  # fmt: skip
    assert rewrite_old_shape(environ)
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["REQUEST_URI"]) == (
        new_method,
        new_path,
        new_path,
    )
    if method == "GET":
        body = json.loads(environ["wsgi.input"].read())
        assert body == {
            k: int(v) if k == "PageSize" else v for k, v in (p.split("=") for p in query.split("&") if p)
        }
    new_shape = dict(environ)
    assert not rewrite_old_shape(new_shape)  # a new-shape request is left alone
    assert not rewrite_old_shape({"REQUEST_METHOD": "GET", "PATH_INFO": "/v2/email/identities/a.test"})
