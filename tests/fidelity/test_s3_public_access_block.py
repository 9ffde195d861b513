"""Block Public Access holds for writes, as on S3: moto stores the settings and ignores them, so an app (or a
script) that stores objects with a public ACL, or makes the bucket policy public, would pass every local test
and fail on AWS. Real boto3 calls (header-signed) and a real browser POST (httpx)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from fidelity_clients import REGION, Emulator

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
DENIED = ("AccessDenied", "Access Denied")


@pytest.fixture(scope="module")
def s3(emulator: Emulator) -> Any:
    return emulator.client("s3", signature_version="s3v4", s3={"addressing_style": "path"})


def make_bucket(s3: Any, **block: bool) -> str:
    name = f"fidelity-pab-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    s3.put_public_access_block(
        Bucket=name, PublicAccessBlockConfiguration={key: block.get(key, False) for key in settings}
    )
    s3.put_object(Bucket=name, Key="tenant/report.txt", Body=b"data")
    return name


def refused(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(error["Code"]), str(error["Message"])


def public_policy(bucket: str) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def owner_acl_with(uri: str, owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "Owner": owner,
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "Group", "URI": uri}, "Permission": "READ"},
        ],
    }


def test_public_acls_are_refused_under_block_public_acls(s3: Any) -> None:
    bucket = make_bucket(s3, BlockPublicAcls=True)
    key = "tenant/report.txt"
    assert refused(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read")) == DENIED
    for canned in ("public-read", "public-read-write", "authenticated-read"):
        assert (
            refused(lambda c=canned: s3.put_object(Bucket=bucket, Key="tenant/new.txt", Body=b"x", ACL=c))
            == DENIED
        )
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="tenant/new.txt")  # nothing was stored
    assert refused(lambda: s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")) == DENIED
    grant = f'uri="{ALL_USERS}"'
    assert refused(lambda: s3.put_object_acl(Bucket=bucket, Key=key, GrantRead=grant)) == DENIED
    owner = s3.get_object_acl(Bucket=bucket, Key=key)["Owner"]
    for uri in (ALL_USERS, AUTHENTICATED_USERS):
        policy = owner_acl_with(uri, owner)
        assert (
            refused(lambda p=policy: s3.put_object_acl(Bucket=bucket, Key=key, AccessControlPolicy=p))
            == DENIED
        )
    # private ACLs and plain writes are fine
    s3.put_object(Bucket=bucket, Key="tenant/private.txt", Body=b"x", ACL="private")
    s3.put_object_acl(Bucket=bucket, Key=key, ACL="bucket-owner-full-control")
    # the bucket's policy may still be made public: BlockPublicPolicy is off here
    s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))


def test_a_public_policy_is_refused_under_block_public_policy(s3: Any) -> None:
    bucket = make_bucket(s3, BlockPublicPolicy=True)
    assert refused(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=public_policy(bucket))) == DENIED
    with pytest.raises(ClientError) as missing:
        s3.get_bucket_policy(Bucket=bucket)
    assert missing.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    scoped = json.loads(public_policy(bucket))
    scoped["Statement"][0]["Principal"] = {"AWS": "arn:aws:iam::000000000000:root"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(scoped))  # not public: accepted
    s3.put_object(Bucket=bucket, Key="tenant/acl.txt", Body=b"x", ACL="public-read")  # BlockPublicAcls is off


def test_without_block_public_access_public_acls_are_accepted(s3: Any) -> None:
    bucket = make_bucket(s3)
    s3.put_object(Bucket=bucket, Key="tenant/public.txt", Body=b"x", ACL="public-read")
    grants = s3.get_object_acl(Bucket=bucket, Key="tenant/public.txt")["Grants"]
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in grants)


def test_a_presigned_post_with_a_public_acl_is_refused(s3: Any) -> None:
    bucket = make_bucket(s3, BlockPublicAcls=True)
    form = s3.generate_presigned_post(
        bucket, "tenant/upload.txt", Fields={"acl": "public-read"}, Conditions=[{"acl": "public-read"}]
    )
    response = httpx.post(
        form["url"], data=form["fields"], files={"file": ("upload.txt", b"x", "text/plain")}
    )
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    private = s3.generate_presigned_post(
        bucket, "tenant/upload.txt", Fields={"acl": "private"}, Conditions=[{"acl": "private"}]
    )
    stored = httpx.post(
        private["url"], data=private["fields"], files={"file": ("upload.txt", b"x", "text/plain")}
    )
    assert stored.status_code in (200, 204), stored.text
