"""Typed, frozen connection objects: what a running component offers, as a URL and as environment variables.

The same objects come out of every backend (embedded, Docker, AWS), and provisioning only ever sees these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

LOCAL_AWS_ACCESS_KEY_ID = "test"
LOCAL_AWS_SECRET_ACCESS_KEY = "test"


def _mask(url: str, password: str) -> str:
    return url.replace(quote(password, safe=""), "***") if password else url


@dataclass(frozen=True)
class PostgresConnection:
    host: str
    port: int
    superuser: str
    password: str = field(repr=False)
    database: str = "postgres"

    @property
    def url(self) -> str:
        return self.url_for(self.superuser, self.password, self.database)

    def url_for(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def masked_url(self) -> str:
        return _mask(self.url, self.password)

    def as_env(self) -> dict[str, str]:
        return {"HARNESS_POSTGRES_ADMIN_URL": self.url}


@dataclass(frozen=True)
class RedisConnection:
    host: str
    port: int
    username: str
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        return self.url_for(self.username, self.password)

    def url_for(self, user: str, password: str) -> str:
        return f"redis://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/0"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def masked_url(self) -> str:
        return _mask(self.url, self.password)

    def as_env(self) -> dict[str, str]:
        return {"HARNESS_REDIS_ADMIN_URL": self.url}


@dataclass(frozen=True)
class AwsConnection:
    endpoint_url: str | None  # None on real AWS
    region: str
    access_key_id: str = LOCAL_AWS_ACCESS_KEY_ID
    secret_access_key: str = field(default=LOCAL_AWS_SECRET_ACCESS_KEY, repr=False)

    @property
    def url(self) -> str:
        return self.endpoint_url or f"https://{self.region}.amazonaws.com"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def masked_url(self) -> str:
        return self.url

    def as_env(self) -> dict[str, str]:
        env = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def client(self, service: str) -> object:
        """A boto3 client for `service` on this endpoint (boto3 imported lazily: it is slow to import)."""
        import boto3.session
        from botocore.config import Config

        # A session per client: boto3's default session is not safe to share between threads.
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=30
            ),
        )


@dataclass(frozen=True)
class HttpConnection:
    host: str
    port: int
    health_path: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def masked_url(self) -> str:
        return self.url

    def as_env(self) -> dict[str, str]:
        return {"API_URL": self.url}


@dataclass(frozen=True)
class Infrastructure:
    """What provisioning needs: admin connections to each backing service."""

    postgres: PostgresConnection
    redis: RedisConnection
    aws: AwsConnection
