"""Where a deployment goes: region, optional endpoint (moto, LocalStack) and the boto3 clients for it.

Credentials come from the usual AWS chain (environment, profile, role); the harness never reads, prints or
stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from harness.errors import DeployError


@dataclass(frozen=True)
class AwsTarget:
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    # fixed keys for an endpoint that accepts any (the rehearsal's stand-in); never real credentials
    credentials: tuple[str, str] | None = None

    @cached_property
    def _session(self) -> Any:
        import boto3

        if self.credentials is not None:
            key, secret = self.credentials
            return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret)
        return boto3.session.Session(profile_name=self.profile)

    def client(self, service: str, region: str | None = None) -> Any:
        from botocore.config import Config

        return self._session.client(
            service,
            region_name=region or self.region,
            endpoint_url=self.endpoint_url,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60
            ),
        )

    @property
    def where(self) -> str:
        return f"{self.region} via {self.endpoint_url}" if self.endpoint_url else self.region

    def account_id(self) -> str:
        """The account the credentials belong to (STS GetCallerIdentity)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except (BotoCoreError, ClientError) as exc:
            raise DeployError(
                f"cannot tell which AWS account the credentials belong to ({self.where}): {exc}",
                hint="set AWS credentials (AWS_PROFILE, or the GitHub OIDC role in CI); with --endpoint-url any "
                "non-empty AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY will do",
            ) from exc
