"""S3 presigned URLs (SigV4 query signing) and presigned POST policies, exercised with plain HTTP (httpx)."""

from __future__ import annotations

import base64
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.auth
import botocore.signers
import httpx
import pytest
from fidelity_clients import REGION, Emulator

TENANT_A = f"{uuid.uuid4()}/"
TENANT_B = f"{uuid.uuid4()}/"


@pytest.fixture(scope="module")
def s3(emulator: Emulator) -> Any:
    return emulator.client("s3", signature_version="s3v4", s3={"addressing_style": "path"})


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = f"fidelity-media-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=name, Key=f"{TENANT_A}report.txt", Body=b"tenant a data")
    s3.put_object(Bucket=name, Key=f"{TENANT_B}report.txt", Body=b"tenant b data")
    return name


def s3_error(response: httpx.Response) -> tuple[str, str]:
    root = ET.fromstring(response.content)
    return str(root.findtext("Code")), str(root.findtext("Message"))


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def signed_two_hours_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs as if its clock were two hours behind (an expired URL or policy, without waiting)."""
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: past)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", lambda *a, **k: past)


def test_presigned_get_is_accepted_and_a_tampered_signature_refused(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": f"{TENANT_A}report.txt"}, ExpiresIn=60
    )
    assert httpx.get(url).content == b"tenant a data"
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    tampered = with_query(
        url, **{"X-Amz-Signature": signature[:-4] + ("0000" if signature[-4:] != "0000" else "1111")}
    )
    response = httpx.get(tampered)
    assert response.status_code == 403
    assert s3_error(response) == (
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


def test_a_presigned_url_moved_to_another_tenants_prefix_is_refused(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": f"{TENANT_A}report.txt"}, ExpiresIn=60
    )
    other_tenant = url.replace(TENANT_A, TENANT_B)
    assert other_tenant != url
    response = httpx.get(other_tenant)
    assert response.status_code == 403
    assert s3_error(response)[0] == "SignatureDoesNotMatch"
    assert b"tenant b data" not in response.content


def test_extending_the_expiry_or_changing_the_method_breaks_the_signature(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": f"{TENANT_A}report.txt"}, ExpiresIn=60
    )
    response = httpx.get(with_query(url, **{"X-Amz-Expires": "604800"}))
    assert (response.status_code, s3_error(response)[0]) == (403, "SignatureDoesNotMatch")
    assert httpx.delete(url).status_code == 403
    assert s3.get_object(Bucket=bucket, Key=f"{TENANT_A}report.txt")["Body"].read() == b"tenant a data"


@pytest.mark.usefixtures("signed_two_hours_ago")
def test_an_expired_presigned_url_is_refused(s3: Any, bucket: str) -> None:
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": f"{TENANT_A}report.txt"}, ExpiresIn=60
    )
    response = httpx.get(url)
    assert response.status_code == 403
    assert s3_error(response) == ("AccessDenied", "Request has expired")
    assert ET.fromstring(response.content).findtext("X-Amz-Expires") == "60"


@pytest.mark.parametrize("method", ["put_object", "head_object", "delete_object"])
def test_presigned_put_head_delete_are_verified_too(s3: Any, bucket: str, method: str) -> None:
    key = f"{TENANT_A}{method}-{uuid.uuid4().hex[:6]}.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    url = s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    verb = {"put_object": "PUT", "head_object": "HEAD", "delete_object": "DELETE"}[method]
    body = b"new content" if verb == "PUT" else None
    wrong_key = httpx.request(verb, url.replace(key, f"{TENANT_B}report.txt"), content=body)
    assert wrong_key.status_code == 403
    assert httpx.request(verb, url, content=body).status_code in (200, 204)
    if verb == "PUT":
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"new content"
    assert s3.get_object(Bucket=bucket, Key=f"{TENANT_B}report.txt")["Body"].read() == b"tenant b data"


def _signed_for_host(host: str, key: str, method: str = "GET", query: bool = True, body: bytes = b"") -> Any:
    """A request to `http://<host>/<key>` signed by botocore itself: presigned (query) or header-signed."""
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=f"http://{host}/{key}", data=body)
    credentials = Credentials("test", "test")
    if query:
        botocore.auth.S3SigV4QueryAuth(credentials, "s3", REGION, expires=60).add_auth(request)
    else:
        botocore.auth.S3SigV4Auth(credentials, "s3", REGION).add_auth(request)
    return request


def _send(emulator: Emulator, request: Any, url: str | None = None) -> httpx.Response:
    """Send to 127.0.0.1 with the request's own Host header (virtual hosts like b.s3.localhost do not resolve)."""
    parts = urlsplit(url or request.url)
    target = urlunsplit(parts._replace(netloc=f"127.0.0.1:{emulator.port}"))
    headers = {k: v for k, v in request.headers.items()}
    headers["Host"] = parts.netloc
    return httpx.request(request.method, target, headers=headers, content=request.body or b"")


