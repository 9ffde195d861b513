"""What the local tier does NOT reproduce, pinned: each test asserts today's divergence from AWS, so that the
ledger (harness/fidelity.py, `reproduced_locally=False`) has to change when the emulator does."""

from __future__ import annotations

from fidelity_clients import REGION, Emulator


def test_header_signed_s3_requests_are_not_verified(emulator: Emulator) -> None:
    import boto3

    wrong_secret = boto3.session.Session().client(
        "s3",
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="not-the-secret",
    )
    assert "Buckets" in wrong_secret.list_buckets()  # AWS: SignatureDoesNotMatch