def test_virtual_host_style_presigned_urls_are_verified(emulator: Emulator, bucket: str) -> None:
    host = f"{bucket}.s3.localhost:{emulator.port}"
    signed = _signed_for_host(host, f"{TENANT_A}report.txt")
    assert _send(emulator, signed).content == b"tenant a data"
    moved = _send(emulator, signed, url=signed.url.replace(TENANT_A, TENANT_B))
    assert (moved.status_code, s3_error(moved)[0]) == (403, "SignatureDoesNotMatch")


def test_header_signed_requests_still_work_in_both_addressing_styles(
    emulator: Emulator, s3: Any, bucket: str
) -> None:
    key = f"{TENANT_A}path-style.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"header signed")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"header signed"
    host = f"{bucket}.s3.localhost:{emulator.port}"
    put = _signed_for_host(host, f"{TENANT_A}virtual.txt", "PUT", query=False, body=b"virtual host")
    assert _send(emulator, put).status_code == 200
    get = _send(emulator, _signed_for_host(host, f"{TENANT_A}virtual.txt", query=False))
    assert get.content == b"virtual host"


def test_unknown_access_keys_wrong_regions_and_sigv2_are_refused(emulator: Emulator, bucket: str) -> None:
    params = {"Bucket": bucket, "Key": f"{TENANT_A}report.txt"}
    stranger = emulator.client("s3", signature_version="s3v4", s3={"addressing_style": "path"})
    stranger_url = stranger.generate_presigned_url("get_object", Params=params, ExpiresIn=60).replace(
        "X-Amz-Credential=test%2F", "X-Amz-Credential=AKIAEXAMPLE%2F"
    )
    response = httpx.get(stranger_url)
    assert (response.status_code, s3_error(response)[0]) == (403, "InvalidAccessKeyId")

    import boto3
    from botocore.config import Config

    elsewhere = boto3.session.Session().client(
        "s3",
        endpoint_url=emulator.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    response = httpx.get(elsewhere.generate_presigned_url("get_object", Params=params, ExpiresIn=60))
    assert response.status_code == 400
    assert s3_error(response) == (
        "AuthorizationQueryParametersError",
        f"Error parsing the X-Amz-Credential parameter; the region 'us-east-1' is wrong; expecting '{REGION}'",
    )
    sigv2 = emulator.client("s3", signature_version="s3", s3={"addressing_style": "path"})
    response = httpx.get(sigv2.generate_presigned_url("get_object", Params=params, ExpiresIn=60))
    assert (response.status_code, s3_error(response)[0]) == (400, "InvalidRequest")


# -- presigned POST ---------------------------------------------------------------------------------------


def presigned_post(
    s3: Any, bucket: str, key: str, max_bytes: int = 64, prefix: str | None = None
) -> dict[str, Any]:
    """What the app hands a browser: url + fields; the key pinned (or, with `prefix`, a starts-with)."""
    conditions: list[Any] = [{"Content-Type": "text/plain"}, ["content-length-range", 1, max_bytes]]
    fields = {"Content-Type": "text/plain"}
    if prefix is not None:
        conditions.append(["starts-with", "$key", prefix])
        key = prefix + "${filename}"
    return dict(s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=60))


def post(form: dict[str, Any], content: bytes = b"hello", **field_changes: str) -> httpx.Response:
    fields = {**form["fields"], **field_changes}
    return httpx.post(form["url"], data=fields, files={"file": ("upload.txt", content, "text/plain")})


def test_a_valid_presigned_post_uploads(s3: Any, bucket: str) -> None:
    key = f"{TENANT_A}post-{uuid.uuid4().hex[:6]}.txt"
    response = post(presigned_post(s3, bucket, key))
    assert response.status_code == 204, response.text
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"hello"


def test_a_post_into_another_tenants_prefix_is_refused(s3: Any, bucket: str) -> None:
    pinned = presigned_post(s3, bucket, f"{TENANT_A}pinned.txt")
    response = post(pinned, key=f"{TENANT_B}report.txt")
    assert response.status_code == 403
    assert s3_error(response) == (
        "AccessDenied",
        f'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{TENANT_A}pinned.txt"]',
    )
    prefixed = presigned_post(s3, bucket, "", prefix=TENANT_A)
    response = post(prefixed, key=f"{TENANT_B}report.txt")
    assert response.status_code == 403
    assert "Policy Condition failed" in s3_error(response)[1]
    assert s3.get_object(Bucket=bucket, Key=f"{TENANT_B}report.txt")["Body"].read() == b"tenant b data"


def test_post_content_length_range_is_enforced(s3: Any, bucket: str) -> None:
    form = presigned_post(s3, bucket, f"{TENANT_A}sized.txt", max_bytes=10)
    too_large = post(form, content=b"x" * 11)
    assert (too_large.status_code, s3_error(too_large)) == (
        400,
        ("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"),
    )
    assert ET.fromstring(too_large.content).findtext("MaxSizeAllowed") == "10"
    too_small = post(form, content=b"")
    assert (too_small.status_code, s3_error(too_small)[0]) == (400, "EntityTooSmall")
    assert post(form, content=b"x" * 10).status_code == 204


def test_a_tampered_policy_or_signature_is_refused(s3: Any, bucket: str) -> None:
    form = presigned_post(s3, bucket, f"{TENANT_A}signed.txt", max_bytes=10)
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    for condition in policy["conditions"]:
        if isinstance(condition, list) and condition[0] == "content-length-range":
            condition[2] = 10**9
    widened = base64.b64encode(json.dumps(policy).encode()).decode()
    response = post(form, content=b"x" * 100, policy=widened)
    assert (response.status_code, s3_error(response)[0]) == (403, "SignatureDoesNotMatch")
    response = post(form, **{"x-amz-signature": "0" * 64})
    assert (response.status_code, s3_error(response)[0]) == (403, "SignatureDoesNotMatch")


@pytest.mark.usefixtures("signed_two_hours_ago")
def test_an_expired_post_policy_is_refused(s3: Any, bucket: str) -> None:
    response = post(presigned_post(s3, bucket, f"{TENANT_A}late.txt"))
    assert response.status_code == 403
    assert s3_error(response) == ("AccessDenied", "Invalid according to Policy: Policy expired.")


def test_post_fields_outside_the_policy_and_unsigned_posts_are_refused(s3: Any, bucket: str) -> None:
    form = presigned_post(s3, bucket, f"{TENANT_A}extra.txt")
    response = post(form, **{"x-amz-meta-owner": "someone"})
    assert response.status_code == 403
    assert s3_error(response) == (
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-owner",
    )
    anonymous = httpx.post(
        form["url"], data={"key": f"{TENANT_A}anonymous.txt"}, files={"file": ("a.txt", b"x", "text/plain")}
    )
    assert (anonymous.status_code, s3_error(anonymous)) == (403, ("AccessDenied", "Access Denied"))


def test_unsigned_requests_to_a_private_bucket_are_refused(emulator: Emulator, s3: Any, bucket: str) -> None:
    url = f"{emulator.endpoint}/{bucket}/{TENANT_A}report.txt"
    for response in (
        httpx.get(url),
        httpx.put(f"{emulator.endpoint}/{bucket}/{TENANT_A}anonymous.txt", content=b"x"),
        httpx.delete(url),
        httpx.get(f"{emulator.endpoint}/{bucket}?list-type=2"),
    ):
        assert (response.status_code, s3_error(response)) == (403, ("AccessDenied", "Access Denied"))
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key=f"{TENANT_A}anonymous.txt")
    assert s3.get_object(Bucket=bucket, Key=f"{TENANT_A}report.txt")["Body"].read() == b"tenant a data"


def test_a_public_bucket_policy_allows_unsigned_reads_unless_public_access_is_blocked(
    emulator: Emulator, s3: Any
) -> None:
    name = f"fidelity-public-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=name, Key="logo.png", Body=b"public")
    s3.put_bucket_policy(
        Bucket=name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{name}/*",
                    }
                ],
            }
        ),
    )
    assert httpx.get(f"{emulator.endpoint}/{name}/logo.png").content == b"public"
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    assert httpx.get(f"{emulator.endpoint}/{name}/logo.png").status_code == 403
